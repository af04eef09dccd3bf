//! What may be answered from cache, and under which key. Pure: no I/O.
//!
//! **The key** is a Blake2b-128 hash of the canonical routed request:
//! - the endpoint (so `/v1/chat/completions` and `/api/chat` never share an answer: their wire
//!   formats differ), and the model the router chose (not the name the client sent: a virtual
//!   model's answer depends on which model served it);
//! - who asks: the `Authorization` header (it is forwarded, and a node that checks keys may
//!   refuse one client what it gives another; client API keys will make it the tenant), and the
//!   query string forwarded to the node;
//! - the whole body but for the fields below: every message with its role, name and content
//!   parts (images and other binary parts included, hashed with everything else), the system
//!   prompt, tools and tool choice, `response_format` / Ollama's `format`, `think`, and every
//!   sampling and decoding parameter, including every key of Ollama's `options` (`num_ctx`,
//!   `seed`, `temperature`, `top_k`, ...), `stream_options`;
//! - `stream` as the endpoint reads it (Ollama streams when it is absent), so a streamed answer
//!   is never replayed to a request that wants one JSON object, or the other way round.
//!
//! Left out, because they cannot change the answer: `model` (replaced by the chosen model),
//! `keep_alive` (how long the node keeps the model loaded) and `user` (an end-user id for
//! abuse monitoring). The body is canonical before hashing: object keys in order, numbers by
//! value (`1`, `1.0` and `1e0` are one number; large integers such as seeds stay exact), strings
//! length-prefixed so no two bodies hash alike by concatenation.
//!
//! **Not cached**: endpoints other than chat, completion and embedding; Ollama load/unload
//! requests; requests with `Cache-Control: no-cache` or `no-store`; and, unless
//! `router.cache.skip_random_sampling` is off, requests sampled at random (a temperature above
//! 0, or none given, which means the model's default, without a `seed`): a client that asks again
//! (a "regenerate" button) wants a new sample, not the stored one.

use blake2::digest::consts::U16;
use blake2::{Blake2b, Digest};
use serde_json::{Map, Value};

use crate::api::Forwarded;

type Blake2b128 = Blake2b<U16>;

/// How a complete stored answer looks, so a cut-short or failed one is never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// One JSON object.
    Json,
    /// OpenAI server-sent events ending in `data: [DONE]`.
    Sse,
    /// Ollama NDJSON ending in a line with `"done": true`.
    Ndjson,
}

impl Replay {
    pub fn as_str(self) -> &'static str {
        match self {
            Replay::Json => "json",
            Replay::Sse => "sse",
            Replay::Ndjson => "ndjson",
        }
    }

    pub fn parse(text: &str) -> Option<Replay> {
        [Replay::Json, Replay::Sse, Replay::Ndjson]
            .into_iter()
            .find(|r| r.as_str() == text)
    }

    pub fn of(endpoint: Forwarded, stream: bool) -> Replay {
        match (stream, endpoint.dialect()) {
            (false, _) => Replay::Json,
            (true, crate::api::Dialect::OpenAi) => Replay::Sse,
            (true, crate::api::Dialect::Ollama) => Replay::Ndjson,
        }
    }
}

/// A request the cache may answer or fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRequest {
    pub hash: [u8; 16],
    pub replay: Replay,
    /// The model the answer comes from (for `POST /admin/cache/invalidate?model=`).
    pub model: String,
}

/// Why a request goes past the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// `router.cache.enabled` is off.
    Disabled,
    /// An endpoint whose answers are not cached (`/api/show`, a load or unload request).
    NotCacheable,
    /// The client sent `Cache-Control: no-cache` or `no-store`.
    ClientAsked,
    /// Random sampling, with `router.cache.skip_random_sampling` on.
    RandomSampling,
}

impl Bypass {
    pub fn as_str(self) -> &'static str {
        match self {
            Bypass::Disabled => "disabled",
            Bypass::NotCacheable => "not_cacheable",
            Bypass::ClientAsked => "cache_control",
            Bypass::RandomSampling => "random_sampling",
        }
    }
}

/// What decides cacheability besides the request itself.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub enabled: bool,
    pub skip_random_sampling: bool,
}

/// The request as the cache sees it.
#[derive(Debug, Clone, Copy)]
pub struct RoutedRequest<'a> {
    pub endpoint: Forwarded,
    pub body: &'a Map<String, Value>,
    /// Whether the answer streams (as the endpoint reads the body).
    pub stream: bool,
    pub load_only: bool,
    /// The model the router chose.
    pub model: &'a str,
    /// The request's `Cache-Control` header, if any.
    pub cache_control: Option<&'a str>,
    /// Who asks: the API key's tenant (`tenant:<name>`) when client keys are configured, else
    /// the request's `Authorization` header, which is forwarded and may decide what a node
    /// answers.
    pub identity: Option<&'a str>,
    /// The query string forwarded to the node (the router's own `?model=` removed).
    pub query: &'a str,
}

/// Whether the cache may answer `request`, and under which key.
pub fn plan(policy: CachePolicy, request: RoutedRequest<'_>) -> Result<CacheRequest, Bypass> {
    if !policy.enabled {
        return Err(Bypass::Disabled);
    }
    if !cacheable_endpoint(request.endpoint) || request.load_only {
        return Err(Bypass::NotCacheable);
    }
    let asked_not_to = request.cache_control.is_some_and(|value| {
        value
            .split(',')
            .map(|d| d.trim().to_ascii_lowercase())
            .any(|d| d == "no-cache" || d == "no-store")
    });
    if asked_not_to {
        return Err(Bypass::ClientAsked);
    }
    if policy.skip_random_sampling && samples_at_random(request.endpoint, request.body) {
        return Err(Bypass::RandomSampling);
    }
    Ok(CacheRequest {
        hash: hash(request),
        replay: Replay::of(request.endpoint, request.stream),
        model: request.model.to_string(),
    })
}

fn cacheable_endpoint(endpoint: Forwarded) -> bool {
    !matches!(endpoint, Forwarded::OllamaShow)
}

/// A temperature above 0, or none (the model's default, above 0 for Ollama and llama-server),
/// without a seed. Embeddings are deterministic.
fn samples_at_random(endpoint: Forwarded, body: &Map<String, Value>) -> bool {
    use Forwarded::*;
    let params = match endpoint {
        Embeddings | OllamaEmbed | OllamaEmbeddings | OllamaShow => return false,
        ChatCompletions | Completions => Some(body),
        OllamaChat | OllamaGenerate => body.get("options").and_then(Value::as_object),
    };
    let temperature = params
        .and_then(|p| p.get("temperature"))
        .and_then(Value::as_f64);
    // Ollama and llama.cpp read a negative seed (and llama.cpp 0xFFFFFFFF) as "pick one at random".
    let seeded = params.and_then(|p| p.get("seed")).is_some_and(|s| {
        s.as_i64().is_some_and(|n| n >= 0 && n != 0xFFFF_FFFF)
            || s.as_u64().is_some_and(|n| n != 0xFFFF_FFFF)
    });
    temperature.is_none_or(|t| t > 0.0) && !seeded
}

/// Fields that cannot change the answer.
const IGNORED: &[&str] = &["model", "keep_alive", "user", "stream"];

/// The Blake2b-128 hash of the canonical routed request.
pub fn hash(request: RoutedRequest<'_>) -> [u8; 16] {
    hash_in(request, "smarterrouter-cache-v1")
}

fn hash_in(request: RoutedRequest<'_>, domain: &str) -> [u8; 16] {
    let mut hasher = Blake2b128::new();
    let label = crate::api::Endpoint::Forwarded(request.endpoint).label();
    write_str(&mut hasher, domain);
    write_str(&mut hasher, label);
    write_str(&mut hasher, request.model);
    write_str(&mut hasher, request.identity.unwrap_or(""));
    write_str(&mut hasher, request.query);
    hasher.update(if request.stream { b"T" } else { b"F" });
    let mut keys: Vec<&String> = request
        .body
        .keys()
        .filter(|k| !IGNORED.contains(&k.as_str()))
        .collect();
    keys.sort();
    hasher.update(b"{");
    for key in keys {
        write_str(&mut hasher, key);
        write_value(&mut hasher, &request.body[key.as_str()]);
    }
    hasher.update(b"}");
    hasher.finalize().into()
}

/// What the semantic cache compares: the last user turn, and the context it was asked in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemanticQuery {
    /// The hash of the request with the last user turn blanked: the same model, earlier
    /// turns, system prompt, tools, parameters and identity.
    pub context: [u8; 16],
    pub text: String,
}

/// The last user turn of a chat or completion request, when it is plain text (not an image, not
/// an assistant or tool turn). Embedding requests have none: their input is cached exactly.
pub fn semantic_query(request: RoutedRequest<'_>) -> Option<SemanticQuery> {
    use Forwarded::*;
    let mut body = request.body.clone();
    let text = match request.endpoint {
        ChatCompletions | OllamaChat => {
            let last = body
                .get_mut("messages")
                .and_then(Value::as_array_mut)?
                .last_mut()?
                .as_object_mut()?;
            if last.get("role").and_then(Value::as_str) != Some("user") {
                return None;
            }
            let text = plain_text(last.get("content")?)?;
            last.insert("content".to_string(), Value::Null);
            text
        }
        Completions | OllamaGenerate => {
            let text = body.get("prompt")?.as_str()?.to_string();
            body.insert("prompt".to_string(), Value::Null);
            text
        }
        Embeddings | OllamaEmbed | OllamaEmbeddings | OllamaShow => return None,
    };
    if text.trim().is_empty() {
        return None;
    }
    let blanked = RoutedRequest {
        body: &body,
        ..request
    };
    Some(SemanticQuery {
        context: hash_in(blanked, "smarterrouter-semantic-context-v1"),
        text,
    })
}

/// A string, or OpenAI content parts that are all text.
fn plain_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => p.get("text").and_then(Value::as_str),
                _ => None,
            })
            .collect::<Option<Vec<&str>>>()
            .map(|texts| texts.join("\n")),
        _ => None,
    }
}

fn write_str(hasher: &mut Blake2b128, text: &str) {
    hasher.update((text.len() as u64).to_be_bytes());
    hasher.update(text.as_bytes());
}

fn write_value(hasher: &mut Blake2b128, value: &Value) {
    match value {
        Value::Null => hasher.update(b"n"),
        Value::Bool(true) => hasher.update(b"t"),
        Value::Bool(false) => hasher.update(b"f"),
        Value::Number(n) => {
            hasher.update(b"#");
            write_str(hasher, &canonical_number(n));
        }
        Value::String(s) => {
            hasher.update(b"s");
            write_str(hasher, s);
        }
        Value::Array(items) => {
            hasher.update(b"[");
            hasher.update((items.len() as u64).to_be_bytes());
            for item in items {
                write_value(hasher, item);
            }
            hasher.update(b"]");
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            hasher.update((keys.len() as u64).to_be_bytes());
            for key in keys {
                write_str(hasher, key);
                write_value(hasher, &map[key.as_str()]);
            }
            hasher.update(b"}");
        }
    }
}

/// A number by value: integers exactly, whole floats as integers, other floats in shortest form.
fn canonical_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return (f as i64).to_string();
    }
    format!("{f:e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request<'a>(body: &'a Map<String, Value>, model: &'a str) -> RoutedRequest<'a> {
        RoutedRequest {
            endpoint: Forwarded::OllamaChat,
            body,
            stream: false,
            load_only: false,
            model,
            cache_control: None,
            identity: None,
            query: "",
        }
    }

    fn key(body: Value) -> [u8; 16] {
        let body = body.as_object().unwrap().clone();
        hash(request(&body, "m"))
    }

    const POLICY: CachePolicy = CachePolicy {
        enabled: true,
        skip_random_sampling: true,
    };

    #[test]
    fn key_order_number_form_and_ignored_fields_do_not_change_the_key() {
        let a = key(
            json!({"model": "x", "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0, "num_ctx": 2048}}),
        );
        let b = key(
            json!({"options": {"num_ctx": 2048.0, "temperature": 0.0}, "keep_alive": "5m", "messages": [{"content": "hi", "role": "user"}], "model": "y", "user": "u1"}),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn everything_that_can_change_the_answer_changes_the_key() {
        let base = json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "options": {"num_ctx": 2048, "seed": 1}});
        let k = key(base.clone());
        let changed = [
            json!({"messages": [{"role": "system", "content": "t"}, {"role": "user", "content": "hi"}], "options": {"num_ctx": 2048, "seed": 1}}),
            json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "options": {"num_ctx": 4096, "seed": 1}}),
            json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "options": {"num_ctx": 2048, "seed": 2}}),
            json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "options": {"num_ctx": 2048, "seed": 1}, "format": "json"}),
            json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi", "images": ["AAAA"]}], "options": {"num_ctx": 2048, "seed": 1}}),
            json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "options": {"num_ctx": 2048, "seed": 1}, "think": true}),
        ];
        for body in changed {
            assert_ne!(key(body.clone()), k, "{body}");
        }
        // The chosen model, the stream flag and the endpoint are in the key too.
        let body = base.as_object().unwrap().clone();
        let mut other = request(&body, "m2");
        assert_ne!(hash(other), k);
        other.model = "m";
        other.stream = true;
        assert_ne!(hash(other), k);
        other.stream = false;
        other.endpoint = Forwarded::OllamaGenerate;
        assert_ne!(hash(other), k);
    }

    #[test]
    fn large_seeds_stay_exact() {
        assert_ne!(
            key(json!({"options": {"seed": 9007199254740993u64}})),
            key(json!({"options": {"seed": 9007199254740992u64}}))
        );
    }

    #[test]
    fn the_same_last_line_after_another_history_is_another_key() {
        let a = key(
            json!({"messages": [{"role": "user", "content": "my name is Ann"}, {"role": "assistant", "content": "hi Ann"}, {"role": "user", "content": "what is my name?"}]}),
        );
        let b = key(
            json!({"messages": [{"role": "user", "content": "my name is Bob"}, {"role": "assistant", "content": "hi Bob"}, {"role": "user", "content": "what is my name?"}]}),
        );
        assert_ne!(a, b);
    }

    #[test]
    fn bypasses() {
        let random = json!({"messages": [{"role": "user", "content": "hi"}]});
        let random = random.as_object().unwrap();
        assert_eq!(
            plan(POLICY, request(random, "m")),
            Err(Bypass::RandomSampling)
        );
        let lenient = CachePolicy {
            skip_random_sampling: false,
            ..POLICY
        };
        assert!(plan(lenient, request(random, "m")).is_ok());
        let fixed =
            json!({"messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0}});
        let fixed = fixed.as_object().unwrap();
        assert!(plan(POLICY, request(fixed, "m")).is_ok());
        let seeded = json!({"messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0.8, "seed": 7}});
        assert!(plan(POLICY, request(seeded.as_object().unwrap(), "m")).is_ok());
        let mut asked = request(fixed, "m");
        asked.cache_control = Some("max-age=0, no-cache");
        assert_eq!(plan(POLICY, asked), Err(Bypass::ClientAsked));
        let mut load = request(fixed, "m");
        load.load_only = true;
        assert_eq!(plan(POLICY, load), Err(Bypass::NotCacheable));
        let off = CachePolicy {
            enabled: false,
            ..POLICY
        };
        assert_eq!(plan(off, request(fixed, "m")), Err(Bypass::Disabled));
        let mut embed = request(random, "m");
        embed.endpoint = Forwarded::Embeddings;
        assert!(plan(POLICY, embed).is_ok(), "embeddings are deterministic");
    }

    #[test]
    fn the_semantic_context_is_everything_but_the_last_user_turn() {
        let chat = |last: &str, system: &str| {
            json!({"messages": [{"role": "system", "content": system},
                                {"role": "user", "content": last}], "temperature": 0})
        };
        let query = |body: Value| {
            let body = body.as_object().unwrap().clone();
            semantic_query(request(&body, "m"))
        };
        let a = query(chat("What is the capital of France?", "be brief")).unwrap();
        let b = query(chat("capital of france?", "be brief")).unwrap();
        let c = query(chat("What is the capital of France?", "be verbose")).unwrap();
        assert_eq!(a.text, "What is the capital of France?");
        assert_eq!(a.context, b.context, "only the last turn differs");
        assert_ne!(
            a.context, c.context,
            "another system prompt is another context"
        );
        let parts = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": "x"}}]}]});
        assert!(
            query(parts).is_none(),
            "an image is never matched by meaning"
        );
        let assistant_last = json!({"messages": [{"role": "assistant", "content": "hi"}]});
        assert!(query(assistant_last).is_none());
    }
}
