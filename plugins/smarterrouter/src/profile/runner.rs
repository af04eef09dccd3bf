//! Runs the suites against one model on one node through its OpenAI-compatible streaming chat
//! endpoint (Ollama and llama-server both have it), grading each answer and timing the stream.
//! On Ollama nodes it also measures a cold load and reads the model's VRAM from `/api/ps`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::judge::Judge;
use super::suites::Suite;
use super::{CategoryResult, ModelProfile};
use crate::config::NodeKind;
use crate::upstream::NodeClient;

/// What to profile.
#[derive(Debug, Clone)]
pub struct Target {
    pub model: String,
    pub node_url: String,
    pub node_kind: NodeKind,
    pub digest: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunSettings {
    pub prompts_per_category: usize,
    pub timeout: Duration,
    pub max_tokens: u32,
}

/// One graded prompt, reported as it finishes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub model: String,
    pub category: String,
    pub prompt_id: String,
    pub passed: bool,
    pub error: Option<String>,
    pub done: usize,
    pub total: usize,
}

/// Why a prompt got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("node answered HTTP {0}")]
    Status(u16),
    #[error("stream broke: {0}")]
    Stream(String),
}

/// The measurements of one streamed answer.
struct Answer {
    text: String,
    ttft: Option<Duration>,
    tokens_per_sec: Option<f32>,
}

/// Suite categories the judge grades when it is enabled.
const JUDGED: &[&str] = &["creativity"];

pub async fn profile_model(
    client: &NodeClient,
    target: &Target,
    suites: &[Suite],
    settings: &RunSettings,
    judge: Option<&Judge>,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> ModelProfile {
    let (load_ms, vram_bytes) = if target.node_kind == NodeKind::Ollama {
        measure_load(client, target, settings.timeout).await
    } else {
        (None, None)
    };
    let per = settings.prompts_per_category.max(1);
    let total: usize = suites.iter().map(|s| s.prompts.len().min(per)).sum();
    let mut done = 0;
    let mut errors = 0;
    let mut categories = BTreeMap::new();
    let mut ttfts = Vec::new();
    let mut speeds = Vec::new();
    for suite in suites {
        let mut correct = 0;
        let mut asked = 0;
        let judge = judge.filter(|_| JUDGED.contains(&suite.category.as_str()));
        let mut grades = Vec::new();
        for prompt in suite.prompts.iter().take(per) {
            let result = tokio::time::timeout(
                settings.timeout,
                ask(client, target, &prompt.prompt, settings.max_tokens),
            )
            .await;
            let (passed, error) = match result {
                Ok(Ok(answer)) => {
                    ttfts.extend(answer.ttft);
                    speeds.extend(answer.tokens_per_sec);
                    match judge {
                        Some(judge) => match judge.score(&prompt.prompt, &answer.text).await {
                            Ok(grade) => {
                                grades.push(grade);
                                (grade >= 0.5, None)
                            }
                            // The judge failed: this answer gets the form check instead.
                            Err(e) => {
                                let passed = prompt.grader.passes(&answer.text);
                                grades.push(if passed { 1.0 } else { 0.0 });
                                (passed, Some(e.to_string()))
                            }
                        },
                        None => (prompt.grader.passes(&answer.text), None),
                    }
                }
                Ok(Err(e)) => (false, Some(e.to_string())),
                Err(_) => (
                    false,
                    Some(format!("no answer within {} s", settings.timeout.as_secs())),
                ),
            };
            // A prompt that got no answer measures the node, not the model: leave it out.
            if error.is_some() && !judged_fallback(&error, judge.is_some()) {
                errors += 1;
            } else {
                asked += 1;
                correct += usize::from(passed);
            }
            done += 1;
            progress(Progress {
                model: target.model.clone(),
                category: suite.category.clone(),
                prompt_id: prompt.id.clone(),
                passed,
                error,
                done,
                total,
            });
        }
        if asked == 0 {
            continue;
        }
        let result = if judge.is_some() {
            CategoryResult::judged(&grades)
        } else {
            CategoryResult::new(correct, asked)
        };
        categories.insert(suite.category.clone(), result);
    }
    ModelProfile {
        model: target.model.clone(),
        node_url: target.node_url.clone(),
        node_kind: target.node_kind.as_str().to_string(),
        digest: target.digest.clone(),
        profiled_unix_ms: crate::store::now_unix_ms(),
        categories,
        ttft_ms: median(ttfts.iter().map(|d| d.as_secs_f32() * 1000.0).collect()),
        tokens_per_sec: median(speeds),
        load_ms,
        vram_bytes,
        prompts_per_category: per,
        errors,
    }
}

/// Whether an error came from the judge after the model did answer (the answer was then graded
/// by its form check, so it still counts).
fn judged_fallback(error: &Option<String>, judging: bool) -> bool {
    judging && error.as_deref().is_some_and(|e| e.starts_with("judge"))
}

fn median(mut values: Vec<f32>) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    Some(values[values.len() / 2])
}

async fn ask(
    client: &NodeClient,
    target: &Target,
    prompt: &str,
    max_tokens: u32,
) -> Result<Answer, AskError> {
    let body = json!({
        "model": target.model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "temperature": 0,
        "max_tokens": max_tokens,
    });
    let started = Instant::now();
    let response = client
        .generation()
        .post(format!("{}/v1/chat/completions", target.node_url))
        .json(&body)
        .send()
        .await
        .map_err(|e| AskError::Request(e.to_string()))?;
    if !response.status().is_success() {
        return Err(AskError::Status(response.status().as_u16()));
    }
    let mut text = String::new();
    let mut first_token: Option<Instant> = None;
    let mut completion_tokens: Option<u64> = None;
    // Bytes, not text: a multi-byte character can be split across two network chunks.
    let mut pending: Vec<u8> = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AskError::Stream(e.to_string()))?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let Some(data) = line.trim().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                continue;
            }
            let Ok(event) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if let Some(piece) = event
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                if !piece.is_empty() {
                    first_token.get_or_insert_with(Instant::now);
                    text.push_str(piece);
                }
            }
            if let Some(n) = event
                .pointer("/usage/completion_tokens")
                .and_then(Value::as_u64)
            {
                completion_tokens = Some(n);
            }
        }
    }
    let finished = Instant::now();
    let tokens_per_sec = match (first_token, completion_tokens) {
        (Some(first), Some(n)) if n > 1 => {
            let secs = finished.duration_since(first).as_secs_f32();
            (secs > 0.0).then(|| (n - 1) as f32 / secs)
        }
        _ => None,
    };
    Ok(Answer {
        text,
        ttft: first_token.map(|t| t.duration_since(started)),
        tokens_per_sec,
    })
}

/// Unloads the model, times a fresh load, and reads its VRAM from `/api/ps`.
async fn measure_load(
    client: &NodeClient,
    target: &Target,
    timeout: Duration,
) -> (Option<f32>, Option<u64>) {
    let generate = format!("{}/api/generate", target.node_url);
    let unload = client
        .generation()
        .post(&generate)
        .json(&json!({"model": target.model, "keep_alive": 0}))
        .timeout(timeout)
        .send()
        .await;
    if unload.is_err() {
        return (None, None);
    }
    let started = Instant::now();
    let load = client
        .generation()
        .post(&generate)
        .json(&json!({"model": target.model}))
        .timeout(timeout)
        .send()
        .await;
    let load_ms = match load {
        Ok(r) if r.status().is_success() => Some(started.elapsed().as_secs_f32() * 1000.0),
        _ => None,
    };
    let vram = client
        .loaded_models(&target.node_url)
        .await
        .ok()
        .and_then(|loaded| {
            loaded
                .iter()
                .find(|m| m.get("name").and_then(Value::as_str) == Some(target.model.as_str()))?
                .get("size_vram")?
                .as_u64()
        });
    (load_ms, vram)
}
