//! VRAM in the proxy phases: admission of a cold model on the attempt's node (in
//! `upstream_peer`, so a cache hit never pays for it), and the usage book the unload strategy and
//! "never unload a busy model" read.

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
    if let Some((node_id, used)) = ctx.vram_use.take() {
        monitor.usage.end(node_id, &used, now);
    }
    if monitor.enabled && monitor.auto_unload && !node.has_loaded(&model) {
        let needed = estimate(state, &node, &model);
        let _one_at_a_time = monitor.admitting.lock().await;
        let admitted = make_room(
            &node,
            &model,
            AdmitContext {
                budget: monitor.node_budget(&node.url),
                needed,
                pinned: state.config.routing.pinned_model.as_deref(),
                strategy: monitor.strategy,
                usage: &monitor.usage,
                client: state.node_client.control(),
                group_wait: monitor.group_wait,
            },
        )
        .await;
        if let Err(why) = admitted {
            tracing::warn!(node = %node.url, model = %model, "{why}");
            return Err(ctx.attempts.refuse(RequestError::VramExhausted(why)));
        }
    }
    monitor.usage.begin(node.id, &model, now);
    ctx.vram_use = Some((node.id, model));
    Ok(())
}

/// In `logging`: the request no longer uses its model.
pub fn release(state: &RouterState, ctx: &mut RequestCtx) {
    if let Some((node_id, model)) = ctx.vram_use.take() {
        state
            .vram
            .usage
            .end(node_id, &model, crate::store::now_unix_ms());
    }
}

/// The model's measured `size_vram`, else its size as the node lists it, else the default.
fn estimate(state: &RouterState, node: &crate::upstream::Node, model: &str) -> u64 {
    let measured = state.profiles.read(model, |p| p.vram_bytes).flatten();
    let listed = node
        .state()
        .models
        .iter()
        .find(|m| m.name == model)
        .map(|m| m.facts.size_bytes)
        .filter(|size| *size > 0);
    measured
        .or(listed)
        .unwrap_or(state.vram.default_estimate_bytes)
}
