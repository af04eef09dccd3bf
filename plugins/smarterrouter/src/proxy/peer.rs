//! The node attempts of one request: the first node, each retry on
//! another node with the model after a failed connection, the one resend on a fresh connection
//! when a pooled keep-alive connection turns out closed, and the rewritten body sent once per
//! attempt. [`Attempts`] owns all of that state, so the phases only hand it what they get.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::ErrorType;

use super::ctx::Routed;
use crate::config::{UpstreamConfig, MAX_STALE_RETRIES};
use crate::error::RequestError;
use crate::upstream::{InFlight, NodeFilter, Registry};

/// A stale pooled connection fails at once; a failure later than this may follow real work.
const STALE_FAILURE_WINDOW: Duration = Duration::from_secs(2);
/// Under llama-server's 5 s keep-alive, so pooled connections are dropped by us first.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Debug, Default)]
pub struct Attempts {
    /// Node for the next attempt when already known (a resend on a fresh connection).
    first: Option<InFlight>,
    /// Node of the current attempt (counted in flight until the request ends).
    current: Option<InFlight>,
    tried: Vec<usize>,
    /// Resends caused by stale pooled connections (not counted as node attempts).
    stale_resends: u8,
    /// Why no node could take a retry, for the client's error.
    no_node: Option<RequestError>,
    /// URL of the node of the latest attempt (kept after the attempt ends, for errors and logs).
    last_node_url: Option<String>,
    started: Option<Instant>,
    body_sent: bool,
}

impl Attempts {
    /// Phase `upstream_peer`: the node for this attempt.
    pub fn next_peer(
        &mut self,
        registry: &Registry,
        routed: Option<&Routed>,
        upstream: &UpstreamConfig,
    ) -> Result<Box<HttpPeer>> {
        let slot = match self.first.take() {
            Some(first) => first,
            None => {
                let filter = NodeFilter {
                    model: routed
                        .map(|r| r.decision.model.as_str())
                        .unwrap_or_default(),
                    ollama_only: routed.is_some_and(|r| r.ollama_only),
                    exclude: &self.tried,
                };
                match registry.pick(filter) {
                    Ok(slot) => slot,
                    Err(why) => {
                        let message = why.to_string();
                        self.no_node = Some(why.into());
                        return Error::e_explain(ErrorType::HTTPStatus(503), message);
                    }
                }
            }
        };
        let node = Arc::clone(slot.node());
        self.tried.push(node.id);
        self.last_node_url = Some(node.url.clone());
        self.current = Some(slot);
        let mut peer = HttpPeer::new(node.addr, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_millis(upstream.connect_timeout_ms));
        peer.options.read_timeout = Some(Duration::from_secs(upstream.read_timeout_secs));
        peer.options.idle_timeout = Some(IDLE_TIMEOUT);
        Ok(Box::new(peer))
    }

    /// Phase `upstream_request_filter`: the node's `Host`, the exact length of the rewritten body;
    /// starts the attempt's clock and its one body send.
    pub fn prepare_request(
        &mut self,
        upstream: &mut RequestHeader,
        routed: Option<&Routed>,
        request_id: &str,
    ) -> Result<()> {
        if let Some(routed) = routed {
            let uri = routed
                .upstream_path
                .parse::<http::Uri>()
                .or_err(ErrorType::InternalError, "rebuilding the upstream path")?;
            upstream.set_uri(uri);
            upstream.remove_header("transfer-encoding");
            upstream.insert_header("content-length", routed.upstream_body.len().to_string())?;
            upstream.insert_header("content-type", "application/json")?;
        }
        if let Some(node) = self.current.as_ref().map(InFlight::node) {
            upstream.insert_header("host", node.host_header.as_str())?;
        }
        upstream.insert_header("x-request-id", request_id)?;
        // The router answered any `Expect: 100-continue` itself before reading the body.
        upstream.remove_header("expect");
        self.body_sent = false;
        self.started = Some(Instant::now());
        Ok(())
    }

    /// Phase `request_body_filter`: Pingora replays only the tail it buffered; the node gets the
    /// whole rewritten body once per attempt, and nothing for the rest of the tail.
    pub fn replace_body(&mut self, body: &mut Option<Bytes>, routed: Option<&Routed>) {
        if let Some(routed) = routed {
            *body = Some(if self.body_sent {
                Bytes::new()
            } else {
                routed.upstream_body.clone()
            });
            self.body_sent = true;
        }
    }

    /// Phase `fail_to_connect`: the node is marked down; retry on another node while attempts
    /// are left (nothing was sent yet).
    pub fn connect_failed(
        &mut self,
        mut e: Box<Error>,
        request_id: &str,
        max_attempts: usize,
    ) -> Box<Error> {
        if let Some(node) = self.current.take().map(|c| Arc::clone(c.node())) {
            tracing::warn!(request_id, node = %node.url, error = %e, "connection to node failed");
            crate::metrics::upstream_error(&node.url, "connect");
            node.mark_down(format!("connection failed: {}", e.etype().as_str()));
        }
        if self.tried.len() < max_attempts {
            e.set_retry(true);
        }
        e
    }

    /// Phase `error_while_proxy`: Pingora never retries a POST here. But a pooled keep-alive
    /// connection that the node had already closed fails before the node saw the request
    /// (Pingora marks that `ReusedOnly`), and the router holds the whole body, so that one case
    /// is resent, on the same node, on a fresh connection.
    pub fn proxy_failed(
        &mut self,
        e: Box<Error>,
        peer: &HttpPeer,
        client_reused: bool,
        has_body: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let stale_pooled_connection =
            matches!(e.retry, pingora::RetryType::ReusedOnly) && client_reused;
        let failed_fast = self
            .started
            .is_some_and(|t| t.elapsed() < STALE_FAILURE_WINDOW);
        if stale_pooled_connection
            && failed_fast
            && has_body
            && self.stale_resends < MAX_STALE_RETRIES
        {
            self.stale_resends += 1;
            self.first = self.current.take();
            self.tried.pop();
            e.set_retry(true);
        } else {
            e.set_retry(false);
        }
        e
    }

    /// Why no node could take the request, if that is why it failed.
    pub fn no_node(&self) -> Option<&RequestError> {
        self.no_node.as_ref()
    }

    /// The node of the current (or last) attempt.
    pub fn node_url(&self) -> Option<&str> {
        self.current
            .as_ref()
            .or(self.first.as_ref())
            .map(|f| f.node().url.as_str())
            .or(self.last_node_url.as_deref())
    }

    /// Node attempts made.
    pub fn count(&self) -> usize {
        self.tried.len()
    }

    /// The node of the current attempt.
    pub fn current_node(&self) -> Option<Arc<crate::upstream::Node>> {
        self.current.as_ref().map(|slot| Arc::clone(slot.node()))
    }

    /// This attempt cannot go ahead (`why` is the client's answer, 503).
    pub fn refuse(&mut self, why: RequestError) -> Box<Error> {
        let message = why.to_string();
        self.no_node = Some(why);
        self.current = None;
        Error::explain(ErrorType::HTTPStatus(503), message)
    }

    /// The request is over: its node slots are free again.
    pub fn end(&mut self) {
        self.current = None;
        self.first = None;
    }
}
