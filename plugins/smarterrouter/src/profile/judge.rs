//! Optional LLM-as-judge for open-ended categories (creativity): an OpenAI-compatible endpoint
//! grades an answer 0..10. Retries with exponential backoff on 429, 5xx and network errors; the
//! reply must be exactly a JSON object `{"score": 0-10, ...}` or it is rejected.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::JudgeConfig;

const INSTRUCTIONS: &str = "You grade answers to writing tasks. Judge how well the answer fulfils the task: relevance, quality of writing, originality, and following the requested form. Reply with only a JSON object: {\"score\": <integer 0 to 10>, \"reason\": \"<one short sentence>\"}.";

/// Why the judge gave no grade (the answer then gets the form check).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeError {
    #[error("cannot create the judge's HTTP client: {0}")]
    Client(String),
    #[error("judge answer is not JSON: {0}")]
    NotJson(String),
    #[error("judge answer has no choices[0].message.content")]
    NoContent,
    #[error("{failure} (after {attempts} attempts)")]
    Failed { failure: String, attempts: u32 },
    #[error("judge reply is not a JSON object {{\"score\": 0-10}}: {0:?}")]
    NotAScore(String),
    #[error("judge reply has no numeric \"score\": {0:?}")]
    NoScore(String),
    #[error("judge score {0} is outside 0..10")]
    OutOfRange(f64),
}

pub struct Judge {
    client: reqwest::Client,
    config: JudgeConfig,
}

impl Judge {
    pub fn new(config: JudgeConfig) -> Result<Self, JudgeError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|e| JudgeError::Client(e.to_string()))?;
        Ok(Judge { client, config })
    }

    /// The answer's grade in 0..1.
    pub async fn score(&self, task: &str, answer: &str) -> Result<f32, JudgeError> {
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "max_tokens": 120,
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": format!("Task:\n{task}\n\nAnswer:\n{answer}")},
            ],
        });
        let mut attempt = 0u32;
        loop {
            let mut request = self.client.post(&url).json(&body);
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key);
            }
            let outcome = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let value: Value = response
                        .json()
                        .await
                        .map_err(|e| JudgeError::NotJson(e.to_string()))?;
                    let content = value
                        .pointer("/choices/0/message/content")
                        .and_then(Value::as_str)
                        .ok_or(JudgeError::NoContent)?;
                    return parse_score(content);
                }
                Ok(response) => {
                    let status = response.status();
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    (retryable, format!("judge answered HTTP {status}"))
                }
                Err(e) => (true, format!("judge request failed: {e}")),
            };
            let (retryable, error) = outcome;
            if !retryable || attempt >= self.config.max_retries {
                return Err(JudgeError::Failed {
                    failure: error,
                    attempts: attempt + 1,
                });
            }
            let delay = self
                .config
                .retry_base_delay_ms
                .saturating_mul(1 << attempt.min(10));
            tokio::time::sleep(Duration::from_millis(delay.min(60_000))).await;
            attempt += 1;
        }
    }
}

/// Strict: the whole reply (optionally in one ```json fence) is an object with `score` 0..10.
pub fn parse_score(content: &str) -> Result<f32, JudgeError> {
    let trimmed = content.trim();
    let inner = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .unwrap_or(trimmed)
        .trim();
    let excerpt: String = trimmed.chars().take(80).collect();
    let value: Value =
        serde_json::from_str(inner).map_err(|_| JudgeError::NotAScore(excerpt.clone()))?;
    let score = value
        .get("score")
        .and_then(Value::as_f64)
        .ok_or(JudgeError::NoScore(excerpt))?;
    if !(0.0..=10.0).contains(&score) {
        return Err(JudgeError::OutOfRange(score));
    }
    Ok((score / 10.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        assert_eq!(parse_score(r#"{"score": 8, "reason": "good"}"#), Ok(0.8));
        assert_eq!(parse_score("```json\n{\"score\": 10}\n```"), Ok(1.0));
        assert!(parse_score("Score: 8").is_err());
        assert!(parse_score(r#"I think {"score": 8}"#).is_err());
        assert!(parse_score(r#"{"score": 11}"#).is_err());
        assert!(parse_score(r#"{"score": "8"}"#).is_err());
        assert!(parse_score(r#"[8]"#).is_err());
    }
}
