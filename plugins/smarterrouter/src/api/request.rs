//! Reads the few fields of a request body the router needs (`model`, `stream`, `messages`, ...)
//! and checks them, keeping the rest of the body untouched so it can be forwarded as sent.

use serde_json::{Map, Value};

use super::Forwarded;
use crate::error::RequestError;

/// A request body that passed the checks for its endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    pub body: Map<String, Value>,
    /// The `model` (or, for `/api/show`, legacy `name`) the client asked for.
    pub requested_model: Option<String>,
    pub stream: bool,
    /// An Ollama load/unload request: `/api/chat` with no messages or `/api/generate` with no prompt.
    pub load_only: bool,
}

impl ParsedRequest {
    /// Sets the model to forward and serialises the body.
    pub fn into_upstream_body(mut self, model: &str) -> Result<Vec<u8>, RequestError> {
        self.body
            .insert("model".to_string(), Value::String(model.to_string()));
        serde_json::to_vec(&self.body).map_err(|e| RequestError::Internal(e.to_string()))
    }
}

pub fn parse(endpoint: Forwarded, raw: &[u8]) -> Result<ParsedRequest, RequestError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::MissingBody);
    }
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| RequestError::MalformedJson(e.to_string()))?;
    let Value::Object(body) = value else {
        return Err(RequestError::NotAnObject);
    };

    let mut requested_model = optional_string(&body, "model")?;
    if endpoint == Forwarded::OllamaShow && requested_model.is_none() {
        requested_model = optional_string(&body, "name")?;
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => endpoint.streams_by_default(),
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(RequestError::InvalidField {
                field: "stream",
                why: "must be true or false".to_string(),
            })
        }
    };
    let load_only = check_payload(endpoint, &body)?;
    Ok(ParsedRequest {
        body,
        requested_model,
        stream,
        load_only,
    })
}

fn optional_string(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, RequestError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(RequestError::InvalidField {
            field,
            why: "must be a string".to_string(),
        }),
    }
}

/// Checks the endpoint's payload field; returns whether this is an Ollama load/unload request.
fn check_payload(endpoint: Forwarded, body: &Map<String, Value>) -> Result<bool, RequestError> {
    match endpoint {
        Forwarded::ChatCompletions => match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => check_messages(m).map(|_| false),
            Some(Value::Array(_)) | None | Some(Value::Null) => Err(RequestError::EmptyMessages),
            Some(_) => Err(RequestError::InvalidField {
                field: "messages",
                why: "must be a list of messages".to_string(),
            }),
        },
        Forwarded::OllamaChat => match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => check_messages(m).map(|_| false),
            Some(Value::Array(_)) | None | Some(Value::Null) => Ok(true),
            Some(_) => Err(RequestError::InvalidField {
                field: "messages",
                why: "must be a list of messages".to_string(),
            }),
        },
        Forwarded::Completions => require_text(body, "prompt").map(|_| false),
        Forwarded::OllamaGenerate => match body.get("prompt") {
            None | Some(Value::Null) => Ok(true),
            Some(Value::String(s)) => Ok(s.is_empty()),
            Some(_) => Err(RequestError::InvalidField {
                field: "prompt",
                why: "must be a string".to_string(),
            }),
        },
        Forwarded::Embeddings | Forwarded::OllamaEmbed => {
            require_text(body, "input").map(|_| false)
        }
        Forwarded::OllamaEmbeddings => match body.get("prompt") {
            Some(Value::String(_)) => Ok(false),
            _ => Err(RequestError::InvalidField {
                field: "prompt",
                why: "is required and must be a string".to_string(),
            }),
        },
        Forwarded::OllamaShow => Ok(false),
    }
}

fn check_messages(messages: &[Value]) -> Result<(), RequestError> {
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        if role.is_none() {
            return Err(RequestError::InvalidField {
                field: "messages",
                why: format!("item {i} needs a string `role` (system, user, assistant or tool)"),
            });
        }
    }
    Ok(())
}

/// A string, a list of strings, or (OpenAI) token ids: a list of integers or of integer lists.
fn require_text(body: &Map<String, Value>, field: &'static str) -> Result<(), RequestError> {
    let tokens = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_u64));
    match body.get(field) {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items))
            if items.iter().all(Value::is_string)
                || items.iter().all(Value::is_u64)
                || items.iter().all(tokens) =>
        {
            Ok(())
        }
        Some(Value::Array(_)) => Err(RequestError::InvalidField {
            field,
            why: "must be a string or a list of strings".to_string(),
        }),
        None | Some(Value::Null) => Err(RequestError::InvalidField {
            field,
            why: "is required (a string or a list of strings)".to_string(),
        }),
        Some(_) => Err(RequestError::InvalidField {
            field,
            why: "must be a string or a list of strings".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_requires_messages() {
        let err = parse(Forwarded::ChatCompletions, br#"{"messages":[]}"#).unwrap_err();
        assert_eq!(err, RequestError::EmptyMessages);
        let err = parse(Forwarded::ChatCompletions, br#"{"model":"x"}"#).unwrap_err();
        assert_eq!(err, RequestError::EmptyMessages);
    }

    #[test]
    fn ollama_chat_without_messages_is_load_only() {
        let p = parse(Forwarded::OllamaChat, br#"{"model":"m"}"#).unwrap();
        assert!(p.load_only);
        assert!(p.stream, "Ollama streams by default");
    }

    #[test]
    fn model_and_stream_are_read_and_rewritten_in_place() {
        let p = parse(
            Forwarded::ChatCompletions,
            br#"{"model":"a","stream":true,"messages":[{"role":"user","content":"hi"}],"z":1}"#,
        )
        .unwrap();
        assert_eq!(p.requested_model.as_deref(), Some("a"));
        assert!(p.stream);
        let out = String::from_utf8(p.into_upstream_body("b").unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"model":"b","stream":true,"messages":[{"role":"user","content":"hi"}],"z":1}"#
        );
    }

    #[test]
    fn malformed_and_wrong_types_are_400s() {
        assert!(matches!(
            parse(Forwarded::ChatCompletions, b"{not json"),
            Err(RequestError::MalformedJson(_))
        ));
        assert_eq!(
            parse(Forwarded::ChatCompletions, b"[1]"),
            Err(RequestError::NotAnObject)
        );
        assert_eq!(
            parse(Forwarded::ChatCompletions, b"  "),
            Err(RequestError::MissingBody)
        );
        assert!(parse(
            Forwarded::Embeddings,
            br#"{"model":"e","input":[[1,2],[3]]}"#
        )
        .is_ok());
        assert!(parse(Forwarded::Completions, br#"{"model":"e","prompt":[1,2,3]}"#).is_ok());
        assert!(matches!(
            parse(Forwarded::Embeddings, br#"{"model":"e","input":5}"#),
            Err(RequestError::InvalidField { field: "input", .. })
        ));
        assert!(matches!(
            parse(
                Forwarded::ChatCompletions,
                br#"{"model":7,"messages":[{"role":"user"}]}"#
            ),
            Err(RequestError::InvalidField { field: "model", .. })
        ));
    }

    #[test]
    fn show_accepts_legacy_name() {
        let p = parse(Forwarded::OllamaShow, br#"{"name":"llava"}"#).unwrap();
        assert_eq!(p.requested_model.as_deref(), Some("llava"));
    }
}
