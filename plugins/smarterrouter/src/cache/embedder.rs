//! Embeds a last user turn for the semantic cache through a node that serves the embedding model
//! (`router.cache.semantic.embed_model`): Ollama's `/api/embed` on an `ollama` node, `/v1/embeddings`
//! on an `openai` one (llama-server `--embeddings`).
//!
//! Never in the way of a request: each call is bounded by `router.cache.semantic.timeout_ms`, and
//! after a failure the embedder is skipped for [`BACKOFF`] (one WARN per outage, one INFO when it
//! answers again), so a slow or dead embedder costs at most one short wait per backoff period;
//! meanwhile requests are cached exactly only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::NodeKind;
use crate::upstream::Registry;

/// How long a failed embedder is left alone.
pub const BACKOFF: Duration = Duration::from_secs(10);

pub struct Embedder {
    model: String,
    timeout: Duration,
    registry: Arc<Registry>,
    client: reqwest::Client,
    /// Unix ms before which no call is made.
    skip_until_ms: AtomicU64,
    down: AtomicBool,
}

impl Embedder {
    pub fn new(
        model: String,
        timeout: Duration,
        registry: Arc<Registry>,
        client: reqwest::Client,
    ) -> Self {
        Embedder {
            model,
            timeout,
            registry,
            client,
            skip_until_ms: AtomicU64::new(0),
            down: AtomicBool::new(false),
        }
    }

    /// The embedding of `text`, or `None` (no node serves the model, an error, too slow, or in
    /// backoff after one of those).
    pub async fn embed(&self, text: &str) -> Option<Vec<f32>> {
        let now = crate::store::now_unix_ms();
        if now < self.skip_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        match self.call(text).await {
            Ok(vector) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(model = %self.model, "the semantic cache's embedder answers again");
                }
                Some(vector)
            }
            Err(why) => {
                let until = now + BACKOFF.as_millis() as u64;
                self.skip_until_ms.store(until, Ordering::Relaxed);
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        model = %self.model,
                        "semantic cache: cannot embed with router.cache.semantic.embed_model ({why}); \
                         caching exactly only, trying again every {}s",
                        BACKOFF.as_secs()
                    );
                }
                None
            }
        }
    }

    async fn call(&self, text: &str) -> Result<Vec<f32>, String> {
        let (node, name) = self
            .registry
            .nodes()
            .iter()
            .filter(|n| n.is_healthy())
            .find_map(|n| {
                [self.model.clone(), format!("{}:latest", self.model)]
                    .into_iter()
                    .find(|name| n.lists(name))
                    .map(|name| (Arc::clone(n), name))
            })
            .ok_or_else(|| format!("no healthy node lists {}", self.model))?;
        let (url, body) = match node.kind {
            NodeKind::Ollama => (
                format!("{}/api/embed", node.url),
                json!({"model": name, "input": text, "keep_alive": "30m"}),
            ),
            NodeKind::Openai => (
                format!("{}/v1/embeddings", node.url),
                json!({"model": name, "input": text}),
            ),
        };
        let response = self
            .client
            .post(&url)
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {}", crate::upstream::client::describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("POST {url}: HTTP {status}"));
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| format!("POST {url}: the answer is not JSON ({e})"))?;
        let vector = answer
            .pointer("/embeddings/0")
            .or_else(|| answer.pointer("/data/0/embedding"))
            .and_then(Value::as_array)
            .ok_or_else(|| format!("POST {url}: the answer has no embedding"))?;
        let vector: Vec<f32> = vector
            .iter()
            .filter_map(Value::as_f64)
            .map(|x| x as f32)
            .collect();
        if vector.is_empty() {
            return Err(format!("POST {url}: the embedding is empty"));
        }
        Ok(vector)
    }
}
