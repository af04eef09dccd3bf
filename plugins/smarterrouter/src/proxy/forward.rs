//! `request_filter` work for forwarded endpoints: content type, body, checks, the routing
//! decision, the first node, and the rewritten body.

use bytes::Bytes;
use pingora::proxy::Session;

use super::body::read_whole_body;
use super::ctx::RequestCtx;
use super::local::LocalResponse;
use crate::api::prompt::PromptView;
use crate::api::{request, Dialect, Forwarded};
use crate::error::RequestError;
use crate::routing::analysis::analyse;
use crate::routing::{self, ModelRequest, RoutingSettings};
use crate::upstream::NodeFilter;
use crate::RouterState;

/// What `prepare` decided.
pub enum Prepared {
    /// Forward the rewritten request to the chosen node.
    Forward,
    /// The router answers itself (a virtual model's `/api/show`, load or unload).
    Answered(LocalResponse),
}

pub async fn prepare(
    state: &RouterState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    endpoint: Forwarded,
) -> Result<Prepared, RequestError> {
    check_content_type(session, endpoint.dialect())?;
    let raw = read_whole_body(session, state.config.max_body_bytes).await?;
    let parsed = request::parse(endpoint, &raw)?;
    if let Some(answer) = answer_for_virtual_model(state, endpoint, &parsed) {
        return Ok(Prepared::Answered(answer));
    }

    if !state.registry.any_healthy() {
        return Err(RequestError::NoNode(state.registry.explain_all_down()));
    }
    let (path, query_model) = split_model_query(session, endpoint);
    ctx.ollama_only = endpoint.dialect() == Dialect::Ollama;
    let view = if endpoint.is_generation() {
        PromptView::from_body(&parsed.body)
    } else {
        PromptView::default()
    };
    ctx.background_task = view.background_task();
    let analysis = analyse(&view);
    let mut decision = routing::decide(
        ModelRequest {
            query_override: query_model.as_deref(),
            body_model: parsed.requested_model.as_deref(),
            router_may_choose: endpoint.is_generation() && !parsed.load_only,
            ollama_only: ctx.ollama_only,
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
        state.registry.as_ref(),
    )?;
    if endpoint.is_generation() && decision.category.is_none() {
        decision.category = Some(analysis.dominant());
    }

    let node = state
        .registry
        .pick(NodeFilter {
            model: &decision.model,
            ollama_only: ctx.ollama_only,
            exclude: &[],
        })
        .map_err(|why| {
            let openai_nodes = state.registry.openai_nodes_with(&decision.model);
            if ctx.ollama_only && !openai_nodes.is_empty() {
                RequestError::NeedsOllamaNode {
                    model: decision.model.clone(),
                    nodes: openai_nodes.join(", "),
                }
            } else {
                RequestError::NoNode(why)
            }
        })?;

    ctx.stream = parsed.stream;
    ctx.upstream_body = Some(Bytes::from(parsed.into_upstream_body(&decision.model)?));
    ctx.upstream_path = Some(path);
    ctx.first_node = Some(node);
    if let Some(task) = ctx.background_task {
        decision.reason = format!(
            "{task} (routed like any prompt; not rated): {}",
            decision.reason
        );
    }
    ctx.decision = Some(decision);
    Ok(Prepared::Forward)
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
        .filter(|m| super::virtual_models::is_virtual(state, m))?;
    let chat = match endpoint {
        Forwarded::OllamaShow => {
            return Some(LocalResponse::json(
                200,
                &super::virtual_models::show(state, name),
            ))
        }
        Forwarded::OllamaChat if parsed.load_only => true,
        Forwarded::OllamaGenerate if parsed.load_only => false,
        _ => return None,
    };
    let now = super::virtual_models::rfc3339(crate::store::now_unix_ms() / 1000);
    Some(LocalResponse::json(
        200,
        &super::virtual_models::load_answer(name, &parsed.body, chat, &now),
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
            Some(("model", value)) => model = Some(percent_decode(value)),
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

pub(crate) fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_model_names() {
        assert_eq!(percent_decode("llama3.2%3A1b"), "llama3.2:1b");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
