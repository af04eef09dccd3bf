//! VRAM in the proxy phases: admission of a cold model on the attempt's node (in
//! `upstream_peer`, so a cache hit never pays for it), and the usage book the unload strategy and
//! "never unload a busy model" read.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use pingora::prelude::*;

use super::ctx::RequestCtx;
use crate::error::RequestError;
use crate::vram::admission::{admit as make_room, AdmitContext};
use crate::RouterState;

/// In `upstream_peer`: reads `ctx.attempts` (the node), `ctx.routed` (the model); writes
/// `ctx.vram_use`. Unloads by strategy when the model does not fit, or refuses with 503
/// `vram_exhausted`.
pub async fn admit(state: &RouterState, ctx: &mut RequestCtx) -> Result<()> {
    let (Some(node), Some(routed)) = (ctx.attempts.current_node(), ctx.routed.as_ref()) else {
        return Ok(());
    };
    let model = routed.decision.model.clone();
    let monitor = &state.vram;
    let now = crate::store::now_unix_ms();
    if let Some(used) = ctx.vram_use.take() {
        monitor.usage.end(&used, now);
    }
    // A retry on another node: the previous attempt's watchdog no longer applies.
    cancel_watch(ctx);
    let cold = !node.has_loaded(&model);
    // The budget only for a cold model: a loaded one (nearly every request) takes no lock here.
    let budget = (monitor.enabled && monitor.auto_unload && cold)
        .then(|| monitor.node_budget(&node.url))
        .flatten();
    if budget.is_some() {
        let measured = state.profiles.read(&model, |p| p.vram_bytes).flatten();
        let needed = crate::vram::admission::estimate(
            &node,
            &model,
            measured,
            monitor.default_estimate_bytes,
        );
        // One admission per node at a time (others proceed), so two cold models never count
        // on the same free memory of one node.
        let lock = monitor.admission_lock(node.id);
        let _one_at_a_time = lock.lock().await;
        let admitted = make_room(
            &node,
            &model,
            AdmitContext {
                budget,
                needed,
                pinned: state.config.routing.pinned_model.as_deref(),
                strategy: monitor.strategy,
                usage: &monitor.usage,
                events: &monitor.events,
                keeping_pinned: false,
                client: state.node_client.control(),
                group_wait: monitor.group_wait,
                min_residency: monitor.min_residency,
                cluster: state.cluster.as_deref(),
            },
        )
        .await;
        if let Err(why) = admitted {
            tracing::warn!(node = %node.url, model = %model, "{why}");
            return Err(ctx.attempts.refuse(RequestError::VramExhausted(why)));
        }
    }
    // Only a stream's first byte says the load is done: a one-object answer comes when the
    // whole generation has, however long that takes.
    if monitor.enabled && ctx.request.stream && node.kind == crate::config::NodeKind::Ollama && cold
    {
        ctx.cold_answered = Some(watch_load(
            Arc::clone(&node),
            model.clone(),
            monitor.load_timeout,
            monitor.degraded_for,
        ));
    }
    monitor.usage.begin(node.id, &model, now);
    ctx.vram_use = Some((node.id, model));
    Ok(())
}

/// Marks `node` degraded for cold loads if it has not answered within `timeout` (Ollama issue
/// #17408: its scheduler can hang on loads while `/api/tags` and `/api/ps` still answer).
fn watch_load(
    node: Arc<crate::upstream::Node>,
    model: String,
    timeout: std::time::Duration,
    degraded_for: std::time::Duration,
) -> Arc<AtomicU8> {
    let state = Arc::new(AtomicU8::new(WAITING));
    let watched = Arc::clone(&state);
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let timed_out = watched
            .compare_exchange(WAITING, TIMED_OUT, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if timed_out {
            let why = format!(
                "loading {model} did not start within router.vram.load_timeout_ms ({} ms)",
                timeout.as_millis()
            );
            tracing::warn!(node = %node.url, "node degraded for cold loads: {why}");
            let now = std::time::Instant::now();
            node.mark_degraded(why, now.checked_add(degraded_for).unwrap_or(now));
        }
    });
    state
}

/// A cold request's load watchdog: waiting, answered in time, or timed out.
const WAITING: u8 = 0;
const ANSWERED: u8 = 1;
const TIMED_OUT: u8 = 2;
const CANCELLED: u8 = 3;

/// In `response_filter`: the node answered; a cold load that started in time clears degraded.
pub fn answered(ctx: &mut RequestCtx) {
    if let Some(state) = ctx.cold_answered.take() {
        let in_time = state
            .compare_exchange(WAITING, ANSWERED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if let Some(node) = ctx.attempts.current_node() {
            if in_time {
                node.clear_degraded();
            }
            if let Some((_, model)) = &ctx.vram_use {
                node.settle(model);
            }
        }
    }
}

/// The request ended or moved on before its node answered (client gone, connection failed):
/// that says nothing about the node's loads.
fn cancel_watch(ctx: &mut RequestCtx) {
    if let Some(state) = ctx.cold_answered.take() {
        let _ = state.compare_exchange(WAITING, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// In `logging`: the request no longer uses its model.
pub fn release(state: &RouterState, ctx: &mut RequestCtx) {
    cancel_watch(ctx);
    if let Some(used) = ctx.vram_use.take() {
        state.vram.usage.end(&used, crate::store::now_unix_ms());
    }
}
