//! The response cache: identical requests answered from memory through pingora-cache.
//!
//! [`key`] decides what is cached and under which key (pure); [`storage`] is the bounded
//! pingora-cache `Storage` that keeps only complete successful answers. The proxy's cache
//! phases (`proxy/cache.rs`) enable pingora-cache for a planned request, give it the key and say
//! which responses may be stored; pingora then serves hits itself (no upstream call) and its
//! cache lock makes concurrent identical misses wait for one upstream answer.
//!
//! With `router.cache.semantic.embed_model` set, a request the exact key cannot answer has its
//! last user turn embedded ([`embedder`]) and looked up among stored turns of the same context
//! ([`semantic`]); a match (cosine and guard) becomes the key pingora looks up, so the hit is
//! served by pingora-cache from the matched entry. Such a request never stores its own answer
//! under the matched key.

pub mod embedder;
pub mod key;
pub mod semantic;
pub mod storage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pingora::cache::eviction::simple_lru;
use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};
use serde_json::{json, Value};

pub use key::{Bypass, CachePolicy, CacheRequest, Replay, RoutedRequest};
use semantic::SemanticIndex;
use storage::{BoundedStorage, StorageCounters};

use crate::config::CacheConfig;

/// How an answer was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheKind {
    /// By the whole request's key.
    #[default]
    Exact,
    /// By a stored answer to a reworded last turn.
    Semantic,
}

impl CacheKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Exact => "exact",
            CacheKind::Semantic => "semantic",
        }
    }
}

/// Hits and misses, for `/admin/cache/stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub exact_hits: AtomicU64,
    pub exact_misses: AtomicU64,
    pub semantic_hits: AtomicU64,
    /// Semantic lookups that found nothing (each is an exact miss too).
    pub semantic_misses: AtomicU64,
    pub bypasses: AtomicU64,
}

/// A last turn to index once its answer is stored.
#[derive(Debug, Clone)]
pub struct PendingTurn {
    pub context: [u8; 16],
    pub text: String,
    pub vector: Vec<f32>,
}

/// What the semantic lookup did for a request.
#[derive(Debug, Default)]
pub enum SemanticOutcome {
    /// Not configured, not a chat or completion turn, an exact entry exists, or no embedding.
    #[default]
    NotTried,
    /// The plan's key now names the matched entry.
    Hit { similarity: f32 },
    /// Nothing similar; index this turn if its answer gets stored.
    Miss(PendingTurn),
}

/// The semantic half, when configured.
struct SemanticCache {
    embedder: embedder::Embedder,
    threshold: f32,
    guard: bool,
}

/// The process's response cache (built once; pingora needs `'static` parts).
pub struct ResponseCache {
    pub policy: CachePolicy,
    pub ttl: Duration,
    pub storage: &'static BoundedStorage,
    pub lock: &'static CacheKeyLockImpl,
    /// How long a request waits for an identical one to fill the cache.
    pub lock_wait: Duration,
    pub counters: Arc<CacheCounters>,
    storage_counters: Arc<StorageCounters>,
    pub index: &'static SemanticIndex,
    semantic: Option<SemanticCache>,
}

impl ResponseCache {
    /// `longest_answer` bounds how long an identical request waits for the first one (the
    /// upstream read timeout): shorter, and waiters would give up and go upstream together.
    /// `registry` and `client` reach the embedding model's node (semantic cache only).
    pub fn new(
        config: &CacheConfig,
        longest_answer: Duration,
        registry: Arc<crate::upstream::Registry>,
        client: reqwest::Client,
        shared: Option<Arc<crate::cluster::Cluster>>,
    ) -> Self {
        let eviction: &'static simple_lru::Manager = Box::leak(Box::new(
            simple_lru::Manager::new_with_watermark(config.max_bytes, Some(config.max_entries)),
        ));
        let index: &'static SemanticIndex =
            Box::leak(Box::new(SemanticIndex::new(config.max_entries)));
        let storage: &'static BoundedStorage = Box::leak(Box::new(BoundedStorage::new(
            config.max_response_bytes,
            eviction,
            index,
            shared,
        )));
        let semantic = config
            .semantic
            .embed_model
            .clone()
            .map(|model| SemanticCache {
                embedder: embedder::Embedder::new(
                    model,
                    Duration::from_millis(config.semantic.timeout_ms),
                    registry,
                    client,
                ),
                threshold: config.semantic.similarity_threshold as f32,
                guard: config.semantic.guard,
            });
        let lock_wait = longest_answer + Duration::from_secs(30);
        let lock: &'static CacheLock = Box::leak(CacheLock::new_boxed(lock_wait));
        ResponseCache {
            policy: CachePolicy {
                enabled: config.enabled,
                skip_random_sampling: config.skip_random_sampling,
            },
            ttl: Duration::from_secs(config.ttl_secs),
            storage,
            lock,
            lock_wait,
            counters: Arc::new(CacheCounters::default()),
            storage_counters: Arc::clone(&storage.counters),
            index,
            semantic,
        }
    }

    /// For a planned request exact storage cannot answer: looks for a stored answer to a
    /// reworded last turn and, when one matches, points `plan` at it.
    pub async fn find_similar(
        &self,
        plan: &mut CacheRequest,
        request: RoutedRequest<'_>,
    ) -> SemanticOutcome {
        let Some(semantic) = &self.semantic else {
            return SemanticOutcome::NotTried;
        };
        if self.storage.holds_fresh(&plan.hash) {
            return SemanticOutcome::NotTried;
        }
        let Some(query) = key::semantic_query(request).filter(|q| semantic::matchable(&q.text))
        else {
            return SemanticOutcome::NotTried;
        };
        let Some(vector) = semantic.embedder.embed(&query.text).await else {
            return SemanticOutcome::NotTried;
        };
        let found = self.index.lookup(
            &query.context,
            &query.text,
            &vector,
            semantic.threshold,
            semantic.guard,
        );
        match found {
            Some(m) if self.storage.holds_fresh(&m.hash) => {
                plan.hash = m.hash;
                SemanticOutcome::Hit {
                    similarity: m.similarity,
                }
            }
            _ => SemanticOutcome::Miss(PendingTurn {
                context: query.context,
                text: query.text,
                vector,
            }),
        }
    }

    /// After the response: indexes a turn whose answer was stored.
    pub fn index_if_stored(&self, hash: &[u8; 16], turn: PendingTurn) {
        if self.storage.holds_fresh(hash) {
            self.index
                .insert(turn.context, *hash, &turn.text, turn.vector);
            // Evicted meanwhile (its removal found nothing to remove yet): no stale vector.
            if !self.storage.holds_fresh(hash) {
                self.index.remove(hash);
            }
        }
    }

    /// Counts a request's outcome: `kind` how it was looked up (`None`: bypassed),
    /// `semantic_miss` whether a semantic lookup ran and found nothing.
    pub fn record(&self, kind: Option<CacheKind>, hit: bool, semantic_miss: bool) {
        let counter = match (kind, hit) {
            (Some(CacheKind::Exact), true) => &self.counters.exact_hits,
            (Some(CacheKind::Semantic), true) => &self.counters.semantic_hits,
            (Some(_), false) => &self.counters.exact_misses,
            (None, _) => &self.counters.bypasses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if semantic_miss {
            self.counters
                .semantic_misses
                .fetch_add(1, Ordering::Relaxed);
        }
        crate::metrics::observe_cache(
            kind.map(CacheKind::as_str),
            hit,
            semantic_miss,
            self.hit_rate(),
        );
    }

    /// Hits (of both kinds) over hits and misses (bypasses do not count), 0 before any.
    pub fn hit_rate(&self) -> f64 {
        let hits = (self.counters.exact_hits.load(Ordering::Relaxed)
            + self.counters.semantic_hits.load(Ordering::Relaxed)) as f64;
        let misses = self.counters.exact_misses.load(Ordering::Relaxed) as f64;
        if hits + misses == 0.0 {
            0.0
        } else {
            hits / (hits + misses)
        }
    }

    pub fn bytes(&self) -> usize {
        self.storage_counters.bytes.load(Ordering::Relaxed)
    }

    /// `GET /admin/cache/stats`.
    pub fn stats(&self) -> Value {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (hits, misses) = (
            load(&self.counters.exact_hits),
            load(&self.counters.exact_misses),
        );
        let semantic_hits = load(&self.counters.semantic_hits);
        json!({
            "enabled": self.policy.enabled,
            "entries": self.storage_counters.entries.load(Ordering::Relaxed),
            "bytes": self.bytes(),
            "hits": hits + semantic_hits,
            "misses": misses,
            "bypasses": load(&self.counters.bypasses),
            "hit_rate": self.hit_rate(),
            "evictions": load(&self.storage_counters.evictions),
            "kinds": {
                "exact": {"hits": hits, "misses": misses},
                "semantic": {
                    "enabled": self.semantic.is_some(),
                    "hits": semantic_hits,
                    "misses": load(&self.counters.semantic_misses),
                    "indexed": self.index.len(),
                },
            },
        })
    }

    /// `POST /admin/cache/invalidate[?model=M]`: returns how many entries went.
    pub fn invalidate(&self, model: Option<&str>) -> usize {
        let removed = self.storage.invalidate(model);
        crate::metrics::set_cache_bytes(self.bytes());
        removed
    }
}
