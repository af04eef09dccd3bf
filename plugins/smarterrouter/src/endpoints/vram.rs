//! `GET /admin/vram[?history_minutes=N]` (default 10, at most the hour kept in memory).

use super::LocalResponse;
use crate::api::query;
use crate::error::RequestError;
use crate::vram::report::{admin_vram, DEFAULT_HISTORY_MINUTES};
use crate::vram::HISTORY_KEPT;
use crate::RouterState;

pub fn report(
    state: &RouterState,
    params: &[(String, String)],
) -> Result<LocalResponse, RequestError> {
    let minutes = match query::get(params, "history_minutes") {
        None => DEFAULT_HISTORY_MINUTES,
        Some(raw) => raw.parse::<u64>().map_err(|_| RequestError::InvalidField {
            field: "history_minutes",
            why: format!(
                "{raw:?} is not a whole number of minutes (0 to {})",
                HISTORY_KEPT.as_secs() / 60
            ),
        })?,
    };
    let monitor = &state.vram;
    let since = crate::store::now_unix_ms().saturating_sub(minutes.saturating_mul(60_000));
    let history = monitor.since(since);
    Ok(LocalResponse::json(
        200,
        &admin_vram(monitor, monitor.latest().as_ref(), &history),
    ))
}
