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
            let response = LocalResponse::error(&err, ctx.request.dialect);
            send(session, ctx, response).await?;
            return Ok(true);
        }
    };
    ctx.request.endpoint = Some(endpoint);
    if needs_client_key(endpoint) && state.clients.required() {
        let authorization = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        match state.clients.identify(authorization) {
            Ok(client) => ctx.request.client = Some(client),
            Err(refusal) => {
                // Refused keys count against the client's address: guessing is throttled too.
                if let Some((refused, headers)) =
                    rate_limited(state, session, ctx, endpoint, &path).await
                {
                    let response = LocalResponse::error(&refused, ctx.request.dialect);
                    send(session, ctx, response.with_headers(headers)).await?;
                    return Ok(true);
                }
                let err = crate::error::RequestError::InvalidApiKey(refusal.message().to_string());
                let response = LocalResponse::error(&err, ctx.request.dialect);
                let challenge = vec![("www-authenticate", "Bearer".to_string())];
                send(session, ctx, response.with_headers(challenge)).await?;
                return Ok(true);
            }
        }
    }
    if let Some((refused, headers)) = rate_limited(state, session, ctx, endpoint, &path).await {
        let response = LocalResponse::error(&refused, ctx.request.dialect);
        send(session, ctx, response.with_headers(headers)).await?;
        return Ok(true);
    }
    let forwarded = match endpoint {
        Endpoint::Local(local) => {
            let client = ctx.request.client.as_deref();
            let downstream = session.as_downstream_mut();
            let response =
                endpoints::answer(state, downstream, local, Listener::Proxy, client).await;
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
            let response = LocalResponse::error(&err, ctx.request.dialect);
            send(session, ctx, response).await?;
            Ok(true)
        }
    }
}

/// Model requests, listings and feedback need the client's API key when keys are configured;
/// health, metrics and the version (load balancers, Prometheus, probes) and `/admin/*` (its own
/// key) do not.
fn needs_client_key(endpoint: Endpoint) -> bool {
    use api::Local;
    match endpoint {
        Endpoint::Forwarded(_) => true,
        Endpoint::Local(local) => matches!(
            local,
            Local::Feedback
                | Local::OpenAiModels
                | Local::OpenAiModel
                | Local::OllamaTags
                | Local::OllamaPs
        ),
    }
}

/// Chat and generation count against `router.rate_limit.chat_requests_per_minute` when set,
/// other model requests and feedback against `requests_per_minute`, `/admin/*` against
/// `admin_requests_per_minute`; health, metrics and listings never (load balancers and
/// Prometheus poll them). A client with an API key is counted by its key's name, others by
/// address. `Some`: the 429 and its headers.
async fn rate_limited(
    state: &RouterState,
    session: &Session,
    ctx: &RequestCtx,
    endpoint: Endpoint,
    path: &str,
) -> Option<(crate::error::RequestError, Vec<(&'static str, String)>)> {
    use crate::ratelimit::Class;
    let limits = state.limits.as_ref()?;
    let class = match endpoint {
        Endpoint::Forwarded(f) if f.is_generation() => Class::Chat,
        Endpoint::Forwarded(_) | Endpoint::Local(api::Local::Feedback) => Class::Model,
        Endpoint::Local(_) if path.starts_with("/admin/") => Class::Admin,
        Endpoint::Local(_) => return None,
    };
    let client = ctx.request.client.as_deref();
    let address;
    let (who, key_rate) = match client {
        Some(client) => (client.rate_key.as_str(), client.requests_per_minute),
        None => {
            address = client_address(state, session);
            (address.as_str(), None)
        }
    };
    // One budget for the whole cluster while Redis answers; this process's own otherwise.
    let shared = match state.cluster.as_ref().filter(|c| c.is_up()) {
        Some(cluster) => {
            let (bucket, rate) = limits.budget(class, key_rate);
            cluster
                .take_token(bucket, who, rate.max(1))
                .await
                .map(|(allowed, tokens)| crate::ratelimit::verdict(allowed, tokens, rate.max(1)))
        }
        None => None,
    };
    let verdict = match shared {
        Some(verdict) => verdict,
        None => limits.check(class, who, key_rate, std::time::Instant::now()),
    };
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

/// The client's address: the peer's, or the one a trusted proxy forwarded for.
fn client_address(state: &RouterState, session: &Session) -> String {
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip());
    let forwarded_for = session
        .req_header()
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    crate::ratelimit::client_of(
        peer,
        forwarded_for,
        &state.config.rate_limit.trusted_proxies,
    )
}

/// Writes a router-made response, noting its error code for the metrics.
async fn send(session: &mut Session, ctx: &mut RequestCtx, response: LocalResponse) -> Result<()> {
    ctx.request.error_code = response.error_code;
    let id = Some(ctx.request.id.as_str());
    endpoints::write(session.as_downstream_mut(), response, id).await
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
