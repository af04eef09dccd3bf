//! One log line per request (target `access`), plus the request metrics. With
//! `ROUTER_LOG_FORMAT=json` each line is a JSON object carrying `timestamp, level, request_id,
//! endpoint, model_selected, latency_ms, cache_hit, cache, status, node`.

use pingora::prelude::*;
use pingora::proxy::Session;

use super::ctx::RequestCtx;

pub fn record(session: &Session, error: Option<&Error>, ctx: &RequestCtx) {
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
    crate::metrics::observe_request(endpoint, status, model, latency.as_secs_f64());
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    tracing::info!(
        target: "access",
        request_id = %ctx.request.id,
        method = %session.req_header().method,
        endpoint,
        model_selected = model,
        category = decision.and_then(|d| d.category).map(|c| c.as_str()).unwrap_or(""),
        reason = decision.map(|d| d.reason.as_str()).unwrap_or(""),
        stream = ctx.request.stream,
        latency_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        cache_hit = ctx.cache.hit,
        cache = cache_outcome(ctx),
        status,
        node = ctx.attempts.node_url().unwrap_or(""),
        attempts = ctx.attempts.count(),
        error = error.as_str(),
        "request"
    );
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
