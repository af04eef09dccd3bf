//! `GET /admin/vram[?history_minutes=N][&history_points=P]` (default 10 minutes; at most P
//! evenly spaced samples of them, the newest always among them: what a chart needs). The last hour comes from memory; a longer
//! window adds the store's downsampled history (one sample in ten), read off the async workers.

use std::collections::BTreeMap;
use std::time::Duration;

use super::LocalResponse;
use crate::api::query;
use crate::error::RequestError;
use crate::upstream::LoadedModel;
use crate::vram::report::{admin_vram, thin, DEFAULT_HISTORY_MINUTES};
use crate::vram::{NodeSample, Sample, HISTORY_KEPT};
use crate::RouterState;

/// Longest history asked for: what the store keeps is bounded anyway (`VRAM_SAMPLES_KEPT`).
const MAX_HISTORY_MINUTES: u64 = 7 * 24 * 60;

pub async fn report(
    state: &RouterState,
    params: &[(String, String)],
) -> Result<LocalResponse, RequestError> {
    let minutes = query::whole_number(
        params,
        "history_minutes",
        (0, DEFAULT_HISTORY_MINUTES, MAX_HISTORY_MINUTES),
        "minutes",
    )?;
    let monitor = &state.vram;
    let now = crate::store::now_unix_ms();
    let since = now.saturating_sub(minutes.saturating_mul(60_000));
    let recent = monitor.since(since);
    let latest = monitor.latest();
    let mut history = Vec::new();
    if minutes * 60 > HISTORY_KEPT.as_secs() {
        let memory_starts = recent.first().map_or(now, |s| s.unix_ms);
        history = stored(state, since, memory_starts, latest.as_ref()).await;
    }
    history.extend(recent);
    if query::get(params, "history_points").is_some() {
        let points = query::whole_number(params, "history_points", (2, 2, 100_000), "samples")?;
        history = thin(history, points as usize);
    }
    let mut report = admin_vram(
        monitor,
        latest.as_ref(),
        &history,
        monitor.events.since_json(since),
    );
    if monitor.enabled {
        report["pinned_model"] = serde_json::json!(state.config.routing.pinned_model);
    }
    Ok(LocalResponse::json(200, &report))
}

/// The store's samples from `since` to `until` (exclusive), one `Sample` per sampling time.
async fn stored(
    state: &RouterState,
    since: u64,
    until: u64,
    latest: Option<&Sample>,
) -> Vec<Sample> {
    let Some(store) = state.store.wait_open(Duration::from_secs(1)).await else {
        return Vec::new();
    };
    let read = tokio::task::spawn_blocking(move || store.vram_history(since)).await;
    let Ok(Ok(records)) = read else {
        return Vec::new();
    };
    let known = |url: &str| latest.and_then(|s| s.nodes.iter().find(|n| n.url == url));
    let mut by_time: BTreeMap<u64, Vec<NodeSample>> = BTreeMap::new();
    for record in records.into_iter().filter(|r| r.unix_ms < until) {
        let node = known(&record.node);
        by_time.entry(record.unix_ms).or_default().push(NodeSample {
            total_bytes: node.and_then(|n| n.total_bytes),
            budget_bytes: node.and_then(|n| n.budget_bytes),
            used_bytes: Some(record.used_bytes),
            models: record
                .models
                .into_iter()
                .map(|(name, vram_bytes)| LoadedModel {
                    name,
                    size_bytes: vram_bytes,
                    vram_bytes,
                    expires_at: None,
                })
                .collect(),
            url: record.node,
        });
    }
    by_time
        .into_iter()
        .map(|(unix_ms, nodes)| Sample {
            unix_ms,
            gpus: Vec::new(),
            nodes,
        })
        .collect()
}
