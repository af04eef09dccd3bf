//! A SIMULATED Ollama server for tests, benchmarks and demos. It has no model and no GPU: it
//! answers with canned text, in the wire formats of `../shared/reference/ollama-api.md` (NDJSON
//! and SSE streams, `/api/tags`, `/api/show`, `/api/ps`, `/api/embed`, the OpenAI `/v1`
//! endpoints). It records every request it receives and counts calls per route, so tests can
//! assert on what the router forwarded. Markers in a prompt inject faults: [`FAIL_500`],
//! [`CUT_STREAM`], [`ERROR_LINE`].

mod handlers;
pub use handlers::{CUT_STREAM, ERROR_LINE, FAIL_500};
mod replies;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A model the mock pretends to have.
#[derive(Debug, Clone)]
pub struct MockModel {
    pub name: String,
    pub family: String,
    pub parameter_size: String,
    pub capabilities: Vec<String>,
    pub size: u64,
    /// What `/api/show` reports as `<family>.context_length`.
    pub context_length: u64,
}

impl MockModel {
    /// A chat model (`completion` capability), its size read from a tag such as `:7b`
    /// (1.2B when the name has none).
    pub fn chat(name: &str) -> Self {
        let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        let size = tag
            .split('-')
            .find(|t| t.ends_with('b') && t[..t.len() - 1].parse::<f64>().is_ok())
            .map(|t| t.to_ascii_uppercase())
            .unwrap_or_else(|| "1.2B".to_string());
        MockModel::with(name, &size, &[])
    }

    /// An embedding model (`embedding` capability, bert family).
    pub fn embedding(name: &str) -> Self {
        MockModel {
            name: name.to_string(),
            family: "bert".to_string(),
            parameter_size: "23M".to_string(),
            capabilities: vec!["embedding".to_string()],
            size: 46_000_000,
            context_length: 512,
        }
    }

    /// `parameter_size` ("1.2B", "23M") as a count.
    pub fn parameter_count(&self) -> u64 {
        let text = self.parameter_size.to_ascii_uppercase();
        let (number, scale) = match text.chars().last() {
            Some('B') => (&text[..text.len() - 1], 1e9),
            Some('M') => (&text[..text.len() - 1], 1e6),
            _ => (text.as_str(), 1.0),
        };
        (number.parse::<f64>().unwrap_or(0.0) * scale) as u64
    }

    /// A model with the given size and capabilities (`completion` is added unless embedding).
    pub fn with(name: &str, parameter_size: &str, capabilities: &[&str]) -> Self {
        let mut caps: Vec<String> = capabilities.iter().map(|c| c.to_string()).collect();
        if !caps.iter().any(|c| c == "embedding") && !caps.iter().any(|c| c == "completion") {
            caps.insert(0, "completion".to_string());
        }
        MockModel {
            name: name.to_string(),
            family: "llama".to_string(),
            parameter_size: parameter_size.to_string(),
            capabilities: caps,
            size: MockModel {
                name: String::new(),
                family: String::new(),
                parameter_size: parameter_size.to_string(),
                capabilities: Vec::new(),
                size: 0,
                context_length: 0,
            }
            .parameter_count()
                * 6
                / 10,
            context_length: 8192,
        }
    }

    pub fn is_embedding(&self) -> bool {
        self.capabilities.iter().any(|c| c == "embedding")
    }
}

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct MockConfig {
    pub models: Vec<MockModel>,
    /// Delay before the first byte of every inference answer.
    pub latency: Duration,
    /// Tokens (stream frames) per answer.
    pub tokens: usize,
    /// Delay between two stream frames.
    pub token_interval: Duration,
    /// Keep at most this many recorded requests (oldest dropped).
    pub record_limit: usize,
    /// Scripted replies: a model answers `reply` when the prompt contains `prompt_contains`.
    pub scripted: Vec<Script>,
    /// The first this-many `/v1/chat/completions` requests get 429 (to test retries).
    pub fail_first_chat: usize,
    /// End every answer with `[answer N]`, N counting the generations served, so tests can tell
    /// a fresh answer from a replayed one.
    pub number_answers: bool,
    /// Embeddings as bags of words (64 dimensions; lower case, punctuation dropped), so texts
    /// with the same words are similar: for semantic-cache tests. Off: a hash of the text.
    pub word_embeddings: bool,
    /// Simulate GPU memory: these models start loaded; `/api/ps` lists what is loaded (each
    /// taking its `size`); a generation of a cold model loads it; Ollama's unload request
    /// (`keep_alive: 0`, no prompt) unloads it. `None`: the first model is always loaded.
    pub vram_sim: Option<Vec<String>>,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Script {
    pub model: String,
    pub prompt_contains: String,
    pub reply: String,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            models: vec![
                MockModel::chat("llama3.2:1b"),
                MockModel::chat("qwen2.5:7b"),
                MockModel::embedding("all-minilm:latest"),
            ],
            latency: Duration::ZERO,
            tokens: 5,
            token_interval: Duration::ZERO,
            record_limit: 1000,
            scripted: Vec::new(),
            fail_first_chat: 0,
            number_answers: false,
            word_embeddings: false,
            vram_sim: None,
        }
    }
}

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Shared, inspectable state of a running mock.
#[derive(Debug, Default)]
pub struct MockState {
    pub config: MockConfig,
    requests: Mutex<Vec<Recorded>>,
    counts: Mutex<HashMap<String, usize>>,
    pub streams_started: AtomicUsize,
    pub streams_completed: AtomicUsize,
    /// Streams whose client went away before the last frame.
    pub streams_aborted: AtomicUsize,
    /// `/v1/chat/completions` requests seen, for `fail_first_chat`.
    pub chat_attempts: AtomicUsize,
    /// Generations served (numbers the answers with `number_answers`).
    pub generations: AtomicUsize,
    /// With `vram_sim`: the models loaded now, in load order.
    pub loaded: Mutex<Vec<String>>,
    /// With `vram_sim`: models loaded and unloaded, in order.
    pub loads: Mutex<Vec<String>>,
    pub unloads: Mutex<Vec<String>>,
}

impl MockState {
    /// With `vram_sim`: loads `model` if it is cold.
    pub fn touch(&self, model: &str) {
        if self.config.vram_sim.is_none() {
            return;
        }
        if let Ok(mut loaded) = self.loaded.lock() {
            if !loaded.iter().any(|m| m == model) {
                loaded.push(model.to_string());
                if let Ok(mut loads) = self.loads.lock() {
                    loads.push(model.to_string());
                }
            }
        }
    }

    /// With `vram_sim`: unloads `model`.
    pub fn unload(&self, model: &str) {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.retain(|m| m != model);
        }
        if let Ok(mut unloads) = self.unloads.lock() {
            unloads.push(model.to_string());
        }
    }

    pub fn loaded_now(&self) -> Vec<String> {
        self.loaded.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Requests received on `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Calls received on `path` (counted even past the record limit).
    pub fn count(&self, path: &str) -> usize {
        self.counts
            .lock()
            .map(|c| c.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn record(&self, recorded: Recorded) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(recorded.path.clone()).or_default() += 1;
        }
        if let Ok(mut requests) = self.requests.lock() {
            if requests.len() >= self.config.record_limit.max(1) {
                requests.remove(0);
            }
            requests.push(recorded);
        }
    }

    fn model(&self, name: &str) -> Option<&MockModel> {
        let tagged = format!("{name}:latest");
        self.config
            .models
            .iter()
            .find(|m| m.name == name || m.name == tagged)
    }

    /// What `model` answers to `prompt`, as stream pieces: a scripted reply split after each
    /// space, else the canned answer.
    pub fn reply_pieces(&self, model: &str, prompt: &str) -> Vec<String> {
        let scripted = self.config.scripted.iter().find(|s| {
            (s.model == model || format!("{}:latest", model) == s.model)
                && prompt.contains(&s.prompt_contains)
        });
        let mut pieces: Vec<String> = match scripted {
            Some(script) => script
                .reply
                .split_inclusive(' ')
                .map(str::to_string)
                .collect(),
            None => replies::canned(self.config.tokens),
        };
        let n = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        if self.config.number_answers {
            pieces.push(format!("[answer {n}]"));
        }
        pieces
    }

    pub fn streams(&self) -> (usize, usize, usize) {
        (
            self.streams_started.load(Ordering::SeqCst),
            self.streams_completed.load(Ordering::SeqCst),
            self.streams_aborted.load(Ordering::SeqCst),
        )
    }
}

/// A running mock server.
pub struct MockOllama {
    pub addr: SocketAddr,
    pub state: Arc<MockState>,
    task: JoinHandle<()>,
}

impl MockOllama {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start(config: MockConfig) -> std::io::Result<Self> {
        Self::start_on(
            "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
            config,
        )
        .await
    }

    pub async fn start_on(addr: SocketAddr, config: MockConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(MockState {
            loaded: Mutex::new(config.vram_sim.clone().unwrap_or_default()),
            config,
            ..MockState::default()
        });
        let app = router(Arc::clone(&state));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mock-ollama: server stopped: {e}");
            }
        });
        Ok(MockOllama { addr, state, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections (the port then refuses them).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Waits until the server task ends (after `stop`, or forever).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockOllama {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(state: Arc<MockState>) -> axum::Router {
    use handlers::*;
    axum::Router::new()
        .route("/", get(root))
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
        .route("/api/version", get(version))
        .route("/api/show", post(show))
        .route("/api/chat", post(ollama_chat))
        .route("/api/generate", post(ollama_generate))
        .route("/api/embed", post(ollama_embed))
        .route("/api/embeddings", post(ollama_embeddings))
        .route("/v1/models", get(openai_models))
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/completions", post(openai_completions))
        .route("/v1/embeddings", post(openai_embeddings))
        .route("/_mock/stats", get(stats))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}
