//! Measured model profiles: quality per category (with a 95% Wilson interval), speed, load time
//! and VRAM, as the profiler writes them and the store keeps them, and the in-memory book the
//! scoring engine reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// Score of one category: fraction of prompts answered right, with a 95% Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryResult {
    pub correct: usize,
    pub total: usize,
    pub score: f32,
    pub ci_low: f32,
    pub ci_high: f32,
    /// Graded by the LLM judge: `score` is its mean grade, `correct` the answers graded 5+/10.
    #[serde(default)]
    pub judged: bool,
}

impl CategoryResult {
    pub fn new(correct: usize, total: usize) -> Self {
        let (ci_low, ci_high) = wilson(correct, total);
        CategoryResult {
            correct,
            total,
            score: if total == 0 {
                0.0
            } else {
                correct as f32 / total as f32
            },
            ci_low,
            ci_high,
            judged: false,
        }
    }

    /// A category graded by the judge: mean grade, interval on the share graded 5+/10.
    pub fn judged(grades: &[f32]) -> Self {
        let correct = grades.iter().filter(|g| **g >= 0.5).count();
        let mut result = CategoryResult::new(correct, grades.len());
        if !grades.is_empty() {
            result.score = grades.iter().sum::<f32>() / grades.len() as f32;
        }
        result.judged = true;
        result
    }
}

/// 95% Wilson score interval for `correct` of `total`.
pub fn wilson(correct: usize, total: usize) -> (f32, f32) {
    if total == 0 {
        return (0.0, 1.0);
    }
    let n = total as f64;
    let p = correct as f64 / n;
    let z = 1.96f64;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt()) / denom;
    (
        ((centre - half).max(0.0)) as f32,
        ((centre + half).min(1.0)) as f32,
    )
}

/// A model's measured profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelProfile {
    pub model: String,
    pub node_url: String,
    pub node_kind: String,
    pub digest: Option<String>,
    pub profiled_unix_ms: u64,
    /// By suite category: coding, reasoning, math, factual, instruction, creativity.
    pub categories: BTreeMap<String, CategoryResult>,
    pub ttft_ms: Option<f32>,
    pub tokens_per_sec: Option<f32>,
    pub load_ms: Option<f32>,
    pub vram_bytes: Option<u64>,
    pub prompts_per_category: usize,
    pub errors: usize,
}

impl ModelProfile {
    /// Prompts that got no answer at all (errors and timeouts), out of those sent.
    pub fn unanswered_share(&self) -> f32 {
        let answered: usize = self.categories.values().map(|c| c.total).sum();
        let sent = answered + self.errors;
        if sent == 0 {
            1.0
        } else {
            self.errors as f32 / sent as f32
        }
    }

    /// A profile worth keeping: most prompts got an answer.
    pub fn is_usable(&self) -> bool {
        self.unanswered_share() <= 0.5
    }
}

/// The profiles the router routes with, by model name.
#[derive(Debug, Default)]
pub struct ProfileBook {
    profiles: RwLock<HashMap<String, ModelProfile>>,
}

impl ProfileBook {
    pub fn insert(&self, profile: ModelProfile) {
        if let Ok(mut map) = self.profiles.write() {
            map.insert(profile.model.clone(), profile);
        }
    }

    /// Reads a profile in place (no copy), for the scoring engine's hot path.
    pub fn read<T>(&self, model: &str, f: impl FnOnce(&ModelProfile) -> T) -> Option<T> {
        self.profiles.read().ok()?.get(model).map(f)
    }

    pub fn get(&self, model: &str) -> Option<ModelProfile> {
        self.profiles.read().ok()?.get(model).cloned()
    }

    pub fn all(&self) -> Vec<ModelProfile> {
        let mut all: Vec<ModelProfile> = self
            .profiles
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.model.cmp(&b.model));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_is_sane() {
        let (lo, hi) = wilson(3, 3);
        assert!(lo > 0.4 && lo < 0.5 && hi == 1.0, "{lo} {hi}");
        let (lo, hi) = wilson(0, 5);
        assert!(lo == 0.0 && hi > 0.4 && hi < 0.5, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
