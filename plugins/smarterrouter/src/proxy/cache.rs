//! The cache phases: `request_cache_filter` turns pingora-cache on for a request the cache may
//! answer, `cache_key_callback` hands it the key, `response_cache_filter` says which answers may
//! be stored (status 200 of the expected content type; the storage then checks the body is
//! complete). Hits are served by pingora itself: `upstream_peer` never runs for them.

use std::time::{Duration, SystemTime};

use pingora::cache::lock::CacheKeyLockImpl;
use pingora::cache::{
    CacheKey, CacheMeta, CacheOptionOverrides, CachePhase, NoCacheReason, RespCacheable,
};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::cache::storage::user_tag;
use crate::cache::{CacheKind, Replay, ResponseCache, SemanticOutcome};

pub const CACHE_HEADER: &str = "x-smarterrouter-cache";
/// On a semantic hit: the cosine similarity of the matched last turn.
pub const SIMILARITY_HEADER: &str = "x-smarterrouter-cache-similarity";

/// Phase `request_cache_filter`. Reads `ctx.cache`; enables pingora-cache for planned requests.
///
/// The cache lock (identical misses wait for one upstream answer) is taken for one-object
/// answers only: storage never shares a partial write, so a stream waiting on the lock would
/// get its first token only when the first stream ends. A semantic plan takes no lock either:
/// its key is another request's, which it must not hold up. A waiter waits once: if the answer
/// it waited for was not stored, it tries the lock at most once more (pingora's default is
/// twice), then goes upstream uncached, so a failing answer costs waiters at most two waits.
pub fn enable(cache: &ResponseCache, session: &mut Session, ctx: &RequestCtx) {
    if let Some(Ok(plan)) = &ctx.cache.plan {
        let lock: Option<&'static CacheKeyLockImpl> = (plan.replay == Replay::Json
            && ctx.cache.kind() == CacheKind::Exact)
            .then_some(cache.lock);
        let mut overrides = CacheOptionOverrides::default();
        overrides.wait_timeout = Some(cache.lock_wait);
        overrides.max_lock_retries = Some(1);
        // No eviction manager for pingora: the storage admits to it itself and drops what it
        // evicts at once, sparing the task pingora would spawn for each stored answer.
        session
            .cache
            .enable(cache.storage, None, None, lock, Some(overrides));
    }
}

/// Phase `cache_key_callback`. Reads `ctx.cache`; the key is the hash of the routed request.
pub fn key(ctx: &RequestCtx) -> Result<CacheKey> {
    let Some(Ok(plan)) = &ctx.cache.plan else {
        return Error::e_explain(
            ErrorType::InternalError,
            "the cache was enabled for a request it may not answer",
        );
    };
    let mut key = CacheKey::new("", user_tag(plan.replay, &plan.model));
    key.set_primary_bin_override(plan.hash);
    Ok(key)
}

/// Phase `response_cache_filter`. Reads `ctx.cache`; only a 200 of the expected type may be
/// stored, fresh for the TTL.
pub fn cacheable(
    cache: &ResponseCache,
    response: &ResponseHeader,
    ctx: &RequestCtx,
) -> RespCacheable {
    let Some(Ok(plan)) = &ctx.cache.plan else {
        return RespCacheable::Uncacheable(NoCacheReason::NeverEnabled);
    };
    // The key names another request's answer (a semantic match that vanished meanwhile).
    if ctx.cache.kind() == CacheKind::Semantic {
        return RespCacheable::Uncacheable(NoCacheReason::Custom("semantic key"));
    }
    let content_type = response
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let expected = match plan.replay {
        Replay::Json => content_type.contains("json") && !content_type.contains("ndjson"),
        Replay::Sse => content_type.starts_with("text/event-stream"),
        Replay::Ndjson => content_type.contains("ndjson") || content_type.contains("json"),
    };
    if response.status.as_u16() != 200 || !expected {
        return RespCacheable::Uncacheable(NoCacheReason::OriginNotCache);
    }
    let now = SystemTime::now();
    let meta = CacheMeta::new(
        now + cache.ttl.max(Duration::from_secs(1)),
        now,
        0,
        0,
        response.clone(),
    );
    RespCacheable::Cacheable(meta)
}

/// In `response_filter`: says how the answer was served and notes whether it was a hit.
pub fn mark(session: &Session, response: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
    let status = match &ctx.cache.plan {
        None => return Ok(()),
        Some(Err(_)) => "BYPASS",
        Some(Ok(_)) if session.cache.phase() == CachePhase::Hit => {
            ctx.cache.hit = true;
            "HIT"
        }
        Some(Ok(_)) => "MISS",
    };
    response.insert_header(CACHE_HEADER, status)?;
    if let (true, SemanticOutcome::Hit { similarity }) = (ctx.cache.hit, &ctx.cache.semantic) {
        response.insert_header(SIMILARITY_HEADER, format!("{similarity:.4}"))?;
    }
    Ok(())
}

/// In `logging`: counts the outcome; indexes a last turn whose answer was just stored.
pub fn record(cache: &ResponseCache, ctx: &mut RequestCtx) {
    match &ctx.cache.plan {
        None => {}
        Some(Ok(plan)) => {
            // A semantic miss that then hit (it waited on the lock for the same request) is a hit.
            let semantic_miss =
                !ctx.cache.hit && matches!(ctx.cache.semantic, SemanticOutcome::Miss(_));
            cache.record(Some(ctx.cache.kind()), ctx.cache.hit, semantic_miss);
            if semantic_miss {
                if let SemanticOutcome::Miss(turn) = std::mem::take(&mut ctx.cache.semantic) {
                    cache.index_if_stored(&plan.hash, turn);
                }
            }
        }
        Some(Err(_)) => cache.record(None, false, false),
    }
}
