//! The response cache's storage for pingora-cache 0.9.1: a bounded in-memory `Storage`.
//!
//! Bounds come from pingora's eviction manager (a byte budget and an entry limit): after each
//! admission it names the entries to drop and pingora purges them here. An entry is stored only
//! when its miss handler is finished by pingora (the upstream body ended) *and* the body is a
//! complete answer of its kind ([`Replay`]): an SSE stream ends in `data: [DONE]`, an NDJSON one
//! in `"done": true`, a JSON answer parses; none carries an error. A stream cut short, a client
//! that went away, a response over the size limit: the handler is dropped or refuses to finish
//! and nothing is stored. Partial writes are not shared with readers
//! (`support_streaming_partial_write` is false), so pingora issue #932 (a reader of a cancelled
//! writer sees a clean end of a truncated body) cannot happen here; concurrent identical misses
//! wait on the cache lock instead. Expired entries are removed when looked up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::cache::eviction::{simple_lru, CacheEntryId, CacheEntryKey, EvictionManager};
use pingora::cache::key::{CacheHashKey, HashBinary};
use pingora::cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType, Storage,
};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{CacheKey, CacheMeta};
use pingora::{Error, ErrorType, Result};
use serde_json::Value;

use super::key::Replay;

/// One stored answer.
struct Entry {
    id: u64,
    /// The entry as the eviction manager knows it (key with user tag, and id).
    eviction_key: CacheEntryKey,
    meta: (Vec<u8>, Vec<u8>),
    body: Bytes,
    model: String,
}

/// What the stored entries add up to.
#[derive(Debug, Default)]
pub struct StorageCounters {
    pub entries: AtomicUsize,
    pub bytes: AtomicUsize,
    pub evictions: AtomicU64,
}

pub struct BoundedStorage {
    entries: RwLock<HashMap<HashBinary, Entry>>,
    next_id: AtomicU64,
    max_response_bytes: usize,
    eviction: &'static simple_lru::Manager,
    pub counters: Arc<StorageCounters>,
}

/// The cache key's `user_tag` carries what the miss handler must know about the request.
pub fn user_tag(replay: Replay, model: &str) -> String {
    format!("{}|{model}", replay.as_str())
}

fn parse_user_tag(tag: &str) -> (Replay, String) {
    let (replay, model) = tag.split_once('|').unwrap_or(("json", tag));
    (
        Replay::parse(replay).unwrap_or(Replay::Json),
        model.to_string(),
    )
}

impl BoundedStorage {
    pub fn new(max_response_bytes: usize, eviction: &'static simple_lru::Manager) -> Self {
        BoundedStorage {
            entries: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            max_response_bytes,
            eviction,
            counters: Arc::new(StorageCounters::default()),
        }
    }

    fn remove(&self, hash: &HashBinary, only_id: Option<u64>) -> Option<Entry> {
        let mut entries = self.entries.write().ok()?;
        let matches = entries
            .get(hash)
            .is_some_and(|e| only_id.is_none_or(|id| id == e.id));
        if !matches {
            return None;
        }
        let entry = entries.remove(hash)?;
        self.counters.entries.fetch_sub(1, Ordering::Relaxed);
        let before = self
            .counters
            .bytes
            .fetch_sub(entry.body.len(), Ordering::Relaxed);
        crate::metrics::set_cache_bytes(before.saturating_sub(entry.body.len()));
        Some(entry)
    }

    /// Removes an entry the eviction manager still counts (expired, invalidated).
    fn drop_entry(&self, hash: &HashBinary) -> bool {
        match self.remove(hash, None) {
            Some(entry) => {
                self.eviction.remove((&entry.eviction_key).into());
                true
            }
            None => false,
        }
    }

    fn insert(&self, hash: HashBinary, entry: Entry) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        let added = entry.body.len();
        match entries.insert(hash, entry) {
            Some(old) => {
                self.counters
                    .bytes
                    .fetch_sub(old.body.len(), Ordering::Relaxed);
                // The replaced answer's weight must not linger in the eviction manager.
                self.eviction.remove((&old.eviction_key).into());
            }
            None => {
                self.counters.entries.fetch_add(1, Ordering::Relaxed);
            }
        }
        let before = self.counters.bytes.fetch_add(added, Ordering::Relaxed);
        crate::metrics::set_cache_bytes(before + added);
    }

    /// Removes every entry (or every entry of `model`); returns how many.
    pub fn invalidate(&self, model: Option<&str>) -> usize {
        let doomed: Vec<HashBinary> = match self.entries.read() {
            Ok(entries) => entries
                .iter()
                .filter(|(_, e)| model.is_none_or(|m| e.model == m))
                .map(|(hash, _)| *hash)
                .collect(),
            Err(_) => return 0,
        };
        doomed.iter().filter(|hash| self.drop_entry(hash)).count()
    }
}

#[async_trait]
impl Storage for BoundedStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let hash = key.combined_bin();
        let found = self
            .entries
            .read()
            .ok()
            .and_then(|entries| entries.get(&hash).map(|e| (e.meta.clone(), e.body.clone())));
        let Some((raw_meta, body)) = found else {
            return Ok(None);
        };
        let meta = CacheMeta::deserialize(&raw_meta.0, &raw_meta.1)?;
        if meta.fresh_until() <= SystemTime::now() {
            // Expired: gone now, so the request is a plain miss (never served stale).
            self.drop_entry(&hash);
            return Ok(None);
        }
        Ok(Some((meta, Box::new(StoredHit { body: Some(body) }))))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let (replay, model) = parse_user_tag(key.user_tag());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(StoreOnFinish {
            storage: self,
            hash: key.combined_bin(),
            id,
            eviction_key: CacheEntryKey::identified(key.to_compact(), CacheEntryId::new(id)),
            meta: meta.serialize()?,
            body: BytesMut::new(),
            replay,
            model,
            oversize: false,
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let hash = target.key().combined_bin();
        let only_id = match target {
            PurgeTarget::Exact(CacheEntryKey::Identified { id, .. }) => Some(id.get()),
            _ => None,
        };
        match self.remove(&hash, only_id) {
            Some(entry) => {
                if matches!(purge_type, PurgeType::Eviction) {
                    self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::cache_evicted();
                } else {
                    self.eviction.remove((&entry.eviction_key).into());
                }
                Ok(PurgeOutcome::Purged(Some(CacheEntryId::new(entry.id))))
            }
            None => Ok(PurgeOutcome::NotFound),
        }
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let raw = meta.serialize()?;
        let Ok(mut entries) = self.entries.write() else {
            return Ok(false);
        };
        Ok(match entries.get_mut(&key.combined_bin()) {
            Some(entry) => {
                entry.meta = raw;
                true
            }
            None => false,
        })
    }

    fn support_streaming_partial_write(&self) -> bool {
        false
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync + 'static) {
        self
    }
}

/// A hit: the stored body in one piece.
struct StoredHit {
    body: Option<Bytes>,
}

#[async_trait]
impl HandleHit for StoredHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        Ok(self.body.take())
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn std::any::Any + Send + Sync) {
        self
    }
}

/// A miss: buffers the upstream answer and stores it only when it is finished and complete.
struct StoreOnFinish {
    storage: &'static BoundedStorage,
    hash: HashBinary,
    id: u64,
    eviction_key: CacheEntryKey,
    meta: (Vec<u8>, Vec<u8>),
    body: BytesMut,
    replay: Replay,
    model: String,
    oversize: bool,
}

#[async_trait]
impl HandleMiss for StoreOnFinish {
    async fn write_body(&mut self, data: Bytes, eof: bool) -> Result<()> {
        // Never fail the client's response over the cache: an answer too large is just not kept.
        if !self.oversize {
            if self.body.len() + data.len() > self.storage.max_response_bytes {
                self.oversize = true;
                self.body = BytesMut::new();
            } else {
                self.body.extend_from_slice(&data);
            }
        }
        // pingora calls `finish` only once the upstream body has ended; a body that did not end
        // never gets there, and the completeness check catches one that ended badly.
        let _ = eof;
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let refuse = |why: &'static str| Error::e_explain(ErrorType::Custom("not cached"), why);
        if self.oversize {
            return refuse("the answer is over router.cache.max_response_bytes");
        }
        let body = self.body.freeze();
        if !complete(self.replay, &body) {
            return refuse("the answer is not a complete one of its kind");
        }
        let size = body.len();
        self.storage.insert(
            self.hash,
            Entry {
                id: self.id,
                eviction_key: self.eviction_key,
                meta: self.meta,
                body,
                model: self.model,
            },
        );
        Ok(MissFinishType::Created(size))
    }

    fn entry_id(&self) -> Option<CacheEntryId> {
        Some(CacheEntryId::new(self.id))
    }
}

/// Whether `body` is a whole, successful answer of its kind.
pub fn complete(replay: Replay, body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    match replay {
        Replay::Json => serde_json::from_str::<Value>(text)
            .is_ok_and(|v| v.is_object() && v.get("error").is_none()),
        Replay::Sse => {
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            data.last() == Some(&"[DONE]")
                && data[..data.len() - 1].iter().all(|d| {
                    serde_json::from_str::<Value>(d).is_ok_and(|v| v.get("error").is_none())
                })
        }
        Replay::Ndjson => {
            let lines: Vec<Value> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let parsed_all = lines.len() == text.lines().filter(|l| !l.trim().is_empty()).count();
            parsed_all
                && lines.iter().all(|v| v.get("error").is_none())
                && lines
                    .last()
                    .is_some_and(|v| v.get("done") == Some(&Value::Bool(true)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_answers_count() {
        assert!(complete(Replay::Json, br#"{"choices":[]}"#));
        assert!(!complete(Replay::Json, br#"{"choices":["#));
        assert!(!complete(Replay::Json, br#"{"error":"x"}"#));
        let sse = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        assert!(complete(Replay::Sse, sse));
        assert!(!complete(Replay::Sse, b"data: {\"a\":1}\n\n"));
        assert!(!complete(
            Replay::Sse,
            b"data: {\"error\":{}}\n\ndata: [DONE]\n\n"
        ));
        let ndjson = b"{\"done\":false}\n{\"done\":true}\n";
        assert!(complete(Replay::Ndjson, ndjson));
        assert!(!complete(
            Replay::Ndjson,
            b"{\"done\":false}\n{\"error\":\"boom\"}\n"
        ));
        assert!(!complete(Replay::Ndjson, b"{\"done\":false}\n"));
        assert!(!complete(Replay::Ndjson, b"{\"done\":false}\n{\"done\":tr"));
    }
}
