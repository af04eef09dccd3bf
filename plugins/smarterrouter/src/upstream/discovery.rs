//! Background discovery: asks every node which models it has (`/api/tags` for Ollama nodes,
//! `/v1/models` for OpenAI-kind nodes) at start and then every `router.discovery.interval_secs`.
//! A node that answers is healthy; one that does not is down until it answers again. Ollama nodes
//! are also asked `/api/show` for each model they list (once per model and digest: capabilities,
//! exact size, context length) and `/api/ps` (which models are loaded now).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;
use serde_json::{json, Value};

use super::client::{NodeClient, UpstreamError};
use super::{LoadedModel, Node, NodeModel, NodeState, Registry};
use crate::config::NodeKind;
use crate::model::facts::ModelFacts;

/// The proxy starts once the first pass is done, or after this long.
const FIRST_PASS_WAIT: Duration = Duration::from_secs(3);

/// The Pingora background service that keeps the registry current.
pub struct Discovery {
    pub registry: Arc<Registry>,
    pub client: NodeClient,
    pub interval: Duration,
}

#[async_trait]
impl BackgroundService for Discovery {
    /// Ready once every node was asked once, so the proxy never starts without the models.
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        // Ready after the first pass, or after FIRST_PASS_WAIT if a node is slow to answer.
        let first = self.refresh_all();
        tokio::pin!(first);
        tokio::select! {
            _ = &mut first => ready.notify_ready(),
            _ = tokio::time::sleep(FIRST_PASS_WAIT) => {
                ready.notify_ready();
                first.await;
            }
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
            self.refresh_all().await;
        }
    }
}

impl Discovery {
    /// Asks every node once, in parallel.
    pub async fn refresh_all(&self) {
        let checks = self
            .registry
            .nodes()
            .iter()
            .map(|node| refresh_node(&self.client, node));
        futures_util::future::join_all(checks).await;
    }
}

async fn refresh_node(client: &NodeClient, node: &Node) {
    let previous = node.state();
    let result = match node.kind {
        NodeKind::Ollama => fetch_ollama(client, &node.url, &previous.models).await,
        NodeKind::Openai => fetch_openai(client, &node.url).await,
    };
    let new_state = match result {
        Ok((models, version, loaded)) => {
            let (loaded, ps) = match loaded {
                Some((loaded, ps)) => (
                    Some(Arc::new(loaded)),
                    Some((Arc::new(ps), SystemTime::now())),
                ),
                None => (None, previous.ps.clone()),
            };
            NodeState {
                healthy: true,
                last_error: None,
                last_check: Some(SystemTime::now()),
                models: Arc::new(models),
                version,
                loaded,
                ps,
            }
        }
        Err(why) => {
            if previous.healthy {
                tracing::warn!(node = %node.url, pool = %node.pool, error = %why, "node is down");
            }
            NodeState {
                healthy: false,
                last_error: Some(why.to_string()),
                last_check: Some(SystemTime::now()),
                // Keep the last known list: it still answers "which node would have it".
                models: previous.models.clone(),
                version: previous.version.clone(),
                loaded: None,
                ps: None,
            }
        }
    };
    if new_state.healthy && !previous.healthy {
        tracing::info!(node = %node.url, pool = %node.pool, models = new_state.models.len(), "node is up");
    }
    node.set_state(new_state);
}

/// Why a node does not count as up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("GET {url}: answer has no `models` list; is this an Ollama server?")]
    NotOllama { url: String },
    #[error("GET {url}: answer has no `data` list; is this an OpenAI-compatible server?")]
    NotOpenAi { url: String },
}

/// What one discovery pass learned: models, Ollama version, VRAM per loaded model (with the
/// `/api/ps` entries it came from).
type Discovered = (
    Vec<NodeModel>,
    Option<String>,
    Option<(Vec<LoadedModel>, Vec<Value>)>,
);

async fn fetch_ollama(
    client: &NodeClient,
    base: &str,
    previous: &[NodeModel],
) -> Result<Discovered, DiscoveryError> {
    let tags = client.get_json(format!("{base}/api/tags")).await?;
    let mut models = parse_tags(&tags).ok_or_else(|| DiscoveryError::NotOllama {
        url: format!("{base}/api/tags"),
    })?;
    let shows = models.iter().map(|model| {
        // Reuse only what `/api/show` said; a name guess is retried next time.
        let known = previous.iter().find(|p| {
            p.name == model.name
                && digest(&p.tags_entry) == digest(&model.tags_entry)
                && p.facts.source == crate::model::facts::FactSource::Node
        });
        async move {
            match known {
                Some(known) => Some(known.facts.clone()),
                None => show_facts(client, base, model).await,
            }
        }
    });
    let facts = futures_util::future::join_all(shows).await;
    for (model, facts) in models.iter_mut().zip(facts) {
        if let Some(facts) = facts {
            model.facts = facts;
        }
    }
    let vram = mark_loaded(client, base, &mut models).await;
    let version = client
        .get_json(format!("{base}/api/version"))
        .await
        .ok()
        .and_then(|v| v.get("version").and_then(Value::as_str).map(str::to_string));
    Ok((models, version, vram))
}

fn digest(entry: &Value) -> Option<&str> {
    entry.get("digest").and_then(Value::as_str)
}

/// Facts with `/api/show` applied; `None` (keep the name guesses) if the node does not answer.
async fn show_facts(client: &NodeClient, base: &str, model: &NodeModel) -> Option<ModelFacts> {
    let response = client
        .control()
        .post(format!("{base}/api/show"))
        .json(&json!({ "model": model.name }))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let show: Value = response.json().await.ok()?;
    let mut facts = model.facts.clone();
    facts.apply_show(&show);
    Some(facts)
}

/// Marks the loaded models and returns them, and the `/api/ps` entries they came from.
async fn mark_loaded(
    client: &NodeClient,
    base: &str,
    models: &mut [NodeModel],
) -> Option<(Vec<LoadedModel>, Vec<Value>)> {
    let ps = client.loaded_models(base).await.ok()?;
    let loaded: Vec<LoadedModel> = ps.iter().filter_map(LoadedModel::from_ps).collect();
    for model in models.iter_mut() {
        model.facts.loaded = loaded.iter().any(|l| l.name == model.name);
    }
    Some((loaded, ps))
}

async fn fetch_openai(client: &NodeClient, base: &str) -> Result<Discovered, DiscoveryError> {
    let listing = client.get_json(format!("{base}/v1/models")).await?;
    let data = listing
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoveryError::NotOpenAi {
            url: format!("{base}/v1/models"),
        })?;
    // llama-server also returns an Ollama-shaped `models` list; prefer its richer entries.
    let rich = parse_tags(&listing).unwrap_or_default();
    let models = data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(|id| {
            rich.iter()
                .find(|r| r.name == id)
                .cloned()
                .unwrap_or_else(|| {
                    let tags_entry = json!({
                        "name": id, "model": id, "modified_at": "1970-01-01T00:00:00Z",
                        "size": 0, "digest": "",
                        "details": {"parent_model": "", "format": "", "family": "", "families": [],
                                    "parameter_size": "", "quantization_level": ""}
                    });
                    NodeModel {
                        name: id.to_string(),
                        facts: ModelFacts::from_tags_entry(id, &tags_entry),
                        tags_entry,
                    }
                })
        })
        .collect();
    Ok((models, None, None))
}

/// Reads an Ollama `/api/tags` answer.
fn parse_tags(tags: &Value) -> Option<Vec<NodeModel>> {
    let list = tags.get("models")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|entry| {
                let name = entry
                    .get("name")
                    .or_else(|| entry.get("model"))
                    .and_then(Value::as_str)?;
                Some(NodeModel {
                    name: name.to_string(),
                    facts: ModelFacts::from_tags_entry(name, entry),
                    tags_entry: entry.clone(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_parsed_and_embedding_models_flagged() {
        let tags = json!({"models": [
            {"name": "llama3.2:latest", "details": {"family": "llama"}},
            {"name": "all-minilm:latest", "details": {"family": "bert"}},
            {"model": "nomic-embed-text:latest"}
        ]});
        let models = parse_tags(&tags).unwrap();
        assert_eq!(models.len(), 3);
        assert!(models[0].facts.can_chat());
        assert!(!models[1].facts.can_chat());
        assert!(!models[2].facts.can_chat());
        assert!(parse_tags(&json!({"data": []})).is_none());
    }
}
