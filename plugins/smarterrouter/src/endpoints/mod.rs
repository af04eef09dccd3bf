//! The endpoints the router answers itself, on both listeners (the proxy port and the admin side
//! service): `/health`, `/metrics`, the model listings, `/api/ps`, `/api/version`,
//! `/v1/feedback` and `/admin/*` (explain, profiles, cache, vram, decisions, activity, the
//! dashboard page `/admin/ui`). One dispatcher ([`answer`]), one body reader ([`body`]), one
//! response writer ([`write`]); the proxy and the admin app are thin shells over them.

pub mod access;
pub mod body;
mod cache;
mod dashboard;
mod decisions;
mod explain;
pub mod feedback;
mod listings;
mod profiles;
pub mod virtual_models;
mod vram;

use std::sync::Arc;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use serde_json::Value;

use crate::api::{self, Dialect, Local, RouteMiss};
use crate::error::RequestError;
use crate::RouterState;

/// A complete response built by the router.
#[derive(Debug, Clone)]
pub struct LocalResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    /// The error's code, for an error response (the errors metric).
    pub error_code: Option<&'static str>,
    /// Headers of its own (a 429's `Retry-After` and `x-ratelimit-*`, a 401's challenge, the
    /// dashboard's Content-Security-Policy).
    pub headers: Vec<(&'static str, String)>,
}

impl LocalResponse {
    pub fn json(status: u16, value: &Value) -> Self {
        LocalResponse {
            status,
            content_type: "application/json",
            body: Bytes::from(value.to_string()),
            error_code: None,
            headers: Vec::new(),
        }
    }

    pub fn text(content_type: &'static str, body: Bytes) -> Self {
        LocalResponse {
            status: 200,
            content_type,
            body,
            error_code: None,
            headers: Vec::new(),
        }
    }

    pub fn with_headers(mut self, headers: Vec<(&'static str, String)>) -> Self {
        self.headers = headers;
        self
    }

    pub fn error(err: &RequestError, dialect: Dialect) -> Self {
        LocalResponse {
            status: err.status(),
            content_type: "application/json",
            body: err.body(dialect),
            error_code: Some(err.code()),
            headers: Vec::new(),
        }
    }
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The proxy port (`router.host:router.port`).
    Proxy,
    /// The admin side service (`router.admin.listen`).
    Admin,
}

/// The error for a request that matched no endpoint.
pub fn route_miss(miss: RouteMiss, method: &str, path: &str) -> RequestError {
    match miss {
        RouteMiss::UnknownPath => RequestError::UnknownPath(path.to_string()),
        RouteMiss::WrongMethod => RequestError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_string(),
        },
    }
}

/// Answers a local endpoint: checks `/admin/*` access, reads the body where the endpoint takes
/// one, and builds the response. `client`: the API key's client on the proxy port.
pub async fn answer(
    state: &Arc<RouterState>,
    session: &mut ServerSession,
    local: Local,
    listener: Listener,
    client: Option<&crate::auth::Client>,
) -> LocalResponse {
    let path = session.req_header().uri.path().to_string();
    let query = session.req_header().uri.query().unwrap_or("").to_string();
    let dialect = api::dialect_of_path(&path);
    match respond(state, session, (local, listener, client), &path, &query).await {
        Ok(response) => response,
        Err(err) => LocalResponse::error(&err, dialect),
    }
}

async fn respond(
    state: &Arc<RouterState>,
    session: &mut ServerSession,
    (local, listener, client): (Local, Listener, Option<&crate::auth::Client>),
    path: &str,
    query: &str,
) -> Result<LocalResponse, RequestError> {
    let headers = &session.req_header().headers;
    let page = local == Local::Ui || (local == Local::Root && dashboard::wanted(listener, headers));
    if page {
        // The page holds no data: with a key it loads anywhere and asks for the key.
        access::check_page(state, listener)?;
        return Ok(dashboard::page());
    }
    if path.starts_with("/admin/") {
        access::check(state, headers, listener)?;
    }
    let params = api::query::params(query);
    let max_body = state.config.max_body_bytes;
    Ok(match local {
        Local::Explain => {
            let body = if session.req_header().method == http::Method::POST {
                Some(body::read_whole(session, max_body).await?)
            } else {
                None
            };
            LocalResponse::json(200, &explain::explain(state, &params, body.as_deref())?)
        }
        Local::Feedback => {
            if listener == Listener::Admin {
                return Err(RequestError::UnknownPath(
                    "/v1/feedback on the admin port (send feedback to the proxy port)".to_string(),
                ));
            }
            let raw = body::read_whole(session, max_body).await?;
            LocalResponse::json(200, &feedback::accept(state, &raw, client).await?)
        }
        Local::Profiles => profiles::list(state),
        Local::Reprofile => profiles::start(state, &params),
        Local::ReprofileStatus => profiles::status(state, path)?,
        Local::CacheStats => cache::stats(state),
        Local::CacheInvalidate => cache::invalidate(state, &params),
        Local::Vram => vram::report(state, &params).await?,
        Local::Decisions => decisions::list(state, &params)?,
        Local::Decision => decisions::one(state, path)?,
        Local::Activity => decisions::activity(state, &params)?,
        listing => listings::respond(state, listing, path, client).await?,
    })
}

/// Writes a complete router-built response, with its own headers. Errors close the connection
/// after the response (the request body may be unread); so does a router that is draining.
pub async fn write(
    session: &mut ServerSession,
    response: LocalResponse,
    request_id: Option<&str>,
) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(response.status, Some(4 + response.headers.len()))?;
    for (name, value) in &response.headers {
        header.insert_header(*name, value.as_str())?;
    }
    header.insert_header("content-type", response.content_type)?;
    header.insert_header("content-length", response.body.len().to_string())?;
    if let Some(id) = request_id {
        header.insert_header("x-request-id", id)?;
    }
    if response.status >= 400 {
        session.set_keepalive(None);
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(header)).await?;
    if !head_only {
        session.write_response_body(response.body, true).await?;
    }
    Ok(())
}
