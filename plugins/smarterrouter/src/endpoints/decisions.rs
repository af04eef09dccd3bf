//! `GET /admin/decisions[?limit=N]` (the newest routing decisions, newest first; default 50),
//! `GET /admin/decisions/{request_id}` (one, with the engine's breakdown while it is among the
//! newest [`BREAKDOWNS_KEPT`]) and `GET /admin/activity[?minutes=N]` (10-second buckets over
//! the last N minutes, default and at most 60). What the dashboard draws; usable without it.

use serde_json::json;

use super::LocalResponse;
use crate::activity::{BREAKDOWNS_KEPT, BUCKETS_KEPT, BUCKET_MS, DECISIONS_KEPT};
use crate::api::query;
use crate::error::RequestError;
use crate::RouterState;

const DEFAULT_LIMIT: usize = 50;
const MAX_MINUTES: u64 = BUCKETS_KEPT as u64 * BUCKET_MS / 60_000;

pub fn list(
    state: &RouterState,
    params: &[(String, String)],
) -> Result<LocalResponse, RequestError> {
    let limit = query::whole_number(
        params,
        "limit",
        (1, DEFAULT_LIMIT as u64, DECISIONS_KEPT as u64),
        "decisions",
    )?;
    Ok(LocalResponse::json(
        200,
        &json!({
            "decisions": state.activity.decisions(limit as usize),
            "kept": DECISIONS_KEPT,
            "breakdowns_kept": BREAKDOWNS_KEPT,
        }),
    ))
}

pub fn one(state: &RouterState, path: &str) -> Result<LocalResponse, RequestError> {
    // The page sends the id URL-encoded; a literal `+` stays a `+` (a path, not a query).
    let raw = path
        .trim_end_matches('/')
        .trim_start_matches("/admin/decisions/");
    let id = &query::percent_decode(&raw.replace('+', "%2B"));
    let decision = state.activity.decision(id).ok_or_else(|| {
        RequestError::UnknownPath(format!(
            "routing decision {id:?} (only the last {DECISIONS_KEPT} are kept; GET /admin/decisions lists them)"
        ))
    })?;
    Ok(LocalResponse::json(200, &decision))
}

pub fn activity(
    state: &RouterState,
    params: &[(String, String)],
) -> Result<LocalResponse, RequestError> {
    let minutes = query::whole_number(params, "minutes", (1, MAX_MINUTES, MAX_MINUTES), "minutes")?;
    let now = crate::model::now_unix_ms();
    let mut series = state.activity.series(now.saturating_sub(minutes * 60_000));
    series["minutes"] = json!(minutes);
    series["now_unix_ms"] = json!(now);
    Ok(LocalResponse::json(200, &series))
}
