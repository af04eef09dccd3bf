//! The Pingora `ProxyHttp` implementation. It stays thin: each phase delegates to a module.
//!
//! | phase | module |
//! |---|---|
//! | `request_filter` | [`local`] answers local endpoints; [`forward`] reads the body ([`body`]), routes and picks the first node |
//! | `upstream_peer`, `fail_to_connect` | here: the node for this attempt, retry on another node |
//! | `upstream_request_filter`, `request_body_filter` | here: path, Host, Content-Length; replay the rewritten body |
//! | `response_filter` | here: `x-smarterrouter-model`, `x-request-id` |
//! | `fail_to_proxy` | here: errors in the client's dialect |
//! | `logging` | [`access_log`] |

mod access_log;
mod body;
pub mod ctx;
mod feedback;
mod forward;
pub(crate) use forward::percent_decode;
pub mod local;
pub mod virtual_models;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::ErrorType;

use crate::api::{self, Endpoint, RouteMiss};
use crate::error::{error_body, RequestError};
use crate::upstream::NodeFilter;
use crate::RouterState;
pub use ctx::RequestCtx;
use local::LocalResponse;

pub use body::RETRY_BUFFER_LIMIT;

/// The router as a Pingora proxy application.
pub struct Router {
    pub state: Arc<RouterState>,
}

const REQUEST_ID_HEADER: &str = "x-request-id";
const MODEL_HEADER: &str = "x-smarterrouter-model";
const CATEGORY_HEADER: &str = "x-smarterrouter-category";
use crate::config::MAX_STALE_RETRIES;
/// How long a rejected request's unread body is drained before the error is sent.
const DISCARD_WINDOW: Duration = Duration::from_secs(5);
/// A stale pooled connection fails at once; a failure later than this may follow real work.
const STALE_FAILURE_WINDOW: Duration = Duration::from_secs(2);

#[async_trait]
impl ProxyHttp for Router {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.request_id = request_id(session);
        self.close_if_draining(session);
        let method = session.req_header().method.as_str().to_string();
        let path = session.req_header().uri.path().to_string();
        ctx.dialect = api::dialect_of_path(&path);
        let endpoint = match api::route(&method, &path) {
            Ok(endpoint) => endpoint,
            Err(miss) => {
                let err = match miss {
                    RouteMiss::UnknownPath => RequestError::UnknownPath(path),
                    RouteMiss::WrongMethod => RequestError::MethodNotAllowed { method, path },
                };
                send(session, ctx, LocalResponse::error(&err, ctx.dialect)).await?;
                return Ok(true);
            }
        };
        ctx.endpoint = Some(endpoint);
        if path.starts_with("/admin/") {
            let access =
                crate::admin::check_access(&self.state, &session.req_header().headers, false);
            if let Err(err) = access {
                send(session, ctx, LocalResponse::error(&err, ctx.dialect)).await?;
                return Ok(true);
            }
        }
        match endpoint {
            Endpoint::Local(api::Local::Explain) => {
                let query = session.req_header().uri.query().map(str::to_string);
                let response = if method == "POST" {
                    match body::read_whole_body(session, self.state.config.max_body_bytes).await {
                        Ok(raw) => crate::admin::explain::explain(
                            &self.state,
                            query.as_deref(),
                            Some(&raw),
                        ),
                        Err(err) => LocalResponse::error(&err, ctx.dialect),
                    }
                } else {
                    crate::admin::explain::explain(&self.state, query.as_deref(), None)
                };
                send(session, ctx, response).await?;
                Ok(true)
            }
            Endpoint::Local(api::Local::Feedback) => {
                let response =
                    match body::read_whole_body(session, self.state.config.max_body_bytes).await {
                        Ok(raw) => feedback::accept(&self.state, &raw).await,
                        Err(err) => LocalResponse::error(&err, ctx.dialect),
                    };
                send(session, ctx, response).await?;
                Ok(true)
            }
            Endpoint::Local(local) => {
                let query = session.req_header().uri.query().map(str::to_string);
                let response = local::respond(&self.state, local, &path, query.as_deref()).await;
                send(session, ctx, response).await?;
                Ok(true)
            }
            Endpoint::Forwarded(forwarded) => {
                ctx.dialect = forwarded.dialect();
                match forward::prepare(&self.state, session, ctx, forwarded).await {
                    Ok(forward::Prepared::Forward) => Ok(false),
                    Ok(forward::Prepared::Answered(response)) => {
                        send(session, ctx, response).await?;
                        Ok(true)
                    }
                    Err(err) => {
                        let limit = self.state.config.max_body_bytes.saturating_add(1 << 20);
                        body::discard_rest(session, limit, DISCARD_WINDOW).await;
                        send(session, ctx, LocalResponse::error(&err, ctx.dialect)).await?;
                        Ok(true)
                    }
                }
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let in_flight = match ctx.first_node.take() {
            Some(first) => first,
            None => {
                let model = ctx
                    .decision
                    .as_ref()
                    .map(|d| d.model.as_str())
                    .unwrap_or_default();
                let picked = self.state.registry.pick(NodeFilter {
                    model,
                    ollama_only: ctx.ollama_only,
                    exclude: &ctx.tried,
                });
                match picked {
                    Ok(slot) => slot,
                    Err(why) => {
                        ctx.no_node = Some(why.clone());
                        return Error::e_explain(ErrorType::HTTPStatus(503), why);
                    }
                }
            }
        };
        let node = Arc::clone(in_flight.node());
        ctx.tried.push(node.id);
        ctx.last_node_url = Some(node.url.clone());
        ctx.current = Some(in_flight);
        let upstream = &self.state.config.upstream;
        let mut peer = HttpPeer::new(node.addr, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_millis(upstream.connect_timeout_ms));
        peer.options.read_timeout = Some(Duration::from_secs(upstream.read_timeout_secs));
        // Under llama-server's 5 s keep-alive, so pooled connections are dropped by us first.
        peer.options.idle_timeout = Some(Duration::from_secs(4));
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(path) = &ctx.upstream_path {
            let uri = path
                .parse::<http::Uri>()
                .or_err(ErrorType::InternalError, "rebuilding the upstream path")?;
            upstream.set_uri(uri);
        }
        if let Some(node) = ctx.current.as_ref().map(|c| c.node()) {
            upstream.insert_header("host", node.host_header.as_str())?;
        }
        if let Some(body) = &ctx.upstream_body {
            upstream.remove_header("transfer-encoding");
            upstream.insert_header("content-length", body.len().to_string())?;
            upstream.insert_header("content-type", "application/json")?;
        }
        upstream.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        // The router answered any `Expect: 100-continue` itself before reading the body.
        upstream.remove_header("expect");
        ctx.body_sent = false;
        ctx.attempt_started = Some(std::time::Instant::now());
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(full) = &ctx.upstream_body {
            // Pingora replays only the tail it buffered; the node gets the whole rewritten body
            // once per attempt, and nothing for the rest of the tail.
            *body = Some(if ctx.body_sent {
                Bytes::new()
            } else {
                full.clone()
            });
            ctx.body_sent = true;
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(node) = ctx.current.take().map(|c| Arc::clone(c.node())) {
            tracing::warn!(request_id = %ctx.request_id, node = %node.url, error = %e, "connection to node failed");
            node.mark_down(format!("connection failed: {}", e.etype().as_str()));
        }
        if ctx.tried.len() < self.state.config.upstream.max_attempts {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        _session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        // Pingora never retries a POST here. But a pooled keep-alive connection that the node
        // had already closed fails before the node saw the request (Pingora marks that
        // `ReusedOnly`), and the router holds the whole body, so that one case is resent.
        let stale_pooled_connection =
            matches!(e.retry, pingora::RetryType::ReusedOnly) && client_reused;
        let failed_fast = ctx
            .attempt_started
            .is_some_and(|t| t.elapsed() < STALE_FAILURE_WINDOW);
        if stale_pooled_connection
            && failed_fast
            && ctx.upstream_body.is_some()
            && ctx.stale_retries < MAX_STALE_RETRIES
        {
            ctx.stale_retries += 1;
            // Same node again, on another connection: the node itself is fine.
            ctx.first_node = ctx.current.take();
            ctx.tried.pop();
            e.set_retry(true);
        } else {
            e.set_retry(false);
        }
        e
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.close_if_draining(session);
        if let Some(decision) = &ctx.decision {
            response.insert_header(MODEL_HEADER, decision.model.as_str())?;
            if let Some(category) = decision.category {
                response.insert_header(CATEGORY_HEADER, category.as_str())?;
            }
        }
        response.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        feedback::remember_decision(&self.state, response.status.as_u16(), ctx);
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let node = ctx.last_node_url.as_deref().unwrap_or("(none)");
        let (code, message) = match (e.etype(), &ctx.no_node) {
            (ErrorType::HTTPStatus(code), Some(why)) => (*code, why.clone()),
            (ErrorType::HTTPStatus(code), None) => (*code, e.to_string()),
            (
                ErrorType::ConnectTimedout
                | ErrorType::ConnectRefused
                | ErrorType::ConnectNoRoute
                | ErrorType::ConnectError
                | ErrorType::BindError
                | ErrorType::SocketError,
                _,
            ) => (
                503,
                format!(
                    "could not connect to node {node} ({}) and no other node with the model could take the request",
                    e.etype().as_str()
                ),
            ),
            (ErrorType::ReadTimedout, _) => (
                504,
                format!(
                    "node {node} sent nothing for router.upstream.read_timeout_secs ({} s)",
                    self.state.config.upstream.read_timeout_secs
                ),
            ),
            _ => match e.esource() {
                pingora::ErrorSource::Downstream => (0, String::new()),
                pingora::ErrorSource::Upstream => (
                    502,
                    format!("node {node} failed: {}", e.etype().as_str()),
                ),
                _ => (500, format!("internal error: {}", e.etype().as_str())),
            },
        };
        if code > 0 && session.response_written().is_none() {
            let kind = if code == 503 {
                "service_unavailable"
            } else {
                "api_error"
            };
            let code_name = if code == 503 {
                "no_healthy_node"
            } else {
                "upstream_error"
            };
            let body = error_body(ctx.dialect, &message, kind, code_name);
            let response = LocalResponse {
                status: code,
                content_type: "application/json",
                body,
            };
            if let Err(write_error) = send(session, ctx, response).await {
                tracing::debug!(request_id = %ctx.request_id, error = %write_error, "could not send the error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        access_log::record(session, e, ctx);
        ctx.current = None;
        ctx.first_node = None;
    }
}

impl Router {
    /// While the process stops or hands over to a new one, every response says
    /// `Connection: close`, so keep-alive clients reconnect instead of meeting a closed socket.
    fn close_if_draining(&self, session: &mut Session) {
        if self
            .state
            .draining
            .load(std::sync::atomic::Ordering::Acquire)
        {
            session.set_keepalive(None);
        }
    }
}

/// The client's `x-request-id` if it is a sane token, else a new one.
fn request_id(session: &Session) -> String {
    session
        .req_header()
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Writes a complete router-built response. Errors close the connection after the response
/// (the request body may be unread); successes keep it alive.
async fn send(session: &mut Session, ctx: &RequestCtx, response: LocalResponse) -> Result<()> {
    let mut header = ResponseHeader::build(response.status, Some(4))?;
    header.insert_header("content-type", response.content_type)?;
    header.insert_header("content-length", response.body.len().to_string())?;
    header.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str())?;
    if response.status >= 400 {
        session.set_keepalive(None);
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(response.body), true)
            .await?;
    }
    Ok(())
}
