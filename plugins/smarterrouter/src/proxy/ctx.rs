//! Per-request state carried across Pingora phases, in three parts.
//!
//! | field | set in | read in |
//! |---|---|---|
//! | `request.id`, `request.started` | `request_filter` (start) | `response_filter`, `logging`; errors |
//! | `request.endpoint`, `request.dialect` | `request_filter` (routing the path) | `fail_to_proxy`, `logging` |
//! | `request.client` | `request_filter` (the API key) | rate limits, routing (allowed models), cache key, decision record, `logging` |
//! | `request.stream`, `request.background_task` | `request_filter` (the body) | `response_filter` (decision record), `logging` |
//! | `routed` (decision, rewritten body and path, dialect restriction) | `request_filter` (forwarded endpoints) | `upstream_peer`, `upstream_request_filter`, `request_body_filter`, `response_filter`, `logging` |
//! | `attempts` (current node, tried nodes, stale resends, why no node, last node, attempt start, body sent) | `upstream_peer`, `upstream_request_filter`, `request_body_filter`, `fail_to_connect`, `error_while_proxy` | `upstream_peer`, `fail_to_proxy`, `logging` |
//! | `cache.plan` (the key, or why not cached), `cache.semantic` | `request_filter` (after routing) | `request_cache_filter`, `cache_key_callback`, `response_cache_filter`, `response_filter`, `logging` |
//! | `cache.hit` | `response_filter` | `logging` |
//! | `request.forwarded_at` | `upstream_peer` (first attempt) | `logging` (overhead), generation speed |
//! | `request.error_code` | wherever the router writes an error | `logging` (errors metric) |
//! | `generation` (first and last frame, body tail, node status) | `upstream_response_filter`, `upstream_response_body_filter` | `logging` |

use std::time::Instant;

use bytes::Bytes;

use super::peer::Attempts;
use crate::api::{Dialect, Endpoint};
use crate::cache::{Bypass, CacheKind, CacheRequest, SemanticOutcome};
use crate::routing::RoutingDecision;

/// What the request is, from its path and body.
pub struct RequestInfo {
    pub id: String,
    pub started: Instant,
    pub endpoint: Option<Endpoint>,
    pub dialect: Dialect,
    pub stream: bool,
    /// The client app's own background request (e.g. Open WebUI's title generation), if it is one.
    pub background_task: Option<&'static str>,
    /// The API key's client, when `router.auth.api_keys` is set.
    pub client: Option<std::sync::Arc<crate::auth::Client>>,
    /// When the first node attempt began (`upstream_peer`): the end of the router's own work.
    pub forwarded_at: Option<Instant>,
    /// The router's error code when the router answered with an error.
    pub error_code: Option<&'static str>,
}

/// A forwarded request after routing.
pub struct Routed {
    pub decision: RoutingDecision,
    /// The rewritten body sent to the node, replayed on every attempt.
    pub upstream_body: Bytes,
    /// Path and query forwarded (the router's own `?model=` removed).
    pub upstream_path: String,
    /// Ollama-dialect request: only Ollama nodes can serve it.
    pub ollama_only: bool,
    /// Why the engine chose (generations only), handed to the activity log in `logging`.
    pub breakdown: Option<Box<crate::activity::Breakdown>>,
}

/// The cache's view of the request.
#[derive(Debug, Default)]
pub struct CacheCtx {
    /// `None` for requests the cache never sees (local endpoints, errors before routing).
    pub plan: Option<Result<CacheRequest, Bypass>>,
    /// What the semantic lookup did (a hit repointed `plan`'s key).
    pub semantic: SemanticOutcome,
    /// Answered from cache.
    pub hit: bool,
}

impl CacheCtx {
    /// How the answer was looked up.
    pub fn kind(&self) -> CacheKind {
        match self.semantic {
            SemanticOutcome::Hit { .. } => CacheKind::Semantic,
            _ => CacheKind::Exact,
        }
    }
}

pub struct RequestCtx {
    pub request: RequestInfo,
    pub routed: Option<Routed>,
    pub attempts: Attempts,
    pub cache: CacheCtx,
    /// (node id, model) this request counts as using, for the VRAM monitor's usage book.
    pub vram_use: Option<(usize, String)>,
    /// Set once the node answers a request that had to load its model (the load watchdog).
    pub cold_answered: Option<std::sync::Arc<std::sync::atomic::AtomicU8>>,
    /// What the node's answer says about the generation (for the metrics).
    pub generation: super::generation::GenerationCtx,
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            request: RequestInfo {
                id: String::new(),
                started: Instant::now(),
                endpoint: None,
                dialect: Dialect::OpenAi,
                stream: false,
                background_task: None,
                client: None,
                forwarded_at: None,
                error_code: None,
            },
            routed: None,
            attempts: Attempts::default(),
            cache: CacheCtx::default(),
            vram_use: None,
            cold_answered: None,
            generation: Default::default(),
        }
    }

    pub fn decision(&self) -> Option<&RoutingDecision> {
        self.routed.as_ref().map(|r| &r.decision)
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
