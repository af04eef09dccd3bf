//! The response cache's storage for pingora-cache 0.9.1: a bounded in-memory `Storage`.
//!
//! Bounds come from pingora's eviction manager (`simple_lru`: a byte budget and an entry limit).
//! The storage drives it itself: each stored answer is admitted and whatever the manager names
//! is dropped at once, in the same call; each hit is reported as an access (LRU order). (Handing
//! the manager to pingora instead would make it spawn a purge task for every stored answer.)
//!
//! An entry is stored only when its miss handler is finished by pingora (the upstream body
//! ended) *and* the body is a complete answer of its kind ([`Replay`]): an SSE stream ends in
//! `data: [DONE]`, an NDJSON one in `"done": true`, a JSON answer is an object; none carries an
//! error. A stream cut short, a client that went away, a response over the size limit: the
//! handler is dropped or refuses to finish and nothing is stored. Partial writes are not shared
//! with readers (`support_streaming_partial_write` is false), so pingora issue #932 (a reader of
//! a cancelled writer sees a clean end of a truncated body) cannot happen here; concurrent
//! identical misses wait on the cache lock instead. Expired entries are removed when looked up.
//! Entries leave the semantic index with the storage.
//!
//! In cluster mode a shared tier sits behind it: a local miss asks Redis (within
//! `router.cluster.timeout_ms`, never while Redis is down) and keeps what it finds; each stored
//! answer is also written to Redis, off the request, with the entry's TTL. The key and the
//! never-cache rules are the local ones; values are capped by `max_response_bytes` as here.

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
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, Result};
use serde::de::IgnoredAny;

use super::key::Replay;
use super::semantic::SemanticIndex;
use crate::cluster::Cluster;

/// One stored answer.
struct Entry {
    id: u64,
    /// The entry as the eviction manager knows it (key with user tag, and id).
    eviction_key: CacheEntryKey,
    meta: StoredMeta,
    body: Bytes,
    model: String,
}

/// What pingora's `CacheMeta` carries that we use, kept as it is: serialising a `CacheMeta`
/// compresses its header with zstd, a cost every miss would pay for nothing (it never leaves
/// memory).
#[derive(Clone)]
struct StoredMeta {
    fresh_until: SystemTime,
    created: SystemTime,
    header: ResponseHeader,
}

impl StoredMeta {
    fn of(meta: &CacheMeta) -> Self {
        StoredMeta {
            fresh_until: meta.fresh_until(),
            created: meta.created(),
            header: meta.response_header_copy(),
        }
    }

    fn to_meta(&self) -> CacheMeta {
        CacheMeta::new(self.fresh_until, self.created, 0, 0, self.header.clone())
    }
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
    /// The semantic index: an answer that leaves storage leaves it too.
    index: &'static SemanticIndex,
    pub counters: Arc<StorageCounters>,
    /// Cluster mode's shared tier.
    shared: Option<Arc<Cluster>>,
    /// The cluster's invalidation epoch this storage was last cleared at.
    seen_epoch: AtomicU64,
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
    pub fn new(
        max_response_bytes: usize,
        eviction: &'static simple_lru::Manager,
        index: &'static SemanticIndex,
        shared: Option<Arc<Cluster>>,
    ) -> Self {
        BoundedStorage {
            entries: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            max_response_bytes,
            eviction,
            index,
            counters: Arc::new(StorageCounters::default()),
            shared,
            seen_epoch: AtomicU64::new(0),
        }
    }

    /// Another instance invalidated the cluster's cache: this tier's copies go too.
    fn follow_cluster_invalidation(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let epoch = shared.cache_epoch();
        if self.seen_epoch.swap(epoch, Ordering::Relaxed) != epoch {
            self.invalidate_local(None);
        }
    }

    /// An answer of the shared tier, kept here too; `None` when Redis has none (or is down).
    async fn lookup_shared(
        &self,
        key: &CacheKey,
        hash: HashBinary,
    ) -> Option<(CacheMeta, HitHandler)> {
        let shared = self.shared.as_ref().filter(|c| c.is_up())?;
        let bytes = shared.get("cache", &shared_key(shared, &hash)).await?;
        let (meta, model, body) = decode_shared(&bytes)?;
        if meta.fresh_until <= SystemTime::now() || body.len() > self.max_response_bytes {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let eviction_key = CacheEntryKey::identified(key.to_compact(), CacheEntryId::new(id));
        let fresh_until = meta.fresh_until;
        let found = (meta.to_meta(), body.clone());
        self.insert(
            hash,
            Entry {
                id,
                eviction_key: eviction_key.clone(),
                meta,
                body,
                model,
            },
        );
        self.admit(eviction_key, found.1.len(), fresh_until);
        crate::metrics::cache_shared_hit();
        Some((
            found.0,
            Box::new(StoredHit {
                body: Some(found.1),
            }),
        ))
    }

    /// Writes a stored answer to the shared tier, off the request.
    fn publish_shared(&self, hash: HashBinary, meta: &StoredMeta, model: &str, body: &Bytes) {
        let Some(shared) = self.shared.as_ref().filter(|c| c.is_up()) else {
            return;
        };
        let Ok(ttl) = meta.fresh_until.duration_since(SystemTime::now()) else {
            return;
        };
        let value = encode_shared(meta, model, body);
        let key = shared_key(shared, &hash);
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            shared.put("cache", &key, &value, ttl).await;
        });
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
        drop(entries);
        self.index.remove(hash);
        self.counters.entries.fetch_sub(1, Ordering::Relaxed);
        let before = self
            .counters
            .bytes
            .fetch_sub(entry.body.len(), Ordering::Relaxed);
        crate::metrics::set_cache_bytes(before.saturating_sub(entry.body.len()));
        Some(entry)
    }

    /// Removes an entry the eviction manager still counts (expired, invalidated).
    fn drop_entry(&self, hash: &HashBinary, only_id: Option<u64>) -> bool {
        match self.remove(hash, only_id) {
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

    /// Admits a stored answer to the eviction manager and drops what it evicts.
    fn admit(&self, key: CacheEntryKey, size: usize, fresh_until: SystemTime) {
        for evicted in self.eviction.admit(key, size, fresh_until) {
            let only_id = evicted.entry_id().map(CacheEntryId::get);
            if self
                .remove(&evicted.key().combined_bin(), only_id)
                .is_some()
            {
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                crate::metrics::cache_evicted();
            }
        }
    }

    /// Whether an unexpired answer is stored under `hash`.
    pub fn holds_fresh(&self, hash: &HashBinary) -> bool {
        let Ok(entries) = self.entries.read() else {
            return false;
        };
        entries
            .get(hash)
            .is_some_and(|e| e.meta.fresh_until > SystemTime::now())
    }

    /// Removes every entry (or every entry of `model`) here; returns how many went. In cluster
    /// mode the shared tier and (within a ping, half a second) the other instances' local tiers
    /// are cleared too, wholly: Redis does not index its entries by model.
    pub fn invalidate(&self, model: Option<&str>) -> usize {
        if let Some(shared) = &self.shared {
            let shared = Arc::clone(shared);
            tokio::spawn(async move { shared.invalidate_cache().await });
        }
        self.invalidate_local(model)
    }

    fn invalidate_local(&self, model: Option<&str>) -> usize {
        let doomed: Vec<HashBinary> = match self.entries.read() {
            Ok(entries) => entries
                .iter()
                .filter(|(_, e)| model.is_none_or(|m| e.model == m))
                .map(|(hash, _)| *hash)
                .collect(),
            Err(_) => return 0,
        };
        doomed
            .iter()
            .filter(|hash| self.drop_entry(hash, None))
            .count()
    }
}

#[async_trait]
impl Storage for BoundedStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        self.follow_cluster_invalidation();
        let hash = key.combined_bin();
        let found = self.entries.read().ok().and_then(|entries| {
            entries.get(&hash).map(|e| {
                (
                    e.meta.to_meta(),
                    e.body.clone(),
                    e.eviction_key.clone(),
                    e.id,
                )
            })
        });
        let Some((meta, body, entry_key, id)) = found else {
            return Ok(self.lookup_shared(key, hash).await);
        };
        if meta.fresh_until() <= SystemTime::now() {
            // Expired: gone now, so the request is a plain miss (never served stale). Only this
            // entry: a fresh one stored meanwhile under the same key stays.
            self.drop_entry(&hash, Some(id));
            return Ok(self.lookup_shared(key, hash).await);
        }
        self.eviction
            .access(&entry_key, body.len(), meta.fresh_until());
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
            meta: StoredMeta::of(meta),
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
        let stored = StoredMeta::of(meta);
        let Ok(mut entries) = self.entries.write() else {
            return Ok(false);
        };
        Ok(match entries.get_mut(&key.combined_bin()) {
            Some(entry) => {
                entry.meta = stored;
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
    meta: StoredMeta,
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
        let fresh_until = self.meta.fresh_until;
        self.storage
            .publish_shared(self.hash, &self.meta, &self.model, &body);
        self.storage.insert(
            self.hash,
            Entry {
                id: self.id,
                eviction_key: self.eviction_key.clone(),
                meta: self.meta,
                body,
                model: self.model,
            },
        );
        self.storage.admit(self.eviction_key, size, fresh_until);
        Ok(MissFinishType::Created(size))
    }

    fn entry_id(&self) -> Option<CacheEntryId> {
        Some(CacheEntryId::new(self.id))
    }
}

/// The shared tier's key: the cluster's invalidation epoch and the cache key's hash, so an
/// invalidation makes every older entry unreachable at once (they expire by their TTL), even one
/// written while it was going on.
fn shared_key(shared: &Cluster, hash: &HashBinary) -> String {
    format!("{}:{}", shared.cache_epoch(), hex(hash))
}

fn hex(hash: &HashBinary) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// What the shared tier stores besides the body (one JSON line before it).
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedHead {
    fresh_until_ms: u64,
    created_ms: u64,
    status: u16,
    headers: Vec<(String, String)>,
    model: String,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn encode_shared(meta: &StoredMeta, model: &str, body: &[u8]) -> Vec<u8> {
    let head = SharedHead {
        fresh_until_ms: unix_ms(meta.fresh_until),
        created_ms: unix_ms(meta.created),
        status: meta.header.status.as_u16(),
        headers: meta
            .header
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect(),
        model: model.to_string(),
    };
    let mut out = serde_json::to_vec(&head).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn decode_shared(bytes: &[u8]) -> Option<(StoredMeta, String, Bytes)> {
    let split = memchr::memchr(b'\n', bytes)?;
    let head: SharedHead = serde_json::from_slice(&bytes[..split]).ok()?;
    let mut header = ResponseHeader::build(head.status, Some(head.headers.len())).ok()?;
    for (name, value) in head.headers {
        header.append_header(name, value).ok()?;
    }
    let at = |ms: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    Some((
        StoredMeta {
            fresh_until: at(head.fresh_until_ms),
            created: at(head.created_ms),
            header,
        },
        head.model,
        Bytes::copy_from_slice(&bytes[split + 1..]),
    ))
}

/// The parts of an answer (or of one stream frame) the completeness check reads; every other
/// field is skipped without being built.
#[derive(serde::Deserialize)]
struct Frame {
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    done: Option<bool>,
}

/// An object without an `error`: `Some(done)`; anything else: `None`.
fn frame(text: &str) -> Option<Option<bool>> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Frame>(text) {
        Ok(Frame { error: None, done }) => Some(done),
        _ => None,
    }
}

/// Whether `body` is a whole, successful answer of its kind.
pub fn complete(replay: Replay, body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    match replay {
        Replay::Json => frame(text).is_some(),
        Replay::Sse => {
            let mut data = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .peekable();
            let mut frames = 0;
            while let Some(d) = data.next() {
                if data.peek().is_none() {
                    return d == "[DONE]" && frames > 0;
                }
                if frame(d).is_none() {
                    return false;
                }
                frames += 1;
            }
            false
        }
        Replay::Ndjson => {
            let mut last_done = false;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match frame(line) {
                    Some(done) => last_done = done == Some(true),
                    None => return false,
                }
            }
            last_done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_entry_reads_back_as_it_was_written() {
        let mut header = ResponseHeader::build(200, None).unwrap();
        header
            .append_header("content-type", "application/json")
            .unwrap();
        header
            .append_header("x-smarterrouter-model", "llama3.2:1b")
            .unwrap();
        let created = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let meta = StoredMeta {
            fresh_until: created + std::time::Duration::from_secs(60),
            created,
            header,
        };
        let body = b"{\"choices\":[]}\nsecond line";
        let (back, model, read) =
            decode_shared(&encode_shared(&meta, "llama3.2:1b", body)).unwrap();
        assert_eq!(model, "llama3.2:1b");
        assert_eq!(&read[..], &body[..]);
        assert_eq!(back.created, created);
        assert_eq!(back.fresh_until, meta.fresh_until);
        assert_eq!(back.header.status.as_u16(), 200);
        assert_eq!(back.header.headers["x-smarterrouter-model"], "llama3.2:1b");
        assert!(decode_shared(b"not json\nbody").is_none());
        assert_eq!(hex(&[0xab; 16]).len(), 32);
    }

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
