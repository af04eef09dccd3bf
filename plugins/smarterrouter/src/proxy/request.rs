//! Phase `request_filter`: which endpoint the request is for; local endpoints are answered here
//! (through [`crate::endpoints`]); forwarded ones are read, checked and routed ([`forward`]).

use std::sync::Arc;
use std::time::Duration;

use pingora::prelude::*;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use super::forward::{self, Prepared};
use super::response::{close_if_draining, REQUEST_ID_HEADER};
use crate::api::{self, Endpoint};
use crate::endpoints::{self, Listener, LocalResponse};
use crate::RouterState;

/// How long a rejected request's unread body is drained before the error is sent.
const DISCARD_WINDOW: Duration = Duration::from_secs(5);

/// Reads the request; writes `ctx.request`, and `ctx.routed` and the first node for forwarded
/// endpoints. `Ok(true)`: the router has answered.
pub async fn filter(
    state: &Arc<RouterState>,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<bool> {
    ctx.request.id = request_id(session);
    close_if_draining(state, session);
    let method = session.req_header().method.as_str().to_string();
    let path = session.req_header().uri.path().to_string();
    ctx.request.dialect = api::dialect_of_path(&path);
    let endpoint = match api::route(&method, &path) {
        Ok(endpoint) => endpoint,
        Err(miss) => {
            let err = endpoints::route_miss(miss, &method, &path);
            send(
                session,
                ctx,
                LocalResponse::error(&err, ctx.request.dialect),
            )
            .await?;
            return Ok(true);
        }
    };
    ctx.request.endpoint = Some(endpoint);
    if let Some((refused, headers)) = rate_limited(state, session, endpoint, &path) {
        let response = LocalResponse::error(&refused, ctx.request.dialect);
        endpoints::write_with(
            session.as_downstream_mut(),
            response,
            Some(&ctx.request.id),
            &headers,
        )
        .await?;
        return Ok(true);
    }
    let forwarded = match endpoint {
        Endpoint::Local(local) => {
            let response =
                endpoints::answer(state, session.as_downstream_mut(), local, Listener::Proxy).await;
            send(session, ctx, response).await?;
            return Ok(true);
        }
        Endpoint::Forwarded(forwarded) => forwarded,
    };
    ctx.request.dialect = forwarded.dialect();
    match forward::prepare(state, session, ctx, forwarded).await {
        Ok(Prepared::Forward) => Ok(false),
        Ok(Prepared::Answered(response)) => {
            send(session, ctx, response).await?;
            Ok(true)
        }
        Err(err) => {
            let limit = state.config.max_body_bytes.saturating_add(1 << 20);
            endpoints::body::discard_rest(session.as_downstream_mut(), limit, DISCARD_WINDOW).await;
            send(
                session,
                ctx,
                LocalResponse::error(&err, ctx.request.dialect),
            )
            .await?;
            Ok(true)
        }
    }
}

/// Model requests and feedback count against `router.rate_limit.requests_per_minute`,
/// `/admin/*` against `admin_requests_per_minute`; health, metrics and listings never (load
/// balancers and Prometheus poll them). `Some`: the 429 and its headers.
fn rate_limited(
    state: &RouterState,
    session: &Session,
    endpoint: Endpoint,
    path: &str,
) -> Option<(crate::error::RequestError, Vec<(&'static str, String)>)> {
    use crate::ratelimit::Limiter;
    let (general, admin) = state.limits.as_ref()?;
    let limiter = match endpoint {
        Endpoint::Forwarded(_) | Endpoint::Local(api::Local::Feedback) => general,
        Endpoint::Local(_) if path.starts_with("/admin/") => admin,
        Endpoint::Local(_) => return None,
    };
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    let forwarded_for = session
        .req_header()
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let client = crate::ratelimit::client_of(
        peer,
        forwarded_for,
        &state.config.rate_limit.trusted_proxies,
    );
    let verdict = limiter.check(&client, std::time::Instant::now());
    if verdict.allowed {
        return None;
    }
    crate::metrics::rate_limited();
    Some((
        crate::error::RequestError::RateLimited {
            limit: verdict.limit,
            retry_after_secs: verdict.retry_after_secs,
        },
        vec![
            ("retry-after", verdict.retry_after_secs.to_string()),
            ("x-ratelimit-limit", verdict.limit.to_string()),
            ("x-ratelimit-remaining", verdict.remaining.to_string()),
            ("x-ratelimit-reset", verdict.reset_secs.to_string()),
        ],
    ))
}

async fn send(session: &mut Session, ctx: &RequestCtx, response: LocalResponse) -> Result<()> {
    endpoints::write(session.as_downstream_mut(), response, Some(&ctx.request.id)).await
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
