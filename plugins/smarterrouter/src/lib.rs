//! SmarterRouter as a Pingora plugin: an LLM router in front of Ollama and OpenAI-compatible
//! servers (llama.cpp's `llama-server`).
//!
//! Clients speak the OpenAI API (`/v1/*`) or the Ollama API (`/api/*`). For each request the
//! router reads the JSON body, decides the model ([`routing`]), rewrites `model`, picks a healthy
//! node of the pools that has the model ([`upstream`]), and forwards the request unchanged
//! otherwise, streams included. It answers `/health`, `/metrics`, `/v1/models`, `/api/tags`,
//! `/api/ps` and `/api/version` itself.
//!
//! # Phases (Pingora 0.9.1)
//!
//! | phase | job | ctx written |
//! |---|---|---|
//! | `request_filter` | answer local endpoints; read the body (64 KiB retry-buffer tail technique); parse and check it; route; rewrite `model`; pick the first node | endpoint, decision, upstream body, first node |
//! | `upstream_peer` | the node for this attempt (first node, or another one with the model on retry) | current node, tried |
//! | `upstream_request_filter` / `request_body_filter` | path without `?model=`, `Host`, exact `Content-Length`; send the rewritten body once per attempt | body sent |
//! | `fail_to_connect` | mark the node down; retry on another node (nothing was sent yet) | — |
//! | `response_filter` | `x-smarterrouter-model`, `x-request-id` | — |
//! | `fail_to_proxy` | error body in the client's dialect | — |
//! | `logging` | metrics and the access log line | — |
//!
//! Embedding: build a [`RouterState`] from a [`config::LoadedConfig`] and add the services from
//! [`services`] to your own Pingora `Server`.

pub mod admin;
pub mod api;
pub mod config;
pub mod error;
pub mod metrics;
pub mod profile;
pub mod proxy;
pub mod routing;
pub mod store;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use pingora::server::configuration::ServerConf;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use pingora::services::ServiceWithDependents;

pub use config::ResolvedNode;

/// What every phase shares: the settings and the live view of the nodes.
pub struct RouterState {
    /// The embedded store (read at startup and by slow paths; written only by the writer task).
    pub store: Arc<dyn store::Store>,
    /// Queue to the store writer.
    pub store_tx: store::writer::StoreSender,
    /// The writer, until `services` hands it to Pingora.
    store_writer: std::sync::Mutex<Option<store::writer::StoreWriter>>,
    pub feedback: routing::feedback::FeedbackIndex,
    /// Measured model profiles (from the store, and from profiling runs).
    pub profiles: profile::ProfileBook,
    /// Profiling jobs (`/admin/reprofile`).
    pub jobs: profile::jobs::ProfileJobs,
    /// Recent routing decisions by request id, for `POST /v1/feedback`.
    pub recent: store::recent::RecentDecisions,
    pub config: config::RouterConfig,
    /// `config.routing` in the engine's terms, built once.
    pub scoring: routing::score::ScoringSettings,
    pub registry: Arc<upstream::Registry>,
    /// Client for the router's own calls to nodes (discovery, `/api/ps`).
    pub http: reqwest::Client,
}

impl RouterState {
    /// Opens the store and builds the shared state; errors are for the operator to read.
    pub fn new(loaded: &config::LoadedConfig) -> Result<Arc<Self>, String> {
        let store: Arc<dyn store::Store> = Arc::new(
            store::SledStore::open(std::path::Path::new(&loaded.router.data_dir))
                .map_err(|e| e.to_string())?,
        );
        let feedback = routing::feedback::FeedbackIndex::new(loaded.router.feedback.half_life_days);
        for f in store.feedback().map_err(|e| e.to_string())? {
            let category = f
                .category
                .as_deref()
                .and_then(routing::analysis::Category::parse);
            feedback.add(&f.model, category, f.score, f.unix_ms);
        }
        let profiles = profile::ProfileBook::default();
        for p in store.profiles().map_err(|e| e.to_string())? {
            profiles.insert(p);
        }
        let (store_tx, writer) = store::writer::channel(Arc::clone(&store));
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_millis(loaded.router.discovery.timeout_ms))
            .pool_idle_timeout(Duration::from_secs(90));
        // Discovery must reach the same address the proxy connects to (validation picked one,
        // IPv4 first), or a node could look healthy while proxying to it fails.
        for node in &loaded.nodes {
            let host = node
                .host_header
                .rsplit_once(':')
                .map_or(node.host_header.as_str(), |(h, _)| h);
            if host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_err()
            {
                builder = builder.resolve(host, node.addr);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
        Ok(Arc::new(RouterState {
            store,
            store_tx,
            store_writer: std::sync::Mutex::new(Some(writer)),
            feedback,
            profiles,
            jobs: profile::jobs::ProfileJobs::default(),
            recent: store::recent::RecentDecisions::new(10_000),
            scoring: loaded.router.routing.scoring(),
            config: loaded.router.clone(),
            registry: Arc::new(upstream::Registry::new(&loaded.nodes)),
            http,
        }))
    }
}

impl RouterState {
    /// A fresh feedback id: milliseconds since the epoch times 1000, never repeating within the
    /// process (each id is above the last), so ids stay unique across restarts without a disk read.
    pub fn next_feedback_id(&self) -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static LAST: AtomicU64 = AtomicU64::new(0);
        let candidate = store::now_unix_ms().saturating_mul(1000);
        let previous = LAST
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(candidate.max(last + 1))
            })
            .unwrap_or(candidate);
        candidate.max(previous + 1)
    }
}

/// The Pingora services of the router: the proxy, the admin side service (unless disabled) and
/// node discovery. Add them all to a `Server`.
pub fn services(
    state: &Arc<RouterState>,
    server_conf: &Arc<ServerConf>,
) -> Vec<Box<dyn ServiceWithDependents>> {
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        server_conf,
        proxy::Router {
            state: Arc::clone(state),
        },
        "smarterrouter proxy",
    );
    proxy.add_tcp(&listen_address(&state.config.host, state.config.port));

    let mut list: Vec<Box<dyn ServiceWithDependents>> = vec![Box::new(proxy)];
    if !state.config.admin.listen.is_empty() {
        let mut admin = Service::new(
            "smarterrouter admin".to_string(),
            admin::AdminApp {
                state: Arc::clone(state),
            },
        );
        admin.add_tcp(&state.config.admin.listen);
        list.push(Box::new(admin));
    }
    let discovery = upstream::discovery::Discovery {
        registry: Arc::clone(&state.registry),
        client: state.http.clone(),
        interval: Duration::from_secs(state.config.discovery.interval_secs),
        vram_history: Some(state.store_tx.clone()),
    };
    list.push(Box::new(background_service(
        "smarterrouter discovery",
        discovery,
    )));
    list.push(Box::new(background_service(
        "smarterrouter profiler",
        profile::jobs::Profiler {
            state: Arc::clone(state),
        },
    )));
    let writer = state.store_writer.lock().ok().and_then(|mut w| w.take());
    if let Some(writer) = writer {
        list.push(Box::new(background_service(
            "smarterrouter store writer",
            writer,
        )));
    }
    list
}

fn listen_address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
