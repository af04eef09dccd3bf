//! Request errors and their one mapping to HTTP: status, OpenAI `type`/`code`, and the body in the
//! client's dialect (OpenAI `{"error":{...}}` on `/v1/*`, Ollama `{"error":"..."}` on `/api/*`).
//! Every error a client sees goes through here: request checks, routing (which converts its
//! own), failures while proxying ([`RequestError::from_proxy_failure`]), feedback
//! and the admin endpoints.

use bytes::Bytes;
use serde_json::json;

/// Which API family a client speaks; decides the error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Ollama,
}

/// Everything that can make the router answer a request itself with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("Content-Type {0:?} is not supported: send the body as application/json")]
    UnsupportedContentType(String),
    #[error(
        "request body is {size} bytes, over the limit of {limit} bytes (router.max_body_bytes)"
    )]
    BodyTooLarge { size: usize, limit: usize },
    #[error("chunked request bodies over 64 KiB cannot be forwarded: send the request with a Content-Length header (most HTTP clients do when given the whole body)")]
    ChunkedTooLarge,
    #[error("missing request body: send a JSON object")]
    MissingBody,
    #[error("field `messages` must be a non-empty list of messages")]
    EmptyMessages,
    #[error("field `{field}` {why}")]
    InvalidField { field: &'static str, why: String },
    #[error("model {model:?} is not served by any node{}", available_hint(.available))]
    ModelNotFound {
        model: String,
        available: Vec<String>,
    },
    #[error("model {model:?} is only on OpenAI-compatible nodes ({nodes}), which do not speak the Ollama API; send this request to the /v1 endpoints instead")]
    NeedsOllamaNode { model: String, nodes: String },
    #[error("no model is available: {0}")]
    NoModels(String),
    #[error("{0}")]
    NoNode(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0} is not an endpoint of this router")]
    UnknownPath(String),
    #[error("{0}")]
    Unauthorized(String),
    /// A client API key (`router.auth.api_keys`) is missing or wrong.
    #[error("{0}")]
    InvalidApiKey(String),
    /// A valid client key asked for what it may not (another model, another key's response).
    #[error("{0}")]
    NotPermitted(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    VramExhausted(String),
    #[error("too many requests: {limit} a minute per client (router.rate_limit); try again in {retry_after_secs} s")]
    RateLimited { limit: u32, retry_after_secs: u64 },
    #[error("the store is not available now: {0}")]
    StoreUnavailable(String),
    #[error("feedback collection is disabled (router.feedback.enabled / ROUTER_FEEDBACK_ENABLED)")]
    FeedbackDisabled,
    #[error("could not connect to node {node} ({cause}) and no other node with the model could take the request")]
    UpstreamUnreachable { node: String, cause: String },
    #[error("node {node} sent nothing for router.upstream.read_timeout_secs ({secs} s)")]
    UpstreamTimeout { node: String, secs: u64 },
    #[error("node {node} failed: {cause}")]
    UpstreamFailed { node: String, cause: String },
    #[error("internal error: {0}")]
    Internal(String),
}

pub(crate) fn available_hint(available: &[String]) -> String {
    if available.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = available.iter().take(5).map(String::as_str).collect();
    let more = available.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "; available: {}{tail} (GET /v1/models lists them all)",
        shown.join(", ")
    )
}

impl RequestError {
    pub fn status(&self) -> u16 {
        use RequestError::*;
        match self {
            MalformedJson(_)
            | NotAnObject
            | MissingBody
            | EmptyMessages
            | InvalidField { .. }
            | NeedsOllamaNode { .. } => 400,
            UnsupportedContentType(_) => 415,
            BodyTooLarge { .. } | ChunkedTooLarge => 413,
            ModelNotFound { .. } | UnknownPath(_) => 404,
            MethodNotAllowed { .. } => 405,
            Unauthorized(_) | InvalidApiKey(_) => 401,
            Forbidden(_) | NotPermitted(_) | FeedbackDisabled => 403,
            NoModels(_)
            | NoNode(_)
            | StoreUnavailable(_)
            | UpstreamUnreachable { .. }
            | VramExhausted(_) => 503,
            UpstreamTimeout { .. } => 504,
            RateLimited { .. } => 429,
            UpstreamFailed { .. } => 502,
            Internal(_) => 500,
        }
    }

    /// OpenAI error `type`.
    fn openai_type(&self) -> &'static str {
        match self.status() {
            400 | 405 | 413 | 415 => "invalid_request_error",
            404 => "not_found_error",
            401 => "authentication_error",
            403 => "permission_error",
            503 => "service_unavailable",
            429 => "rate_limit_error",
            _ => "api_error",
        }
    }

    /// OpenAI error `code`: a stable machine-readable name.
    pub fn code(&self) -> &'static str {
        use RequestError::*;
        match self {
            MalformedJson(_) => "invalid_json",
            NotAnObject | InvalidField { .. } => "invalid_request",
            UnsupportedContentType(_) => "unsupported_media_type",
            BodyTooLarge { .. } => "request_too_large",
            ChunkedTooLarge => "chunked_body_too_large",
            MissingBody => "missing_body",
            EmptyMessages => "empty_messages",
            ModelNotFound { .. } => "model_not_found",
            NeedsOllamaNode { .. } => "endpoint_not_supported_by_node",
            NoModels(_) => "no_models",
            NoNode(_) | UpstreamUnreachable { .. } => "no_healthy_node",
            UpstreamTimeout { .. } => "upstream_timeout",
            UpstreamFailed { .. } => "upstream_error",
            FeedbackDisabled => "feedback_disabled",
            MethodNotAllowed { .. } => "method_not_allowed",
            UnknownPath(_) => "unknown_endpoint",
            Unauthorized(_) => "admin_auth_required",
            InvalidApiKey(_) => "invalid_api_key",
            Forbidden(_) => "admin_port_only",
            NotPermitted(_) => "permission_denied",
            StoreUnavailable(_) => "store_unavailable",
            VramExhausted(_) => "vram_exhausted",
            RateLimited { .. } => "rate_limit_exceeded",
            Internal(_) => "internal_error",
        }
    }

    /// What a failure while proxying means for the client: `None` when the client itself went
    /// away (nothing to answer). `no_node` is why no node could take a retry, if that was it;
    /// `node` the node of the last attempt.
    pub fn from_proxy_failure(
        error: &pingora::Error,
        no_node: Option<&RequestError>,
        node: &str,
        read_timeout_secs: u64,
    ) -> Option<RequestError> {
        use pingora::ErrorType::*;
        let node = node.to_string();
        Some(match error.etype() {
            HTTPStatus(_) => match no_node {
                Some(why) => why.clone(),
                None => RequestError::UpstreamFailed {
                    node,
                    cause: error.to_string(),
                },
            },
            ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | BindError
            | SocketError => RequestError::UpstreamUnreachable {
                node,
                cause: error.etype().as_str().to_string(),
            },
            ReadTimedout => RequestError::UpstreamTimeout {
                node,
                secs: read_timeout_secs,
            },
            _ => match error.esource() {
                pingora::ErrorSource::Downstream => return None,
                pingora::ErrorSource::Upstream => RequestError::UpstreamFailed {
                    node,
                    cause: error.etype().as_str().to_string(),
                },
                _ => RequestError::Internal(error.etype().as_str().to_string()),
            },
        })
    }

    /// The JSON body in the client's dialect.
    pub fn body(&self, dialect: Dialect) -> Bytes {
        error_body(dialect, &self.to_string(), self.openai_type(), self.code())
    }
}

/// An error body in the client's dialect from its parts.
pub fn error_body(dialect: Dialect, message: &str, kind: &str, code: &str) -> Bytes {
    let value = match dialect {
        Dialect::OpenAi => json!({
            "error": {"message": message, "type": kind, "param": null, "code": code}
        }),
        Dialect::Ollama => json!({ "error": message }),
    };
    Bytes::from(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shape_has_message_type_code() {
        let err = RequestError::EmptyMessages;
        let v: serde_json::Value = serde_json::from_slice(&err.body(Dialect::OpenAi)).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "empty_messages");
        assert!(v["error"]["message"].as_str().unwrap().contains("messages"));
    }

    #[test]
    fn ollama_shape_is_a_string() {
        let err = RequestError::ModelNotFound {
            model: "x".into(),
            available: (0..7).map(|i| format!("m{i}")).collect(),
        };
        let v: serde_json::Value = serde_json::from_slice(&err.body(Dialect::Ollama)).unwrap();
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains("m0, m1, m2, m3, m4 and 2 more"), "{msg}");
        assert_eq!(err.status(), 404);
    }
}
