//! `/admin/profiles` (the measured profiles), `POST /admin/reprofile[?model=M&force=true]`
//! (starts a job, answers 202 at once) and `GET /admin/reprofile/{id}` (its progress).

use serde_json::json;

use super::LocalResponse;
use crate::api::query;
use crate::error::RequestError;
use crate::RouterState;

pub fn list(state: &RouterState) -> LocalResponse {
    LocalResponse::json(200, &json!({ "profiles": state.profiles.all() }))
}

pub fn start(state: &RouterState, params: &[(String, String)]) -> LocalResponse {
    let force = query::get(params, "force").is_some_and(|v| v == "true" || v == "1");
    let job = state.jobs.submit(query::get(params, "model"), force);
    LocalResponse::json(202, &json!(job))
}

pub fn status(state: &RouterState, path: &str) -> Result<LocalResponse, RequestError> {
    let id = path
        .trim_end_matches('/')
        .trim_start_matches("/admin/reprofile/");
    let job = state
        .jobs
        .status(id)
        .ok_or_else(|| RequestError::UnknownPath(format!("profiling job {id:?}")))?;
    Ok(LocalResponse::json(200, &json!(job)))
}
