//! The listings and status endpoints: `/health`, `/metrics`, `/v1/models`, `/api/tags` (the
//! virtual models, then the union of the nodes'), `/api/ps` (the nodes' latest readings),
//! `/api/version` and `/`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value};

use super::LocalResponse;
use crate::api::Local;
use crate::auth::Client;
use crate::config::NodeKind;
use crate::error::RequestError;
use crate::RouterState;

/// The listings, health and metrics. With a client key that lists models, the listings show
/// only those (and the virtual models).
pub async fn respond(
    state: &RouterState,
    local: Local,
    path: &str,
    client: Option<&Client>,
) -> Result<LocalResponse, RequestError> {
    let visible = |model: &str| client.is_none_or(|c| c.may_use(model));
    Ok(match local {
        Local::Root => LocalResponse::text(
            "text/plain; charset=utf-8",
            Bytes::from_static(b"SmarterRouter is running"),
        ),
        Local::Health => health(state),
        Local::Metrics => LocalResponse::text(
            "text/plain; version=0.0.4",
            Bytes::from(crate::metrics::render()),
        ),
        Local::OpenAiModels => LocalResponse::json(200, &openai_models(state, &visible)),
        Local::OpenAiModel => openai_model(state, path, &visible)?,
        Local::OllamaTags => LocalResponse::json(200, &ollama_tags(state, &visible)),
        Local::OllamaPs => LocalResponse::json(200, &ollama_ps(state, &visible)),
        Local::OllamaVersion => LocalResponse::json(200, &ollama_version(state)),
        // Served by the dispatcher before it gets here.
        Local::Explain
        | Local::Feedback
        | Local::Profiles
        | Local::Reprofile
        | Local::ReprofileStatus
        | Local::CacheStats
        | Local::CacheInvalidate
        | Local::Vram
        | Local::Decisions
        | Local::Decision
        | Local::Activity
        | Local::Ui => {
            return Err(RequestError::Internal(format!(
                "{} is not a listing",
                crate::api::Endpoint::Local(local).label()
            )))
        }
    })
}

/// 200 when at least one node is up, else 503; per-node detail either way.
pub fn health(state: &RouterState) -> LocalResponse {
    let nodes: Vec<Value> = state
        .registry
        .nodes()
        .iter()
        .map(|node| {
            let s = node.state();
            crate::metrics::set_node_up(&node.pool, &node.url, s.healthy);
            json!({
                "pool": node.pool,
                "url": node.url,
                "kind": node.kind.as_str(),
                "healthy": s.healthy,
                "models": s.models.len(),
                "in_flight": node.in_flight(),
                "last_error": s.last_error,
                "degraded": node.degraded(),
                "last_check_unix": s.last_check
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs()),
            })
        })
        .collect();
    let up = state.registry.any_healthy();
    // Without Redis a cluster instance still answers (on its own state): degraded, not down,
    // so a load balancer keeps sending to it.
    let cluster_up = state.cluster.as_ref().map(|c| c.is_up());
    let status = match (up, cluster_up) {
        (false, _) => "unavailable",
        (true, Some(false)) => "degraded",
        (true, _) => "ok",
    };
    let mut body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "nodes": nodes,
    });
    if let Some(redis_up) = cluster_up {
        body["cluster"] = json!({
            "redis": if redis_up { "up" } else { "down" },
            "shared": if redis_up {
                let cache = if state.config.cluster.share_cache { "the response cache, " } else { "" };
                format!("rate limits, {cache}routing decisions and feedback, profiles, GPU budgets")
            } else {
                "nothing: this instance runs on its own state until Redis is back".to_string()
            },
        });
    }
    LocalResponse::json(if up { 200 } else { 503 }, &body)
}

fn created_unix(entry: &Value) -> u64 {
    entry
        .get("modified_at")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_secs)
        .unwrap_or(0)
}

/// Seconds since the epoch of an RFC 3339 timestamp's date and time (offset ignored: `created`
/// is informational).
fn parse_rfc3339_secs(s: &str) -> Option<u64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = rest.get(..8)?.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn openai_models(state: &RouterState, visible: &dyn Fn(&str) -> bool) -> Value {
    let mut data: Vec<Value> = state
        .config
        .virtual_models
        .iter()
        .map(|name| {
            json!({"id": name, "object": "model", "created": 0, "owned_by": "smarterrouter",
                   "description": "Virtual model: the router picks the model for each request"})
        })
        .collect();
    for (model, pool) in state.registry.tags_entries() {
        if !visible(&model.name) {
            continue;
        }
        data.push(json!({
            "id": model.name,
            "object": "model",
            "created": created_unix(&model.tags_entry),
            "owned_by": pool,
        }));
    }
    json!({"object": "list", "data": data})
}

fn openai_model(
    state: &RouterState,
    path: &str,
    visible: &dyn Fn(&str) -> bool,
) -> Result<LocalResponse, RequestError> {
    let id = crate::api::query::percent_decode(
        path.trim_end_matches('/').trim_start_matches("/v1/models/"),
    );
    let listing = openai_models(state, visible);
    let found = listing["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["id"] == id.as_str()).cloned());
    match found {
        Some(model) => Ok(LocalResponse::json(200, &model)),
        None => Err(RequestError::ModelNotFound {
            model: id,
            available: crate::routing::ModelCatalog::all_models(state.registry.as_ref())
                .into_iter()
                .filter(|m| visible(m))
                .collect(),
        }),
    }
}

/// The virtual models first (unless `router.list_virtual_models_in_tags` is off), then every
/// model of a healthy node, as that node lists it.
fn ollama_tags(state: &RouterState, visible: &dyn Fn(&str) -> bool) -> Value {
    let mut models = if state.config.list_virtual_models_in_tags {
        super::virtual_models::tags_entries(state)
    } else {
        Vec::new()
    };
    models.extend(
        state
            .registry
            .tags_entries()
            .into_iter()
            .filter(|(m, _)| visible(&m.name))
            .map(|(m, _)| m.tags_entry),
    );
    json!({ "models": models })
}

/// The loaded models of every healthy Ollama node, from its latest `/api/ps` reading (taken by
/// discovery and the VRAM monitor), not a call per request: a client polling `/api/ps` costs the
/// nodes nothing. `sample_age_secs`: how old the oldest reading used is (absent when none).
fn ollama_ps(state: &RouterState, visible: &dyn Fn(&str) -> bool) -> Value {
    let mut models = Vec::new();
    let mut oldest: Option<SystemTime> = None;
    for node in state.registry.nodes() {
        if node.kind != NodeKind::Ollama || !node.is_healthy() {
            continue;
        }
        if let Some((entries, at)) = node.state().ps {
            models.extend(
                entries
                    .iter()
                    .filter(|e| {
                        let name = e.get("name").or_else(|| e.get("model"));
                        name.and_then(Value::as_str).is_none_or(visible)
                    })
                    .cloned(),
            );
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
        }
    }
    let mut answer = json!({ "models": models });
    if let Some(at) = oldest {
        let age = SystemTime::now().duration_since(at).unwrap_or_default();
        answer["sample_age_secs"] = json!((age.as_secs_f64() * 10.0).round() / 10.0);
    }
    answer
}

fn ollama_version(state: &RouterState) -> Value {
    let node_version = state
        .registry
        .nodes()
        .iter()
        .filter(|n| n.is_healthy())
        .find_map(|n| n.state().version);
    json!({
        "version": node_version.unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string()),
        "router_version": env!("CARGO_PKG_VERSION"),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_secs;

    #[test]
    fn rfc3339_to_unix() {
        assert_eq!(parse_rfc3339_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_secs("2025-05-04T17:37:44.706015396-07:00"),
            Some(1_746_380_264)
        );
        assert_eq!(parse_rfc3339_secs("garbage"), None);
    }
}
