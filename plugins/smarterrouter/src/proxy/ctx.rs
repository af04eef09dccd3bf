//! Per-request state carried across Pingora phases.

use std::time::Instant;

use bytes::Bytes;

use crate::api::{Dialect, Endpoint};
use crate::routing::RoutingDecision;
use crate::upstream::InFlight;

pub struct RequestCtx {
    pub request_id: String,
    pub started: Instant,
    pub endpoint: Option<Endpoint>,
    pub dialect: Dialect,
    pub decision: Option<RoutingDecision>,
    /// The rewritten body sent to the node, replayed on every attempt.
    pub upstream_body: Option<Bytes>,
    /// Whether this attempt has already sent `upstream_body`.
    pub body_sent: bool,
    /// Path and query forwarded (the router's own `?model=` removed).
    pub upstream_path: Option<String>,
    pub ollama_only: bool,
    pub stream: bool,
    /// The client app's own background request (e.g. Open WebUI's title generation), if it is one.
    pub background_task: Option<&'static str>,
    /// Node picked in `request_filter` for the first attempt.
    pub first_node: Option<InFlight>,
    /// Node of the current attempt (counted in flight until the request ends).
    pub current: Option<InFlight>,
    pub tried: Vec<usize>,
    /// Resends caused by stale pooled connections (not counted as node attempts).
    pub stale_retries: u8,
    /// Why no node could take a retry, for the client's error message.
    pub no_node: Option<String>,
    /// URL of the node of the latest attempt (kept after the attempt ends, for errors and logs).
    pub last_node_url: Option<String>,
    /// When the current attempt's request was handed to Pingora.
    pub attempt_started: Option<Instant>,
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            request_id: String::new(),
            started: Instant::now(),
            endpoint: None,
            dialect: Dialect::OpenAi,
            decision: None,
            upstream_body: None,
            body_sent: false,
            upstream_path: None,
            ollama_only: false,
            stream: false,
            background_task: None,
            first_node: None,
            current: None,
            tried: Vec::new(),
            stale_retries: 0,
            no_node: None,
            last_node_url: None,
            attempt_started: None,
        }
    }

    pub fn node_url(&self) -> Option<&str> {
        self.current
            .as_ref()
            .or(self.first_node.as_ref())
            .map(|f| f.node().url.as_str())
            .or(self.last_node_url.as_deref())
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
