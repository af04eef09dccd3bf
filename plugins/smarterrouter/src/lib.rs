//! SmarterRouter as a Pingora plugin: an LLM router in front of Ollama and OpenAI-compatible
//! servers (llama.cpp's `llama-server`).
//!
//! Clients speak the OpenAI API (`/v1/*`) or the Ollama API (`/api/*`). For each request the
//! router reads the JSON body, decides the model ([`routing`]), rewrites `model`, picks a healthy
//! node of the pools that has the model ([`upstream`]), and forwards the request unchanged
//! otherwise, streams included. It answers `/health`, `/metrics`, `/v1/models`, `/api/tags`,
//! `/api/ps` and `/api/version` itself.
//!
//! # Layers
//!
//! A module uses only modules of its own line or below, with no cycle (checked by
//! `layer_tests.rs`); only the top two lines see [`RouterState`].
//!
//! | layer | modules |
//! |---|---|
//! | apps | [`proxy`] (the `ProxyHttp` phases), [`admin`] (the side service), [`lifecycle`] (services, start and stop) |
//! | local endpoints | [`endpoints`] (both listeners: dispatcher, body reader, writer) |
//! | capabilities | [`profile`], [`cache`], [`vram`], [`ratelimit`], [`auth`], [`activity`] |
//! | I/O | [`upstream`] (nodes, discovery, the pinned client), [`store`] (sled, its service, handover) |
//! | pure | [`routing`] (analysis, scoring, decision), [`api`] (endpoints, request views, query strings) |
//! | base | [`config`], [`error`] (the one error map), [`model`] (shared data), [`metrics`] |
//!
//! # Phases (Pingora 0.9.1)
//!
//! | phase | job | ctx written |
//! |---|---|---|
//! | `request_filter` | answer local endpoints; read the body (64 KiB retry-buffer tail technique); parse and check it; route; rewrite `model`; pick the first node | `request`, `routed`, first node in `attempts` |
//! | `upstream_peer` | the node for this attempt (first node, or another one with the model on retry) | `attempts` |
//! | `upstream_request_filter` / `request_body_filter` | path without `?model=`, `Host`, exact `Content-Length`; the rewritten body once per attempt | `attempts` |
//! | `fail_to_connect` | mark the node down; retry on another node (nothing was sent yet) | `attempts` |
//! | `error_while_proxy` | resend once on a fresh connection when a pooled one was already closed | `attempts` |
//! | `response_filter` | `x-smarterrouter-model`, `x-smarterrouter-category`, `x-request-id`; the decision record (for feedback); `Connection: close` while draining | — |
//! | `fail_to_proxy` | the error in the client's dialect, through [`error`] | — |
//! | `logging` | metrics and the access log line; node slots freed | — |
//!
//! The table of every `RequestCtx` field, with who sets and reads it, is in [`proxy::ctx`].
//!
//! Embedding: build a [`RouterState`] from a [`config::LoadedConfig`], add the router's services
//! to your own Pingora `Server` with [`lifecycle::add_services`] (after
//! `Server::bootstrap_as_a_service`, so daemon mode and graceful upgrades work), run the server
//! with `Server::run`, then call [`lifecycle::finish`] to write what is still queued.

pub mod activity;
pub mod admin;
pub mod api;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod proxy;
pub mod ratelimit;
pub mod routing;
pub mod store;
pub mod upstream;
pub mod vram;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub use config::ResolvedNode;

/// How long dependent services wait for the store before they start anyway.
const STORE_READY_WITHIN: Duration = Duration::from_secs(10);

/// What every phase shares: the settings and the live view of the nodes.
pub struct RouterState {
    /// The embedded store, opened by the store service after the server has started (never
    /// before daemonising); read by slow paths only.
    pub store: Arc<store::StoreHandle>,
    /// Queue to the store service, the only writer.
    pub store_tx: store::writer::StoreSender,
    store_service: Arc<store::service::StoreService>,
    pub feedback: Arc<routing::feedback::FeedbackIndex>,
    /// Measured model profiles (from the store, and from profiling runs).
    pub profiles: Arc<profile::ProfileBook>,
    /// Profiling jobs (`/admin/reprofile`).
    pub jobs: Arc<profile::jobs::ProfileJobs>,
    /// Recent routing decisions by request id, for `POST /v1/feedback`.
    pub recent: Arc<store::recent::RecentDecisions>,
    pub config: config::RouterConfig,
    /// `config.routing` in the engine's terms, built once.
    pub scoring: routing::score::ScoringSettings,
    pub registry: Arc<upstream::Registry>,
    /// The router's own calls to nodes (discovery, `/api/ps`, profiling), DNS-pinned.
    pub node_client: upstream::NodeClient,
    /// Set once this process is shutting down or being replaced: responses then close their
    /// connection, so keep-alive clients reconnect to whoever serves next.
    pub draining: AtomicBool,
    /// The response cache (through pingora-cache).
    pub cache: cache::ResponseCache,
    /// GPU memory samples (filled by the VRAM monitor service).
    pub vram: Arc<vram::VramMonitor>,
    /// Per-client limits on the proxy port (model requests and feedback; `/admin/*`), when on.
    pub limits: Option<ratelimit::RateLimits>,
    /// The shared Redis of cluster mode (`router.cluster.redis_url`); `None`: on our own.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// Client API keys; empty when `router.auth.api_keys` is.
    pub clients: auth::ClientKeys,
    /// The learned prompt classifier's weights; `None` with `router.routing.classifier: keywords`.
    pub classifier: Option<Arc<routing::classifier::Weights>>,
    /// The last decisions and the last hour's counts (`/admin/decisions`, `/admin/activity`, the dashboard).
    pub activity: activity::Activity,
}

/// Why the router state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Upstream(#[from] upstream::UpstreamError),
    #[error("{0}")]
    Classifier(String),
}

/// The classifier `router.routing` asks for: the shipped weights, another file, or none
/// (keywords). A damaged or wrong-version file is an error naming the setting and the file.
pub fn classifier_from_config(
    routing: &config::RoutingConfig,
) -> Result<Option<Arc<routing::classifier::Weights>>, StartError> {
    use routing::classifier::{Weights, SHIPPED};
    if routing.classifier == config::ClassifierKind::Keywords {
        return Ok(None);
    }
    let weights = match &routing.classifier_weights {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                StartError::Classifier(format!(
                    "router.routing.classifier_weights ({path}): cannot read the file: {e}"
                ))
            })?;
            Weights::from_bytes(&bytes).map_err(|e| {
                StartError::Classifier(format!("router.routing.classifier_weights ({path}): {e}"))
            })?
        }
        None => SHIPPED.as_ref().cloned().map_err(|e| {
            StartError::Classifier(format!(
                "the classifier weights built into this binary: {e} (set router.routing.classifier: keywords to run without them)"
            ))
        })?,
    };
    Ok(Some(Arc::new(weights)))
}

/// Loads what the process keeps in memory from the store when it opens, and records handed
/// over by an old process.
struct MemoryViews {
    feedback: Arc<routing::feedback::FeedbackIndex>,
    profiles: Arc<profile::ProfileBook>,
    recent: Arc<store::recent::RecentDecisions>,
}

impl store::writer::StoreListener for MemoryViews {
    fn opened(&self, store: &dyn store::Store) -> Result<(), store::StoreError> {
        for f in store.feedback()? {
            self.add_feedback(&f);
        }
        for p in store.profiles()? {
            self.profiles.insert(p);
        }
        Ok(())
    }

    fn imported(&self, record: &store::Record) {
        match record {
            store::Record::Feedback(f) => self.add_feedback(f),
            store::Record::Profile(p) => self.profiles.insert(p.clone()),
            // A decision the old process made: feedback for it may come here at once.
            store::Record::Decision(d) => self.recent.insert(d.clone(), true),
            store::Record::Vram(_) => {}
        }
    }

    fn recent_decision(&self, request_id: &str) -> Option<store::DecisionRecord> {
        self.recent.get(request_id)
    }

    fn take_unstored_decisions(&self) -> Vec<store::DecisionRecord> {
        self.recent.take_unstored()
    }
}

impl MemoryViews {
    fn add_feedback(&self, f: &store::Feedback) {
        let category = f
            .category
            .as_deref()
            .and_then(routing::analysis::Category::parse);
        self.feedback.add(&f.model, category, f.score, f.unix_ms);
    }
}

impl RouterState {
    /// Builds the shared state. Starts nothing (no thread, no task; the only file read is
    /// `router.routing.classifier_weights`, when set): Pingora may still fork to daemonise; the
    /// store opens in the store service.
    pub fn new(loaded: &config::LoadedConfig) -> Result<Arc<Self>, StartError> {
        let classifier = classifier_from_config(&loaded.router.routing)?;
        let feedback = Arc::new(routing::feedback::FeedbackIndex::new(
            loaded.router.feedback.half_life_days,
        ));
        let profiles = Arc::new(profile::ProfileBook::default());
        let handle = Arc::new(store::StoreHandle::new(std::path::Path::new(
            &loaded.router.data_dir,
        )));
        let recent = Arc::new(store::recent::RecentDecisions::new(10_000));
        let views = Arc::new(MemoryViews {
            feedback: Arc::clone(&feedback),
            profiles: Arc::clone(&profiles),
            recent: Arc::clone(&recent),
        });
        let (store_tx, store_service) =
            store::service::start(Arc::clone(&handle), views, STORE_READY_WITHIN);
        let node_client = upstream::NodeClient::new(
            &loaded.nodes,
            Duration::from_millis(loaded.router.discovery.timeout_ms),
        )?;
        let registry = Arc::new(upstream::Registry::new(&loaded.nodes));
        let cluster =
            cluster::Cluster::from_config(&loaded.router.cluster, &loaded.router.data_dir);
        let cache = cache::ResponseCache::new(
            &loaded.router.cache,
            Duration::from_secs(loaded.router.upstream.read_timeout_secs),
            Arc::clone(&registry),
            node_client.control().clone(),
            cluster
                .clone()
                .filter(|_| loaded.router.cluster.share_cache),
        );
        if let Some(cluster) = &cluster {
            // Feedback another instance accepted: into this one's scoring and store.
            let index = Arc::clone(&feedback);
            let store = store_tx.clone();
            cluster.set_feedback_sink(Box::new(move |f: store::Feedback| {
                let category = f
                    .category
                    .as_deref()
                    .and_then(routing::analysis::Category::parse);
                index.add(&f.model, category, f.score, f.unix_ms);
                store.send(store::Record::Feedback(f));
            }));
        }
        Ok(Arc::new(RouterState {
            store: handle,
            store_tx,
            store_service,
            feedback,
            profiles,
            jobs: Arc::new(profile::jobs::ProfileJobs::default()),
            recent,
            scoring: routing::score::ScoringSettings::from_config(&loaded.router.routing),
            config: loaded.router.clone(),
            registry,
            node_client,
            draining: AtomicBool::new(false),
            cache,
            vram: Arc::new(vram::VramMonitor::new(&loaded.router.vram)),
            limits: ratelimit::RateLimits::from_config(&loaded.router.rate_limit),
            cluster,
            clients: auth::ClientKeys::from_config(&loaded.router.auth),
            classifier,
            activity: activity::Activity::default(),
        }))
    }

    /// A fresh feedback id: milliseconds since the epoch times 1000, never repeating within the
    /// process (each id is above the last). Another process may pick the same one during an
    /// upgrade; the store then keeps the record under the next free id.
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

#[cfg(test)]
mod layer_tests;
#[cfg(test)]
mod property_tests;
