//! Phases `upstream_response_filter` and `upstream_response_body_filter`: what a node's answer
//! tells about the generation (time to the first frame, the usage it reports at its end) and
//! its own 5xx answers, for the metrics written in `logging`. Cache hits never pass here.

use std::time::Instant;

use bytes::Bytes;
use pingora::http::ResponseHeader;

use super::ctx::RequestCtx;
use crate::api::usage::{self, Tail};

/// The node's answer as it passed.
#[derive(Debug, Default)]
pub struct GenerationCtx {
    first_frame: Option<Instant>,
    last_frame: Option<Instant>,
    tail: Tail,
    /// The node answered with 2xx: its usage counts.
    succeeded: bool,
}

/// Reads the node's status; counts a 5xx against the node.
pub fn header(ctx: &mut RequestCtx, response: &ResponseHeader) {
    let status = response.status.as_u16();
    ctx.generation.succeeded = (200..300).contains(&status);
    if status >= 500 {
        if let Some(node) = ctx.attempts.node_url() {
            crate::metrics::upstream_error(node, "http_5xx");
        }
    }
}

/// Notes when frames arrive and keeps the body's last bytes.
pub fn body(ctx: &mut RequestCtx, body: &Option<Bytes>) {
    let Some(chunk) = body.as_ref().filter(|b| !b.is_empty()) else {
        return;
    };
    let now = Instant::now();
    ctx.generation.first_frame.get_or_insert(now);
    ctx.generation.last_frame = Some(now);
    if ctx.generation.succeeded {
        ctx.generation.tail.push(chunk);
    }
}

/// The generation metrics of a finished request (nothing for cache hits and failures).
pub fn observe(ctx: &RequestCtx) {
    let (Some(decision), true) = (ctx.decision(), ctx.generation.succeeded) else {
        return;
    };
    let g = &ctx.generation;
    let used = usage::scan(g.tail.bytes());
    let ttft = g.first_frame.filter(|_| ctx.request.stream).map(|t| {
        t.saturating_duration_since(ctx.request.started)
            .as_secs_f64()
    });
    let rate = used.output_tokens.filter(|n| *n > 0).and_then(|n| {
        let seconds = match used.generation_ns {
            Some(ns) if ns > 0 => ns as f64 / 1e9,
            // A stream generates between its first and last frame; a whole answer from when
            // the node got the request.
            _ if ctx.request.stream => g
                .last_frame?
                .saturating_duration_since(g.first_frame?)
                .as_secs_f64(),
            _ => g
                .last_frame?
                .saturating_duration_since(ctx.request.forwarded_at?)
                .as_secs_f64(),
        };
        (seconds > 0.0).then(|| n as f64 / seconds)
    });
    crate::metrics::observe_generation(
        &decision.model,
        ttft,
        used.input_tokens,
        used.output_tokens,
        rate,
    );
}
