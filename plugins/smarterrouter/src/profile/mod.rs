//! The profiler: measures each model's quality per category with prompt suites whose answers
//! are checked automatically ([`graders`], [`suites`]), and its speed (time to first token,
//! tokens/s) and, on Ollama nodes, load time and VRAM. Results are [`ModelProfile`]s in the
//! store; the scoring engine uses them instead of size priors.

pub mod cli;
pub mod graders;
pub mod jobs;
pub mod judge;
pub mod remote;
pub mod runner;
pub mod suites;

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::routing::analysis::Category;
use crate::routing::score::QualityProfile;

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

    /// The engine's view: reasoning is the mean of reasoning and math; a category the suites did
    /// not measure stays on the size prior.
    pub fn quality(&self) -> QualityProfile {
        let get = |name: &str| self.categories.get(name).map(|c| c.score);
        let mean = |a: Option<f32>, b: Option<f32>| match (a, b) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            (a, b) => a.or(b),
        };
        let mut quality = [None; 4];
        quality[Category::Coding.index()] = get("coding");
        quality[Category::Reasoning.index()] = mean(get("reasoning"), get("math"));
        quality[Category::Creativity.index()] = get("creativity");
        quality[Category::Factual.index()] = get("factual");
        QualityProfile {
            quality,
            tokens_per_sec: self.tokens_per_sec,
        }
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

    pub fn get(&self, model: &str) -> Option<ModelProfile> {
        self.profiles.read().ok()?.get(model).cloned()
    }

    pub fn quality(&self, model: &str) -> Option<QualityProfile> {
        self.profiles
            .read()
            .ok()?
            .get(model)
            .map(ModelProfile::quality)
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

    #[test]
    fn reasoning_is_the_mean_of_reasoning_and_math() {
        let mut categories = BTreeMap::new();
        categories.insert("reasoning".to_string(), CategoryResult::new(1, 2));
        categories.insert("math".to_string(), CategoryResult::new(2, 2));
        let profile = ModelProfile {
            model: "m".into(),
            node_url: "http://x".into(),
            node_kind: "ollama".into(),
            digest: None,
            profiled_unix_ms: 0,
            categories,
            ttft_ms: None,
            tokens_per_sec: Some(20.0),
            load_ms: None,
            vram_bytes: None,
            prompts_per_category: 2,
            errors: 0,
        };
        let q = profile.quality();
        assert_eq!(q.quality[Category::Reasoning.index()], Some(0.75));
        assert_eq!(q.quality[Category::Coding.index()], None);
    }
}
