//! One log line per request (target `access`), plus the request metrics. With
//! `ROUTER_LOG_FORMAT=json` each line is a JSON object carrying `timestamp, level, request_id,
//! endpoint, model_selected, latency_ms, cache_hit, cache, status, node, vram_used_gb` (the GB the
//! serving node's loaded models used at its latest VRAM sample; -1 when there is none). The
//! same facts (no prompt text) go to the activity log behind `/admin/decisions` and the dashboard.

use pingora::prelude::*;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::RouterState;

/// Reads the whole ctx; then moves the request id and the decision into the activity log
/// (logging is the last phase: nothing reads them after).
pub fn record(state: &RouterState, session: &Session, error: Option<&Error>, ctx: &mut RequestCtx) {
    let (endpoint, status, latency_ms, cache_outcome) = line(state, session, error, ctx);
    let routed = ctx.routed.take();
    let (decision, breakdown) = match routed {
        Some(r) => (Some(r.decision), r.breakdown),
        None => (None, None),
    };
    state.activity.record(crate::activity::Finished {
        unix_ms: crate::model::now_unix_ms(),
        request_id: std::mem::take(&mut ctx.request.id),
        endpoint,
        model_request: matches!(
            ctx.request.endpoint,
            Some(crate::api::Endpoint::Forwarded(_))
        ),
        status,
        rate_limited: ctx.request.error_code == Some("rate_limit_exceeded"),
        latency_ms,
        cache: cache_outcome,
        node: ctx.attempts.node_url().map(str::to_string),
        stream: ctx.request.stream,
        decision,
        breakdown,
    });
}

/// The metrics and the access line; returns the endpoint label, status, latency and cache outcome.
fn line(
    state: &RouterState,
    session: &Session,
    error: Option<&Error>,
    ctx: &RequestCtx,
) -> (&'static str, u16, f64, &'static str) {
    let status = session
        .response_written()
        .map(|r| r.status.as_u16())
        .unwrap_or(0);
    let endpoint = ctx
        .request
        .endpoint
        .map(|e| e.label())
        .unwrap_or("unmatched");
    let decision = ctx.decision();
    let model = decision.map(|d| d.model.as_str()).unwrap_or("");
    let latency = ctx.request.started.elapsed();
    // The router's own error (also one that cut a started answer short), else a node's status.
    let error_type = match (ctx.request.error_code, status) {
        (Some(code), _) => Some(code),
        (None, 500..) => Some("node_http_5xx"),
        (None, 400..) => Some("node_http_4xx"),
        (None, _) => None,
    };
    // Until the node had the request; all of it when the router answered itself.
    let overhead = match ctx.request.forwarded_at {
        Some(at) if !ctx.cache.hit => at.saturating_duration_since(ctx.request.started),
        _ => latency,
    };
    let router_chose = decision.filter(|d| d.by_router);
    crate::metrics::observe_finished(&crate::metrics::Finished {
        endpoint,
        status,
        model,
        seconds: latency.as_secs_f64(),
        error_type,
        selected: router_chose.and_then(|d| d.category).map(|c| c.as_str()),
        overhead_seconds: overhead.as_secs_f64(),
    });
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    let node = ctx.attempts.node_url();
    let latency_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    // The latest sample of the node that served the request: -1 when none (no node, not sampled).
    let vram_used_gb = node
        .and_then(|url| state.vram.node_used_gb(url))
        .map(|gb| (gb * 100.0).round() / 100.0)
        .unwrap_or(-1.0);
    tracing::info!(
        target: "access",
        request_id = %ctx.request.id,
        tenant = ctx.request.client.as_ref().map(|c| c.name.as_str()).unwrap_or(""),
        method = %session.req_header().method,
        endpoint,
        model_selected = model,
        category = decision.and_then(|d| d.category).map(|c| c.as_str()).unwrap_or(""),
        reason = decision.map(|d| d.reason.as_str()).unwrap_or(""),
        stream = ctx.request.stream,
        latency_ms,
        cache_hit = ctx.cache.hit,
        cache = cache_outcome(ctx),
        status,
        node = node.unwrap_or(""),
        vram_used_gb,
        attempts = ctx.attempts.count(),
        error = error.as_str(),
        "request"
    );
    (endpoint, status, latency_ms, cache_outcome(ctx))
}

/// `exact` or `semantic` for a hit, `miss`, or the reason the cache was bypassed; empty when it never applied.
fn cache_outcome(ctx: &RequestCtx) -> &'static str {
    match &ctx.cache.plan {
        None => "",
        Some(Ok(_)) if ctx.cache.hit => ctx.cache.kind().as_str(),
        Some(Ok(_)) => "miss",
        Some(Err(bypass)) => bypass.as_str(),
    }
}
