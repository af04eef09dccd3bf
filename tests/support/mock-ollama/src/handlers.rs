//! Route handlers of the mock. Every handler records the request first.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::replies::{self, CREATED_AT};
use crate::{MockState, Recorded};

type St = State<Arc<MockState>>;

fn record(state: &MockState, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    state.record(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    });
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn ollama_error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

fn openai_error(status: StatusCode, message: &str) -> Response {
    let kind = if status == StatusCode::NOT_FOUND {
        "not_found_error"
    } else {
        "invalid_request_error"
    };
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

/// Streams `frames`, one every `token_interval`, counting completed and abandoned streams.
/// A streamed answer; with `cut_after`, the body breaks off after that many frames (no final
/// chunk: the client sees a stream cut short).
fn stream(
    state: Arc<MockState>,
    frames: Vec<Bytes>,
    content_type: &'static str,
    cut_after: Option<usize>,
) -> Response {
    struct Guard {
        state: Arc<MockState>,
        done: bool,
    }
    impl Guard {
        fn finish(&mut self) {
            self.done = true;
        }
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            let counter = if self.done {
                &self.state.streams_completed
            } else {
                &self.state.streams_aborted
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
    state.streams_started.fetch_add(1, Ordering::SeqCst);
    let interval = state.config.token_interval;
    let guard = Guard { state, done: false };
    let body = futures_util::stream::unfold(
        (frames, 0usize, guard),
        move |(frames, i, mut guard)| async move {
            if i == usize::MAX {
                return None;
            }
            if i >= frames.len() {
                guard.finish();
                return None;
            }
            if cut_after == Some(i) {
                return Some((
                    Err(std::io::Error::other("stream cut short (simulated)")),
                    (frames, usize::MAX, guard),
                ));
            }
            if i > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            let frame = frames[i].clone();
            Some((Ok::<Bytes, std::io::Error>(frame), (frames, i + 1, guard)))
        },
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// In a prompt, makes the mock answer 500.
pub const FAIL_500: &str = "[[mock:500]]";
/// In a prompt, makes a streamed answer break off after two frames.
pub const CUT_STREAM: &str = "[[mock:cut]]";
/// In a prompt, makes an Ollama stream end with an error line (status 200), as Ollama does.
pub const ERROR_LINE: &str = "[[mock:error-line]]";

fn cut_point(prompt: &str) -> Option<usize> {
    prompt.contains(CUT_STREAM).then_some(2)
}

/// The prompt a scripted reply is matched against: the last user message, or `prompt`.
fn last_user_text(req: &Value) -> String {
    if let Some(messages) = req.get("messages").and_then(Value::as_array) {
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
        return last_user
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
    }
    req.get("prompt")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn parse(body: &Bytes) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

fn prompt_tokens(body: &Bytes) -> usize {
    (body.len() / 4).max(1)
}

async fn pause(state: &MockState) {
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
}

pub async fn root(State(s): St, m: Method, u: Uri, h: HeaderMap) -> Response {
    record(&s, &m, &u, &h, &Bytes::new());
    "Ollama is running (SIMULATED: mock-ollama)".into_response()
}

pub async fn tags(State(s): St, m: Method, u: Uri, h: HeaderMap) -> Response {
    record(&s, &m, &u, &h, &Bytes::new());
    let models: Vec<Value> = s.config.models.iter().map(replies::tags_entry).collect();
    json_response(StatusCode::OK, &json!({ "models": models }))
}

pub async fn ps(State(s): St, m: Method, u: Uri, h: HeaderMap) -> Response {
    record(&s, &m, &u, &h, &Bytes::new());
    let simulated = s.loaded_now();
    let loaded: Vec<Value> = s
        .config
        .models
        .iter()
        .enumerate()
        .filter(|(i, m)| match &s.config.vram_sim {
            None => *i == 0,
            Some(_) => simulated.contains(&m.name),
        })
        .map(|(_, model)| {
            let mut entry = replies::tags_entry(model);
            if let Some(obj) = entry.as_object_mut() {
                obj.insert("size_vram".into(), json!(model.size));
                obj.insert("expires_at".into(), json!("2026-11-27T10:05:00Z"));
                obj.insert("context_length".into(), json!(4096));
            }
            entry
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "models": loaded }))
}

pub async fn version(State(s): St, m: Method, u: Uri, h: HeaderMap) -> Response {
    record(&s, &m, &u, &h, &Bytes::new());
    json_response(StatusCode::OK, &json!({"version": "0.33.0-mock"}))
}

pub async fn show(State(s): St, m: Method, u: Uri, h: HeaderMap, body: Bytes) -> Response {
    record(&s, &m, &u, &h, &body);
    let Some(req) = parse(&body) else {
        return ollama_error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let name = req
        .get("model")
        .or_else(|| req.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(model) = s.model(name) else {
        return ollama_error(StatusCode::NOT_FOUND, &format!("model '{name}' not found"));
    };
    let entry = replies::tags_entry(model);
    json_response(
        StatusCode::OK,
        &json!({
            "modelfile": "# SIMULATED", "parameters": "", "template": "{{ .Prompt }}",
            "details": entry["details"], "capabilities": model.capabilities,
            "model_info": {"general.architecture": model.family, "general.parameter_count": model.parameter_count(),
                           format!("{}.context_length", model.family): model.context_length},
            "modified_at": entry["modified_at"],
        }),
    )
}

/// Shared checks of inference requests: JSON object, known model, right capability.
#[allow(clippy::result_large_err)] // the error is the response itself, returned once
fn inference_model(
    s: &MockState,
    body: &Bytes,
    want_embedding: bool,
    openai: bool,
) -> Result<(Value, String), Response> {
    let err = |status, msg: &str| {
        if openai {
            openai_error(status, msg)
        } else {
            ollama_error(status, msg)
        }
    };
    let req = parse(body).ok_or_else(|| err(StatusCode::BAD_REQUEST, "invalid JSON body"))?;
    let name = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let model = s
        .model(&name)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, &format!("model '{name}' not found")))?;
    if model.is_embedding() != want_embedding {
        let what = if want_embedding { "embeddings" } else { "chat" };
        return Err(err(
            StatusCode::BAD_REQUEST,
            &format!("\"{name}\" does not support {what}"),
        ));
    }
    Ok((req, name))
}

async fn ollama_generation(s: Arc<MockState>, body: Bytes, chat: bool) -> Response {
    let (req, model) = match inference_model(&s, &body, false, false) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let empty = if chat {
        req.get("messages")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    } else {
        req.get("prompt")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    };
    if empty {
        let unload = req.get("keep_alive").is_some_and(|k| k == 0 || k == "0");
        if unload {
            s.unload(&model);
        } else {
            s.touch(&model);
        }
        let mut v = json!({"model": model, "created_at": CREATED_AT, "done": true,
                           "done_reason": if unload { "unload" } else { "load" }});
        if chat {
            v["message"] = json!({"role": "assistant", "content": ""});
        } else {
            v["response"] = json!("");
        }
        return json_response(StatusCode::OK, &v);
    }
    s.touch(&model);
    pause(&s).await;
    let prompt = last_user_text(&req);
    if prompt.contains(FAIL_500) {
        return ollama_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "model runner crashed (simulated)",
        );
    }
    let pieces = s.reply_pieces(&model, &prompt);
    if req.get("stream").and_then(Value::as_bool).unwrap_or(true) {
        let mut frames = replies::ollama_frames(&model, chat, prompt_tokens(&body), &pieces);
        if prompt.contains(ERROR_LINE) {
            // Ollama's mid-stream failure: status 200, then an error line instead of done:true.
            frames.truncate(2);
            frames.push(Bytes::from(
                "{\"error\":\"an error was encountered while running the model\"}\n",
            ));
        }
        stream(s, frames, "application/x-ndjson", cut_point(&prompt))
    } else {
        json_response(
            StatusCode::OK,
            &replies::ollama_single(&model, chat, prompt_tokens(&body), &pieces),
        )
    }
}

pub async fn ollama_chat(State(s): St, m: Method, u: Uri, h: HeaderMap, body: Bytes) -> Response {
    record(&s, &m, &u, &h, &body);
    ollama_generation(s, body, true).await
}

pub async fn ollama_generate(
    State(s): St,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &m, &u, &h, &body);
    ollama_generation(s, body, false).await
}

fn inputs(req: &Value, field: &str) -> Option<Vec<String>> {
    match req.get(field)? {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

pub async fn ollama_embed(State(s): St, m: Method, u: Uri, h: HeaderMap, body: Bytes) -> Response {
    record(&s, &m, &u, &h, &body);
    let (req, model) = match inference_model(&s, &body, true, false) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(texts) = inputs(&req, "input") else {
        return ollama_error(StatusCode::BAD_REQUEST, "invalid input type");
    };
    pause(&s).await;
    let vectors: Vec<Vec<f64>> = texts
        .iter()
        .map(|t| replies::embedding(t, s.config.word_embeddings))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"model": model, "embeddings": vectors, "total_duration": 1_000_000u64,
                "load_duration": 0, "prompt_eval_count": prompt_tokens(&body)}),
    )
}

pub async fn ollama_embeddings(
    State(s): St,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &m, &u, &h, &body);
    let (req, _) = match inference_model(&s, &body, true, false) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let prompt = req.get("prompt").and_then(Value::as_str).unwrap_or("");
    json_response(
        StatusCode::OK,
        &json!({ "embedding": replies::embedding(prompt, s.config.word_embeddings) }),
    )
}

pub async fn openai_models(State(s): St, m: Method, u: Uri, h: HeaderMap) -> Response {
    record(&s, &m, &u, &h, &Bytes::new());
    let data: Vec<Value> = s
        .config
        .models
        .iter()
        .map(|model| json!({"id": model.name, "object": "model", "created": 1_793_000_000u64, "owned_by": "library"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

async fn openai_generation(s: Arc<MockState>, body: Bytes, chat: bool) -> Response {
    let (req, model) = match inference_model(&s, &body, false, true) {
        Ok(found) => found,
        Err(response) => return response,
    };
    if chat
        && req
            .get("messages")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        return openai_error(StatusCode::BAD_REQUEST, "[] is too short - 'messages'");
    }
    pause(&s).await;
    let prompt = last_user_text(&req);
    if prompt.contains(FAIL_500) {
        return openai_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "model runner crashed (simulated)",
        );
    }
    let pieces = s.reply_pieces(&model, &prompt);
    if req.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let include_usage = req
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let frames =
            replies::openai_frames(&model, chat, include_usage, prompt_tokens(&body), &pieces);
        stream(s, frames, "text/event-stream", cut_point(&prompt))
    } else {
        json_response(
            StatusCode::OK,
            &replies::openai_single(&model, chat, prompt_tokens(&body), &pieces),
        )
    }
}

pub async fn openai_chat(State(s): St, m: Method, u: Uri, h: HeaderMap, body: Bytes) -> Response {
    record(&s, &m, &u, &h, &body);
    if s.chat_attempts.fetch_add(1, Ordering::SeqCst) < s.config.fail_first_chat {
        return openai_error(StatusCode::TOO_MANY_REQUESTS, "rate limited (simulated)");
    }
    openai_generation(s, body, true).await
}

pub async fn openai_completions(
    State(s): St,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &m, &u, &h, &body);
    openai_generation(s, body, false).await
}

pub async fn openai_embeddings(
    State(s): St,
    m: Method,
    u: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    record(&s, &m, &u, &h, &body);
    let (req, model) = match inference_model(&s, &body, true, true) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(texts) = inputs(&req, "input") else {
        return openai_error(StatusCode::BAD_REQUEST, "invalid input type");
    };
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(
            |(i, t)| json!({"object": "embedding", "embedding": replies::embedding(t, s.config.word_embeddings), "index": i}),
        )
        .collect();
    let n = prompt_tokens(&body);
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": n, "total_tokens": n}}),
    )
}

/// Counters for scripts driving the standalone binary.
pub async fn stats(State(s): St) -> Response {
    let (started, completed, aborted) = s.streams();
    let describe = |r: &crate::Recorded| {
        json!({"method": r.method, "path": r.path, "headers": r.headers,
               "body_len": r.body.len(), "json": r.json()})
    };
    let requests = s.requests();
    let last = requests.last().map(describe);
    // The last request that asked a model for something (discovery polls do not count).
    let last_inference = requests
        .iter()
        .rev()
        .find(|r| {
            !matches!(
                r.path.as_str(),
                "/api/tags" | "/api/ps" | "/api/version" | "/api/show" | "/v1/models" | "/"
            )
        })
        .map(describe);
    let paths = [
        "/api/chat",
        "/api/generate",
        "/api/embed",
        "/api/embeddings",
        "/api/show",
        "/api/tags",
        "/api/ps",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
    ];
    let counts: serde_json::Map<String, Value> = paths
        .iter()
        .map(|p| (p.to_string(), json!(s.count(p))))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"simulated": true, "counts": counts, "last_request": last,
                "last_inference": last_inference,
                "streams": {"started": started, "completed": completed, "aborted": aborted}}),
    )
}
