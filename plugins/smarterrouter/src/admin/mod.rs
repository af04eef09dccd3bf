//! The side admin service (`router.admin.listen`, default `127.0.0.1:11437`): a Pingora
//! `ServeHttp` app answering `/health` and `/metrics` (and the other local endpoints), kept off
//! the public port so it can be firewalled separately. Later issues add `/admin/*` here.

pub mod explain;

/// Whether `/admin/*` may be served: with `router.admin.api_key` set, a matching
/// `Authorization: Bearer` on either port; without one, only on the admin port.
pub fn check_access(
    state: &RouterState,
    headers: &http::HeaderMap,
    on_admin_port: bool,
) -> Result<(), RequestError> {
    let key = state
        .config
        .admin
        .api_key
        .as_deref()
        .filter(|k| !k.trim().is_empty());
    match key {
        Some(key) => {
            let given = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if constant_time_eq(given.as_bytes(), key.as_bytes()) {
                Ok(())
            } else {
                Err(RequestError::Unauthorized(
                    "admin endpoints need Authorization: Bearer <router.admin.api_key>".to_string(),
                ))
            }
        }
        None if on_admin_port => Ok(()),
        None => Err(RequestError::Forbidden(format!(
            "/admin/* is served on the admin port ({}) unless router.admin.api_key (ROUTER_ADMIN_API_KEY) is set",
            state.config.admin.listen
        ))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::api::{self, Endpoint, Local, RouteMiss};
use crate::error::RequestError;
use crate::proxy::local::{self, LocalResponse};
use crate::RouterState;

pub struct AdminApp {
    pub state: Arc<RouterState>,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.as_str().to_string();
        let path = session.req_header().uri.path().to_string();
        let dialect = api::dialect_of_path(&path);
        if path.starts_with("/admin/") {
            if let Err(err) = check_access(&self.state, &session.req_header().headers, true) {
                return build(LocalResponse::error(&err, dialect));
            }
        }
        let answer = match api::route(&method, &path) {
            Ok(Endpoint::Local(Local::Explain)) => {
                let query = session.req_header().uri.query().map(str::to_string);
                let body = if method == "POST" {
                    match read_body(session, self.state.config.max_body_bytes).await {
                        Ok(body) => Some(body),
                        Err(err) => return build(LocalResponse::error(&err, dialect)),
                    }
                } else {
                    None
                };
                explain::explain(&self.state, query.as_deref(), body.as_deref())
            }
            Ok(Endpoint::Local(l)) => {
                let query = session.req_header().uri.query().map(str::to_string);
                local::respond(&self.state, l, &path, query.as_deref()).await
            }
            Ok(Endpoint::Forwarded(_)) => LocalResponse::error(
                &RequestError::UnknownPath(format!(
                    "{path} on the admin port (send model requests to the proxy port {})",
                    self.state.config.port
                )),
                dialect,
            ),
            Err(RouteMiss::WrongMethod) => {
                LocalResponse::error(&RequestError::MethodNotAllowed { method, path }, dialect)
            }
            Err(RouteMiss::UnknownPath) => {
                LocalResponse::error(&RequestError::UnknownPath(path), dialect)
            }
        };
        build(answer)
    }
}

async fn read_body(session: &mut ServerSession, max: usize) -> Result<Vec<u8>, RequestError> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > max {
                    return Err(RequestError::BodyTooLarge {
                        size: body.len(),
                        limit: max,
                    });
                }
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(RequestError::InvalidField {
                    field: "body",
                    why: format!("could not be read completely: {e}"),
                })
            }
        }
    }
}

fn build(answer: LocalResponse) -> Response<Vec<u8>> {
    let length = answer.body.len();
    Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type)
        .header("content-length", length)
        .body(answer.body.to_vec())
        .unwrap_or_else(|_| {
            let mut fallback = Response::new(b"{\"error\":\"internal error\"}".to_vec());
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}
