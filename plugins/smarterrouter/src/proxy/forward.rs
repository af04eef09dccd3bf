//! `request_filter` work for forwarded endpoints: content type, body, checks, the routing
//! decision, the first node, and the rewritten body.

use bytes::Bytes;
use pingora::proxy::Session;

use super::ctx::{RequestCtx, Routed};
use crate::activity::Breakdown;
use crate::api::prompt::PromptView;
use crate::api::{request, Dialect, Forwarded};
use crate::auth::{AllowedModels, Client};
use crate::cache::RoutedRequest;
use crate::endpoints::body::read_whole;
use crate::endpoints::{virtual_models, LocalResponse};
use crate::error::RequestError;
use crate::routing::analysis::{analyse_with, Category};
use crate::routing::{self, ModelCatalog, ModelRequest, RoutingDecision, RoutingSettings};
use crate::RouterState;

/// What `prepare` decided.
pub enum Prepared {
    /// Forward the rewritten request to the chosen node.
    Forward,
    /// The router answers itself (a virtual model's `/api/show`, load or unload).
    Answered(LocalResponse),
}

/// Reads and checks the body, routes, plans the cache (with the semantic lookup, which may wait
/// up to `router.cache.semantic.timeout_ms` for an embedding); writes `ctx.routed`, `ctx.cache`,
/// and the request's stream and background flags. (The node is picked in `upstream_peer`, so a
/// cache hit takes no node slot.)
pub async fn prepare(
    state: &RouterState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    endpoint: Forwarded,
) -> Result<Prepared, RequestError> {
    check_content_type(session, endpoint.dialect())?;
    let raw = read_whole(session.as_downstream_mut(), state.config.max_body_bytes).await?;
    let mut parsed = request::parse(endpoint, &raw)?;
    if let Some(answer) = answer_for_virtual_model(state, endpoint, &parsed) {
        return Ok(Prepared::Answered(answer));
    }
    if !state.registry.any_healthy() {
        return Err(RequestError::NoNode(state.registry.explain_all_down()));
    }
    let (path, query_model) = split_model_query(session, endpoint);
    let ollama_only = endpoint.dialect() == Dialect::Ollama;
    let view = if endpoint.is_generation() {
        PromptView::from_body(&parsed.body)
    } else {
        PromptView::default()
    };
    ctx.request.background_task = view.background_task();
    let client = ctx.request.client.as_deref();
    let (mut decision, breakdown) = decide(
        state,
        (endpoint, client),
        &parsed,
        &view,
        query_model.as_deref(),
    )?;
    let header = |name: http::header::HeaderName| {
        session
            .req_header()
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
    };
    let cache_control = header(http::header::CACHE_CONTROL);
    // Answers are never shared across tenants (nor, without keys, across Authorization values).
    let identity = match ctx.request.client.as_deref() {
        Some(client) => Some(client.cache_identity.as_str()),
        None => header(http::header::AUTHORIZATION),
    };
    let routed_request = RoutedRequest {
        endpoint,
        body: &parsed.body,
        stream: parsed.stream,
        load_only: parsed.load_only,
        model: &decision.model,
        cache_control,
        identity,
        query: path.split_once('?').map_or("", |(_, q)| q),
    };
    let mut plan = crate::cache::key::plan(state.cache.policy, routed_request);
    if let Ok(planned) = &mut plan {
        ctx.cache.semantic = state.cache.find_similar(planned, routed_request).await;
    }
    ctx.cache.plan = Some(plan);
    if let Some(task) = ctx.request.background_task {
        decision.reason = format!(
            "{task} (routed like any prompt; not rated): {}",
            decision.reason
        );
    }
    // The pinned model stays loaded: a client's own keep_alive would let Ollama expire it.
    let pinned = state.config.routing.pinned_model.as_deref() == Some(decision.model.as_str());
    if pinned && endpoint.dialect() == Dialect::Ollama && endpoint.is_generation() {
        parsed
            .body
            .insert("keep_alive".to_string(), serde_json::json!(-1));
    }
    ctx.request.stream = parsed.stream;
    ctx.routed = Some(Routed {
        upstream_body: Bytes::from(parsed.into_upstream_body(&decision.model)?),
        upstream_path: path,
        ollama_only,
        decision,
        breakdown,
    });
    Ok(Prepared::Forward)
}

/// The routing decision for a parsed request, with its breakdown for a generation (the
/// dashboard's); with an API key that lists models, among those only (a model it names outside
/// them is a 403).
fn decide(
    state: &RouterState,
    (endpoint, client): (Forwarded, Option<&Client>),
    parsed: &request::ParsedRequest,
    view: &PromptView<'_>,
    query_model: Option<&str>,
) -> Result<(RoutingDecision, Option<Box<Breakdown>>), RequestError> {
    let registry: &dyn ModelCatalog = state.registry.as_ref();
    let allowed;
    let catalog = match client.filter(|c| !c.models.is_empty()) {
        Some(client) => {
            let named = query_model
                .into_iter()
                .chain(parsed.requested_model.as_deref())
                .find(|m| !routing::is_virtual(&state.config.virtual_models, m));
            if let Some(model) = named.and_then(|m| registry.resolve(m)) {
                if !client.may_use(&model) {
                    return Err(RequestError::NotPermitted(format!(
                        "model {model:?} is not among the models of API key {:?} (router.auth.api_keys[].models); name one of them or a virtual model",
                        client.name
                    )));
                }
            }
            allowed = AllowedModels {
                inner: registry,
                client,
            };
            &allowed as &dyn ModelCatalog
        }
        None => registry,
    };
    let analysis = analyse_with(view, state.classifier.as_deref());
    let (mut decision, scoring) = routing::decide_scored(
        ModelRequest {
            query_override: query_model,
            body_model: parsed.requested_model.as_deref(),
            router_may_choose: endpoint.is_generation() && !parsed.load_only,
            ollama_only: endpoint.dialect() == Dialect::Ollama,
        },
        &analysis,
        RoutingSettings {
            virtual_models: &state.config.virtual_models,
            default_model: state.config.default_model.as_deref(),
            scoring: &state.scoring,
            override_explicit_model: state.config.routing.override_explicit_model,
            feedback: state.config.feedback.enabled.then_some(&*state.feedback),
            profiles: Some(&state.profiles),
        },
        catalog,
    )?;
    if !endpoint.is_generation() {
        return Ok((decision, None));
    }
    if decision.category.is_none() {
        decision.category = Some(analysis.dominant());
    }
    let breakdown = Breakdown {
        categories: Category::ALL.map(|c| analysis.score(c)),
        complexity: analysis.complexity,
        scoring,
    };
    Ok((decision, Some(Box::new(breakdown))))
}

/// A virtual model has no node of its own: its `/api/show` and Ollama load/unload requests are
/// answered here.
fn answer_for_virtual_model(
    state: &RouterState,
    endpoint: Forwarded,
    parsed: &request::ParsedRequest,
) -> Option<LocalResponse> {
    let name = parsed
        .requested_model
        .as_deref()
        .filter(|m| virtual_models::is_virtual(state, m))?;
    let chat = match endpoint {
        Forwarded::OllamaShow => {
            return Some(LocalResponse::json(200, &virtual_models::show(state, name)))
        }
        Forwarded::OllamaChat if parsed.load_only => true,
        Forwarded::OllamaGenerate if parsed.load_only => false,
        _ => return None,
    };
    let now = virtual_models::rfc3339(crate::model::now_unix_ms() / 1000);
    Some(LocalResponse::json(
        200,
        &virtual_models::load_answer(name, &parsed.body, chat, &now),
    ))
}

/// Rejects bodies declared as something other than JSON. No Content-Type is accepted, since
/// Ollama requires none; on `/api/*` curl's default form type is accepted too, because Ollama's
/// own documentation sends JSON with a bare `curl -d`.
fn check_content_type(session: &Session, dialect: Dialect) -> Result<(), RequestError> {
    let Some(value) = session.req_header().headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default();
    let mime = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let curl_default = dialect == Dialect::Ollama && mime == "application/x-www-form-urlencoded";
    if mime == "application/json" || mime.ends_with("+json") || mime.is_empty() || curl_default {
        Ok(())
    } else {
        Err(RequestError::UnsupportedContentType(text.to_string()))
    }
}

/// The path and query to forward, without the router's own `model` parameter, and that
/// parameter's value.
fn split_model_query(session: &Session, endpoint: Forwarded) -> (String, Option<String>) {
    let uri = &session.req_header().uri;
    // The canonical path (a trailing slash the router tolerated would be a 404 at the node).
    let path = crate::api::Endpoint::Forwarded(endpoint)
        .label()
        .to_string();
    let Some(query) = uri.query() else {
        return (path, None);
    };
    let mut model = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("model", value)) => model = Some(crate::api::query::percent_decode(value)),
            _ => kept.push(pair),
        }
    }
    let forwarded = if kept.is_empty() {
        path
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    (forwarded, model.filter(|m| !m.is_empty()))
}
