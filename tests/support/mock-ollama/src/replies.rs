//! Canned answer bodies and stream frames in Ollama and OpenAI shapes.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::MockModel;

const WORDS: &[&str] = &[
    "This",
    "is",
    "a",
    "simulated",
    "answer",
    "from",
    "the",
    "mock",
    "Ollama",
    "server.",
];

pub const CREATED_AT: &str = "2026-11-27T10:00:00.000000000Z";

pub fn token(i: usize) -> String {
    format!("{} ", WORDS[i % WORDS.len()])
}

/// The canned answer as stream pieces.
pub fn canned(tokens: usize) -> Vec<String> {
    (0..tokens).map(token).collect()
}

pub fn tags_entry(m: &MockModel) -> Value {
    json!({
        "name": m.name, "model": m.name,
        "modified_at": "2026-11-01T12:00:00.000000000Z",
        "size": m.size,
        "digest": format!("{:064x}", fnv(&m.name)),
        "details": {"parent_model": "", "format": "gguf", "family": m.family,
                    "families": [m.family], "parameter_size": m.parameter_size,
                    "quantization_level": "Q4_K_M"}
    })
}

pub fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A deterministic unit vector for a text.
pub fn embedding(text: &str, by_words: bool) -> Vec<f64> {
    if by_words {
        return word_embedding(text);
    }
    let mut seed = fnv(text);
    let raw: Vec<f64> = (0..8)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 33) as f64 / f64::from(u32::MAX)) - 0.25
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
    raw.into_iter().map(|x| x / norm).collect()
}

pub fn ollama_metrics(prompt_tokens: usize, tokens: usize) -> Value {
    json!({
        "total_duration": 250_000_000u64, "load_duration": 1_000_000u64,
        "prompt_eval_count": prompt_tokens, "prompt_eval_duration": 20_000_000u64,
        "eval_count": tokens, "eval_duration": 200_000_000u64
    })
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// NDJSON lines for `/api/chat` (chat = true) or `/api/generate`.
pub fn ollama_frames(
    model: &str,
    chat: bool,
    prompt_tokens: usize,
    pieces: &[String],
) -> Vec<Bytes> {
    let tokens = pieces.len();
    let piece = |text: &str| {
        if chat {
            json!({"message": {"role": "assistant", "content": text}})
        } else {
            json!({"response": text})
        }
    };
    let mut frames: Vec<Bytes> = pieces
        .iter()
        .map(|text| {
            let line = merge(
                json!({"model": model, "created_at": CREATED_AT, "done": false}),
                piece(text),
            );
            Bytes::from(format!("{line}\n"))
        })
        .collect();
    let last = merge(
        merge(
            json!({"model": model, "created_at": CREATED_AT, "done": true, "done_reason": "stop"}),
            piece(""),
        ),
        ollama_metrics(prompt_tokens, tokens),
    );
    frames.push(Bytes::from(format!("{last}\n")));
    frames
}

pub fn ollama_single(model: &str, chat: bool, prompt_tokens: usize, pieces: &[String]) -> Value {
    let tokens = pieces.len();
    let text: String = pieces.concat();
    let piece = if chat {
        json!({"message": {"role": "assistant", "content": text}})
    } else {
        json!({"response": text})
    };
    merge(
        merge(
            json!({"model": model, "created_at": CREATED_AT, "done": true, "done_reason": "stop"}),
            piece,
        ),
        ollama_metrics(prompt_tokens, tokens),
    )
}

pub fn openai_usage(prompt_tokens: usize, tokens: usize) -> Value {
    json!({"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
           "total_tokens": prompt_tokens + tokens})
}

/// SSE events for `/v1/chat/completions` (chat = true) or `/v1/completions`.
pub fn openai_frames(
    model: &str,
    chat: bool,
    include_usage: bool,
    prompt_tokens: usize,
    pieces: &[String],
) -> Vec<Bytes> {
    let tokens = pieces.len();
    let (id, object) = if chat {
        ("chatcmpl-mock", "chat.completion.chunk")
    } else {
        ("cmpl-mock", "text_completion")
    };
    let event = |choices: Value, usage: Option<Value>| {
        let mut v = json!({"id": id, "object": object, "created": 1_795_000_000u64,
                           "model": model, "system_fingerprint": "fp_ollama", "choices": choices});
        if let (Some(u), Some(obj)) = (usage, v.as_object_mut()) {
            obj.insert("usage".to_string(), u);
        }
        Bytes::from(format!("data: {v}\n\n"))
    };
    let mut frames = Vec::new();
    for (i, text) in pieces.iter().enumerate() {
        let choice = if chat {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": text})
            } else {
                json!({"content": text})
            };
            json!([{"index": 0, "delta": delta, "finish_reason": null}])
        } else {
            json!([{"index": 0, "text": text, "finish_reason": null}])
        };
        frames.push(event(choice, None));
    }
    let finish = if chat {
        json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    } else {
        json!([{"index": 0, "text": "", "finish_reason": "stop"}])
    };
    frames.push(event(finish, None));
    if include_usage {
        frames.push(event(json!([]), Some(openai_usage(prompt_tokens, tokens))));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

pub fn openai_single(model: &str, chat: bool, prompt_tokens: usize, pieces: &[String]) -> Value {
    let tokens = pieces.len();
    let text: String = pieces.concat();
    if chat {
        json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1_795_000_000u64,
               "model": model, "system_fingerprint": "fp_ollama",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop"}],
               "usage": openai_usage(prompt_tokens, tokens)})
    } else {
        json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_795_000_000u64,
               "model": model, "system_fingerprint": "fp_ollama",
               "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
               "usage": openai_usage(prompt_tokens, tokens)})
    }
}

/// A bag of words in 64 dimensions, unit length.
fn word_embedding(text: &str) -> Vec<f64> {
    let mut v = vec![0.0f64; 64];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        v[(fnv(&word.to_lowercase()) % 64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
    v.into_iter().map(|x| x / norm).collect()
}
