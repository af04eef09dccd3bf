//! Phase `response_filter`: the router's headers on every proxied response, the decision
//! record for later feedback, and `Connection: close` while draining.

use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::store::writer::DecisionFate;
use crate::store::DecisionRecord;
use crate::RouterState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MODEL_HEADER: &str = "x-smarterrouter-model";
const CATEGORY_HEADER: &str = "x-smarterrouter-category";

/// Reads the decision and request id; writes the response headers and the decision record.
pub fn filter(
    state: &RouterState,
    session: &mut Session,
    response: &mut ResponseHeader,
    ctx: &RequestCtx,
) -> Result<()> {
    close_if_draining(state, session);
    if let Some(decision) = ctx.decision() {
        response.insert_header(MODEL_HEADER, decision.model.as_str())?;
        if let Some(category) = decision.category {
            response.insert_header(CATEGORY_HEADER, category.as_str())?;
        }
    }
    response.insert_header(REQUEST_ID_HEADER, ctx.request.id.as_str())?;
    remember_decision(state, response.status.as_u16(), ctx);
    Ok(())
}

/// While the process stops or hands over to a new one, every response says
/// `Connection: close`, so keep-alive clients reconnect instead of meeting a closed socket.
pub fn close_if_draining(state: &RouterState, session: &mut Session) {
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        session.set_keepalive(None);
    }
}

/// Records which model serves a routed request with a successful status, for later feedback.
/// Called before the response header goes out, so a client that rates the answer at once finds
/// it.
fn remember_decision(state: &RouterState, status: u16, ctx: &RequestCtx) {
    let Some(decision) = ctx.decision().filter(|_| (200..300).contains(&status)) else {
        return;
    };
    let record = DecisionRecord {
        request_id: ctx.request.id.clone(),
        model: decision.model.clone(),
        category: decision.category.map(|c| c.as_str().to_string()),
        unix_ms: crate::model::now_unix_ms(),
        background: ctx.request.background_task.is_some(),
        tenant: ctx.request.client.as_ref().map(|c| c.name.clone()),
    };
    let fate = state.store_tx.send_decision(&record);
    // The cluster gets the decisions within the store's cap: over it (a benchmark, a flood of
    // cache hits) a Redis write per answer cost a quarter of the cache-hit rate.
    if let Some(cluster) = state
        .cluster
        .as_ref()
        .filter(|_| fate != DecisionFate::OverCap)
    {
        cluster.share_decision(&record);
    }
    state.recent.insert(record, fate == DecisionFate::Queued);
}
