//! The Pingora `ProxyHttp` implementation. It stays thin: each phase is a line or two that
//! hands over to a phase module.
//!
//! | phase | module |
//! |---|---|
//! | `request_filter` | [`request`]: local endpoints through [`crate::endpoints`]; forwarded ones read, checked and routed by [`forward`] |
//! | `upstream_peer`, `upstream_request_filter`, `request_body_filter`, `fail_to_connect`, `error_while_proxy` | [`peer`]: the node attempts and the rewritten body; [`vram`]: admission of a cold model |
//! | `request_cache_filter`, `cache_key_callback`, `response_cache_filter` | [`cache`]: pingora-cache on for planned requests, the key, what may be stored |
//! | `response_filter` | [`response`]: headers (with [`cache`]'s HIT/MISS/BYPASS), decision record, draining |
//! | `upstream_response_filter`, `upstream_response_body_filter` | [`generation`]: first frame, usage, a node's 5xx |
//! | `fail_to_proxy` | [`failure`]: errors in the client's dialect |
//! | `logging` | [`access_log`] |
//!
//! On a cache hit pingora runs `request_filter`, the cache phases, `response_filter` and
//! `logging` only: no node is picked or called.

mod access_log;
mod cache;
pub mod ctx;
mod failure;
mod forward;
mod generation;
mod peer;
mod request;
mod response;
mod vram;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::cache::{CacheKey, RespCacheable};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::RouterState;
pub use ctx::RequestCtx;

/// The router as a Pingora proxy application.
pub struct Router {
    pub state: Arc<RouterState>,
}

#[async_trait]
impl ProxyHttp for Router {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    /// Phase `request_filter`. Reads the request; writes `ctx.request`, `ctx.routed`, the first node.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        request::filter(&self.state, session, ctx).await
    }

    /// Phase `request_cache_filter`. Reads `ctx.cache`; enables pingora-cache when planned.
    fn request_cache_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        cache::enable(&self.state.cache, session, ctx);
        Ok(())
    }

    /// Phase `cache_key_callback`. Reads `ctx.cache`; the key of the routed request.
    fn cache_key_callback(&self, _: &Session, ctx: &mut RequestCtx) -> Result<CacheKey> {
        cache::key(ctx)
    }

    /// Phase `response_cache_filter`. Reads `ctx.cache`; whether this answer may be stored.
    fn response_cache_filter(
        &self,
        _: &Session,
        response: &ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<RespCacheable> {
        Ok(cache::cacheable(&self.state.cache, response, ctx))
    }

    /// Phase `upstream_peer`. Reads `ctx.routed`; writes `ctx.attempts` (the node of this attempt), `ctx.vram_use`, `ctx.request.forwarded_at` (first attempt).
    async fn upstream_peer(&self, _: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        ctx.request
            .forwarded_at
            .get_or_insert_with(std::time::Instant::now);
        let (registry, upstream) = (&self.state.registry, &self.state.config.upstream);
        let peer = ctx
            .attempts
            .next_peer(registry, ctx.routed.as_ref(), upstream)?;
        vram::admit(&self.state, ctx).await?;
        Ok(peer)
    }

    /// Phase `upstream_request_filter`. Reads `ctx.routed`; writes the upstream header (without the client's key when keys are on), `ctx.attempts`.
    async fn upstream_request_filter(
        &self,
        _: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if self.state.clients.required() {
            // The client's key is the router's credential, not the node's.
            upstream.remove_header("authorization");
        }
        let id = ctx.request.id.as_str();
        ctx.attempts
            .prepare_request(upstream, ctx.routed.as_ref(), id)
    }

    /// Phase `request_body_filter`. Reads `ctx.routed`; writes the body sent, `ctx.attempts`.
    async fn request_body_filter(
        &self,
        _: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.attempts.replace_body(body, ctx.routed.as_ref());
        Ok(())
    }

    /// Phase `fail_to_connect`. Writes `ctx.attempts` (node down, retry or not).
    fn fail_to_connect(
        &self,
        _: &mut Session,
        _: &HttpPeer,
        ctx: &mut RequestCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        let max = self.state.config.upstream.max_attempts;
        ctx.attempts.connect_failed(e, &ctx.request.id, max)
    }

    /// Phase `error_while_proxy`. Reads `ctx.routed`; writes `ctx.attempts` (resend or not), the node's error count.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        _: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let has_body = ctx.routed.is_some();
        let upstream_fault = *e.esource() == pingora::ErrorSource::Upstream;
        let e = ctx.attempts.proxy_failed(e, peer, client_reused, has_body);
        // A resend on a stale pooled connection is not the node's failure.
        if upstream_fault && !e.retry() {
            if let Some(node) = ctx.attempts.node_url() {
                crate::metrics::upstream_error(node, "proxy");
            }
        }
        e
    }

    /// Phase `upstream_response_filter`. Reads the node's status; writes `ctx.generation`.
    async fn upstream_response_filter(
        &self,
        _: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        generation::header(ctx, response);
        Ok(())
    }

    /// Phase `upstream_response_body_filter`. Reads the node's body; writes `ctx.generation`.
    fn upstream_response_body_filter(
        &self,
        _: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        generation::body(ctx, body);
        Ok(None)
    }

    /// Phase `response_filter`. Reads `ctx.request`, `ctx.routed`; writes response headers.
    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        cache::mark(session, response, ctx)?;
        vram::answered(ctx);
        response::filter(&self.state, session, response, ctx)
    }

    /// Phase `fail_to_proxy`. Reads `ctx.attempts`, `ctx.request`; writes the error response.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        failure::respond(&self.state, session, e, ctx).await
    }

    /// Phase `logging`. Reads everything; writes metrics and the access line; frees node slots.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        cache::record(&self.state.cache, ctx);
        generation::observe(ctx);
        vram::release(&self.state, ctx);
        access_log::record(&self.state, session, e, ctx);
        ctx.attempts.end();
    }
}
