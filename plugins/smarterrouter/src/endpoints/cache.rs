//! `GET /admin/cache/stats` (entries, bytes, hits, misses, hit rate, evictions, per kind) and
//! `POST /admin/cache/invalidate[?model=M]` (drops every stored answer, or those of one model).

use serde_json::json;

use super::LocalResponse;
use crate::api::query;
use crate::RouterState;

pub fn stats(state: &RouterState) -> LocalResponse {
    LocalResponse::json(200, &state.cache.stats())
}

pub fn invalidate(state: &RouterState, params: &[(String, String)]) -> LocalResponse {
    let model = query::get(params, "model").filter(|m| !m.is_empty());
    let removed = state.cache.invalidate(model.as_deref());
    LocalResponse::json(
        200,
        &json!({ "invalidated": removed, "model": model, "entries": state.cache.stats()["entries"] }),
    )
}
