//! The response cache: identical requests answered from memory through pingora-cache.
//!
//! [`key`] decides what is cached and under which key (pure); [`storage`] is the bounded
//! pingora-cache `Storage` that keeps only complete successful answers. The proxy's cache
//! phases (`proxy/cache.rs`) enable pingora-cache for a planned request, give it the key and say
//! which responses may be stored; pingora then serves hits itself (no upstream call) and its
//! cache lock makes concurrent identical misses wait for one upstream answer.

pub mod key;
pub mod storage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pingora::cache::eviction::simple_lru;
use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};
use serde_json::{json, Value};

pub use key::{Bypass, CachePolicy, CacheRequest, Replay, RoutedRequest};
use storage::{BoundedStorage, StorageCounters};

use crate::config::CacheConfig;

/// How an answer was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Exact,
}

impl CacheKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Exact => "exact",
        }
    }
}

/// Hits and misses, for `/admin/cache/stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub exact_hits: AtomicU64,
    pub exact_misses: AtomicU64,
    pub bypasses: AtomicU64,
}

/// The process's response cache (built once; pingora needs `'static` parts).
pub struct ResponseCache {
    pub policy: CachePolicy,
    pub ttl: Duration,
    pub storage: &'static BoundedStorage,
    pub eviction: &'static simple_lru::Manager,
    pub lock: &'static CacheKeyLockImpl,
    /// How long a request waits for an identical one to fill the cache.
    pub lock_wait: Duration,
    pub counters: Arc<CacheCounters>,
    storage_counters: Arc<StorageCounters>,
}

impl ResponseCache {
    /// `longest_answer` bounds how long an identical request waits for the first one (the
    /// upstream read timeout): shorter, and waiters would give up and go upstream together.
    pub fn new(config: &CacheConfig, longest_answer: Duration) -> Self {
        let eviction: &'static simple_lru::Manager = Box::leak(Box::new(
            simple_lru::Manager::new_with_watermark(config.max_bytes, Some(config.max_entries)),
        ));
        let storage: &'static BoundedStorage = Box::leak(Box::new(BoundedStorage::new(
            config.max_response_bytes,
            eviction,
        )));
        let lock_wait = longest_answer + Duration::from_secs(30);
        let lock: &'static CacheLock = Box::leak(CacheLock::new_boxed(lock_wait));
        ResponseCache {
            policy: CachePolicy {
                enabled: config.enabled,
                skip_random_sampling: config.skip_random_sampling,
            },
            ttl: Duration::from_secs(config.ttl_secs),
            storage,
            eviction,
            lock,
            lock_wait,
            counters: Arc::new(CacheCounters::default()),
            storage_counters: Arc::clone(&storage.counters),
        }
    }

    pub fn record(&self, outcome: Option<CacheKind>, hit: bool) {
        let counter = match (outcome, hit) {
            (Some(CacheKind::Exact), true) => &self.counters.exact_hits,
            (Some(CacheKind::Exact), false) => &self.counters.exact_misses,
            (None, _) => &self.counters.bypasses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        crate::metrics::observe_cache(outcome.map(CacheKind::as_str), hit, self.hit_rate());
    }

    /// Hits over hits and misses (bypasses do not count), 0 before any.
    pub fn hit_rate(&self) -> f64 {
        let hits = self.counters.exact_hits.load(Ordering::Relaxed) as f64;
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
        json!({
            "enabled": self.policy.enabled,
            "entries": self.storage_counters.entries.load(Ordering::Relaxed),
            "bytes": self.bytes(),
            "hits": hits,
            "misses": misses,
            "bypasses": load(&self.counters.bypasses),
            "hit_rate": self.hit_rate(),
            "evictions": load(&self.storage_counters.evictions),
            "kinds": {
                "exact": {"hits": hits, "misses": misses},
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
