//! The scoring engine: which capable model best fits the prompt, the quality-vs-speed preference
//! and what the hardware holds. Pure and deterministic.
//!
//! For each candidate: `total = A·quality + B·(speed + loaded + pinned) + feedback + size_penalty`
//! where `A = q·(0.5 + need)` and `B = (1 − q)·(1.5 − need)` (×1.25 with
//! `prefer_smaller_models`), `q` being the quality preference and `need` the prompt's complexity
//! plus its coding/reasoning strength. Quality is the prompt's category
//! mix over the model's per-category quality (measured profile in 0..1, else a prior from size
//! and name: 1 at 70B, still rising past it); speed is measured tokens/s, else a prior from size. A loaded model saves its load time,
//! which counts on the speed side in proportion to its size; feedback counts on both axes. Because
//! everything that depends on `q` sits on one of the two axes, raising `q` never picks a model of
//! lower feedback-adjusted quality, unless the category size penalty intervenes (it only ever
//! favours larger models); property-tested for models whose quality grows with size.

use serde_json::{json, Value};

use super::analysis::{Category, PromptAnalysis};
use super::RoutingDecision;
use crate::model::facts::ModelFacts;
use crate::model::ModelProfile;

/// Measured numbers for a model (filled by the profiler).
#[derive(Debug, Clone, PartialEq)]
pub struct QualityProfile {
    /// 0..1 per category, indexed by [`Category::index`]; `None` where not measured.
    pub quality: [Option<f32>; 4],
    pub tokens_per_sec: Option<f32>,
}

/// A model that might serve the request.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub facts: &'a ModelFacts,
    pub profile: Option<&'a QualityProfile>,
    /// Mean user feedback in −1..1 (0 when none).
    pub feedback: f32,
}

/// Settings the engine reads (`router.routing`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringSettings {
    pub quality_preference: f32,
    pub prefer_smaller_models: bool,
    pub pinned_model: Option<String>,
    /// Minimum billions of parameters per category and difficulty (simple, medium, hard).
    pub category_min_sizes: [[f32; 3]; 4],
}

impl Default for ScoringSettings {
    fn default() -> Self {
        ScoringSettings {
            quality_preference: 0.5,
            prefer_smaller_models: true,
            pinned_model: None,
            category_min_sizes: [
                [0.0, 4.0, 8.0],
                [0.0, 4.0, 8.0],
                [0.0, 1.0, 4.0],
                [0.0, 1.0, 4.0],
            ],
        }
    }
}

/// One candidate's score, term by term.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTerms {
    pub quality: f32,
    pub quality_source: &'static str,
    pub speed: f32,
    pub speed_source: &'static str,
    pub loaded: f32,
    pub pinned: f32,
    pub feedback: f32,
    pub size_penalty: f32,
    pub total: f32,
}

/// A candidate as the engine saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateScore {
    pub model: String,
    pub params_b: Option<f32>,
    /// Why it was left out, if it was.
    pub excluded: Option<String>,
    pub terms: Option<ScoreTerms>,
}

/// The engine's answer with everything `/admin/explain` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub decision: RoutingDecision,
    pub runner_up: Option<String>,
    pub quality_weight: f32,
    pub speed_weight: f32,
    pub candidates: Vec<CandidateScore>,
}

const UNKNOWN_PARAMS_QUALITY: f32 = 0.35;
const UNKNOWN_PARAMS_SPEED: f32 = 0.4;
const CONFIDENCE_TEMPERATURE: f32 = 0.05;
/// A specialist counts as this many times its size in its category.
const SPECIALIST_FACTOR: f32 = 8.0;

/// Scores every candidate; `None` when no candidate can chat at all.
pub fn score(
    analysis: &PromptAnalysis,
    candidates: &[Candidate<'_>],
    settings: &ScoringSettings,
) -> Option<Scored> {
    let q = settings.quality_preference.clamp(0.0, 1.0);
    let c = analysis.complexity.clamp(0.0, 1.0);
    let need = quality_need(analysis);
    let quality_weight = q * (0.5 + need);
    let speed_weight = (1.0 - q)
        * (1.5 - need)
        * if settings.prefer_smaller_models {
            1.25
        } else {
            1.0
        };

    let (allowed, note) = filter(analysis, candidates);
    let weights = analysis.weights();
    let mut scored: Vec<CandidateScore> = candidates
        .iter()
        .zip(allowed)
        .map(|(cand, allowed)| {
            let excluded = exclusion(cand, allowed, analysis);
            let terms = excluded.is_none().then(|| {
                terms(
                    analysis,
                    &weights,
                    cand,
                    settings,
                    quality_weight,
                    speed_weight,
                )
            });
            CandidateScore {
                model: cand.facts.name.clone(),
                params_b: cand.facts.params_b,
                excluded,
                terms,
            }
        })
        .collect();
    scored.sort_by(|a, b| {
        let ta = a.terms.as_ref().map_or(f32::MIN, |t| t.total);
        let tb = b.terms.as_ref().map_or(f32::MIN, |t| t.total);
        // Equal scores go to the smaller (faster) model, then by name, so the choice is stable.
        let size = |c: &CandidateScore| c.params_b.unwrap_or(f32::MAX);
        tb.total_cmp(&ta)
            .then_with(|| size(a).total_cmp(&size(b)))
            .then_with(|| a.model.cmp(&b.model))
    });
    let best = scored.first().filter(|s| s.terms.is_some())?;
    let best_terms = best.terms.clone()?;
    let best_model = best.model.clone();
    let runner_up = scored
        .get(1)
        .filter(|s| s.terms.is_some())
        .map(|s| s.model.clone());
    let confidence = confidence(&scored);
    let category = analysis.dominant();
    let reason = format!(
        "{} prompt ({}, complexity {:.2}){}: {} scored {:.3} (quality {:.2}, speed {:.2}{}) at quality_preference {:.2}{}",
        category.as_str(),
        analysis.difficulty().as_str(),
        c,
        note,
        best_model,
        best_terms.total,
        best_terms.quality,
        best_terms.speed,
        if best_terms.loaded > 0.0 { ", loaded" } else { "" },
        q,
        runner_up
            .as_ref()
            .map(|r| format!("; runner-up {r}"))
            .unwrap_or_default(),
    );
    Some(Scored {
        decision: RoutingDecision {
            model: best_model,
            reason,
            confidence,
            category: Some(category),
            runner_up: runner_up.clone(),
            by_router: true,
        },
        runner_up,
        quality_weight,
        speed_weight,
        candidates: scored,
    })
}

/// How much this prompt needs a strong model, 0..1: its complexity, plus how strongly it is a
/// coding or reasoning prompt (where small models fail first).
pub fn quality_need(analysis: &PromptAnalysis) -> f32 {
    let w = analysis.weights();
    let share = w[Category::Coding.index()] + w[Category::Reasoning.index()];
    let strength = analysis
        .score(Category::Coding)
        .max(analysis.score(Category::Reasoning));
    (analysis.complexity + 0.8 * share * strength).clamp(0.0, 1.0)
}

/// Which candidates pass the modality filters (by index), and a note when a filter found none.
fn filter(analysis: &PromptAnalysis, candidates: &[Candidate<'_>]) -> (Vec<bool>, &'static str) {
    let mut allowed: Vec<bool> = candidates.iter().map(|c| c.facts.can_chat()).collect();
    let mut note = "";
    let narrow = |allowed: &mut Vec<bool>, keep: &dyn Fn(&ModelFacts) -> bool| -> bool {
        let narrowed: Vec<bool> = allowed
            .iter()
            .zip(candidates)
            .map(|(ok, c)| *ok && keep(c.facts))
            .collect();
        if narrowed.iter().any(|ok| *ok) {
            *allowed = narrowed;
            true
        } else {
            false
        }
    };
    if analysis.vision && !narrow(&mut allowed, &|f| f.capabilities.vision) {
        note = "; no vision-capable model, so the best text model";
    }
    if analysis.tools && !narrow(&mut allowed, &|f| f.capabilities.tools) {
        note = if note.is_empty() {
            "; no tool-capable model, so the best model without tools"
        } else {
            "; no vision- or tool-capable model, so the best text model"
        };
    }
    (allowed, note)
}

fn exclusion(cand: &Candidate<'_>, allowed: bool, analysis: &PromptAnalysis) -> Option<String> {
    if allowed {
        return None;
    }
    Some(if !cand.facts.can_chat() {
        "embedding model".to_string()
    } else if analysis.vision && !cand.facts.capabilities.vision {
        "cannot read images".to_string()
    } else {
        "cannot call tools".to_string()
    })
}

fn terms(
    analysis: &PromptAnalysis,
    weights: &[f32; 4],
    cand: &Candidate<'_>,
    settings: &ScoringSettings,
    quality_weight: f32,
    speed_weight: f32,
) -> ScoreTerms {
    let facts = cand.facts;
    let specialised = specialisations(facts);
    let prior = |c: Category| prior_quality_with(facts, c, specialised[c.index()]);
    let (per_category, quality_source) = match cand.profile {
        Some(profile) => (
            Category::ALL.map(|c| profile.quality[c.index()].unwrap_or_else(|| prior(c))),
            "profile",
        ),
        None => (Category::ALL.map(prior), "prior"),
    };
    let quality: f32 = (0..4)
        .map(|i| weights[i] * per_category[i].clamp(0.0, 1.5))
        .sum();
    let (speed, speed_source) = match cand.profile.and_then(|p| p.tokens_per_sec) {
        Some(tps) if tps > 0.0 => (tps / (tps + 40.0), "profile"),
        _ => (prior_speed(facts), "prior"),
    };
    let loaded = if facts.loaded {
        speed_weight * load_seconds_saved_share(facts)
    } else {
        0.0
    };
    let pinned = if settings.pinned_model.as_deref() == Some(facts.name.as_str()) {
        speed_weight * 0.3 * (1.0 - analysis.complexity)
    } else {
        0.0
    };
    // On both axes (scaled by A + B), so feedback shifts a model's standing without undoing
    // the quality-preference ordering.
    let feedback = (quality_weight + speed_weight) * 0.3 * cand.feedback.clamp(-1.0, 1.0);
    let size_penalty = size_penalty(analysis, facts, settings, &specialised);
    let total =
        quality_weight * quality + speed_weight * speed + loaded + pinned + feedback + size_penalty;
    ScoreTerms {
        quality,
        quality_source,
        speed,
        speed_source,
        loaded,
        pinned,
        feedback,
        size_penalty,
        total,
    }
}

/// Quality before any measurement: grows with size on a log scale (70B = 1); a model whose name
/// or capabilities say it specialises in the category counts as eight times its size there (a
/// 7B coder scores like a 70B generalist on coding benchmarks). Size
/// matters fully for coding and reasoning, less for conversation and writing.
pub fn prior_quality(facts: &ModelFacts, category: Category) -> f32 {
    prior_quality_with(facts, category, specialisations(facts)[category.index()])
}

fn prior_quality_with(facts: &ModelFacts, category: Category, specialised: bool) -> f32 {
    let size_score = match facts.params_b {
        Some(p) => {
            let effective = if specialised {
                p * SPECIALIST_FACTOR
            } else {
                p
            };
            // Not capped at 70B: a larger model must keep scoring higher.
            ((1.0 + effective).ln() / 71f32.ln()).clamp(0.05, 1.5)
        }
        None => UNKNOWN_PARAMS_QUALITY,
    };
    match category {
        Category::Coding | Category::Reasoning => size_score,
        Category::Creativity | Category::Factual => 0.3 + 0.7 * size_score,
    }
}

/// Categories the model specialises in, from its name and capabilities.
fn specialisations(facts: &ModelFacts) -> [bool; 4] {
    let name = facts.name.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| name.contains(w));
    let mut out = [false; 4];
    out[Category::Coding.index()] = any(&["coder", "code", "starcoder", "devstral", "codestral"]);
    out[Category::Reasoning.index()] =
        facts.capabilities.thinking || any(&["r1", "math", "qwq", "reason"]);
    out
}

/// Speed before any measurement: smaller is faster.
pub fn prior_speed(facts: &ModelFacts) -> f32 {
    match facts.params_b {
        Some(p) => 1.0 / (1.0 + p / 3.0),
        None => UNKNOWN_PARAMS_SPEED,
    }
}

/// Share of a request's time a load would add, estimated from the model's size.
fn load_seconds_saved_share(facts: &ModelFacts) -> f32 {
    let gb = if facts.size_bytes > 0 {
        facts.size_bytes as f32 / 1e9
    } else {
        facts.params_b.unwrap_or(4.0) * 0.6
    };
    let seconds = 0.5 + gb / 1.5;
    seconds / (seconds + 5.0)
}

fn size_penalty(
    analysis: &PromptAnalysis,
    facts: &ModelFacts,
    settings: &ScoringSettings,
    specialised: &[bool; 4],
) -> f32 {
    let category = analysis.dominant();
    if analysis.score(category) < 0.3 {
        return 0.0;
    }
    let min = settings.category_min_sizes[category.index()][analysis.difficulty().index()];
    let specialist = if specialised[category.index()] {
        SPECIALIST_FACTOR
    } else {
        1.0
    };
    match facts.params_b.map(|p| p * specialist) {
        Some(p) if p < min => (-0.3 * (min - p)).max(-1.5),
        _ => 0.0,
    }
}

/// Softmax share of the winner: 1 when it stands alone, near 0.5 for a tie of two.
fn confidence(scored: &[CandidateScore]) -> f32 {
    let totals: Vec<f32> = scored
        .iter()
        .filter_map(|s| s.terms.as_ref().map(|t| t.total))
        .collect();
    let Some(best) = totals.first().copied() else {
        return 0.0;
    };
    let sum: f32 = totals
        .iter()
        .map(|t| ((t - best) / CONFIDENCE_TEMPERATURE).exp())
        .sum();
    (1.0 / sum).clamp(0.0, 1.0)
}

impl Scored {
    /// The explanation served by `/admin/explain`.
    pub fn to_json(&self) -> Value {
        let candidates: Vec<Value> = self
            .candidates
            .iter()
            .map(|c| {
                let mut v = json!({"model": c.model, "params_b": c.params_b, "eligible": c.excluded.is_none()});
                if let Some(why) = &c.excluded {
                    v["excluded_because"] = json!(why);
                }
                if let Some(t) = &c.terms {
                    v["terms"] = json!({
                        "quality": t.quality, "quality_source": t.quality_source,
                        "speed": t.speed, "speed_source": t.speed_source,
                        "loaded_bonus": t.loaded, "pinned_bonus": t.pinned, "feedback": t.feedback,
                        "size_penalty": t.size_penalty,
                        "quality_part": self.quality_weight * t.quality,
                        "speed_part": self.speed_weight * t.speed,
                    });
                    v["total"] = json!(t.total);
                }
                v
            })
            .collect();
        json!({
            "decision": {
                "model": self.decision.model,
                "runner_up": self.runner_up,
                "confidence": self.decision.confidence,
                "reason": self.decision.reason,
            },
            "weights": {"quality": self.quality_weight, "speed": self.speed_weight},
            "candidates": candidates,
        })
    }
}

/// A profile in the engine's terms: reasoning is the mean of reasoning and math; a category the suites did
/// not measure stays on the size prior.
impl ScoringSettings {
    /// The engine's settings from `router.routing`.
    pub fn from_config(config: &crate::config::RoutingConfig) -> Self {
        let m = &config.category_min_sizes;
        ScoringSettings {
            quality_preference: config.quality_preference,
            prefer_smaller_models: config.prefer_smaller_models,
            pinned_model: config.pinned_model.clone(),
            category_min_sizes: [m.coding, m.reasoning, m.creativity, m.factual],
        }
    }
}

pub fn quality_of(profile: &ModelProfile) -> QualityProfile {
    let get = |name: &str| profile.categories.get(name).map(|c| c.score);
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
        tokens_per_sec: profile.tokens_per_sec,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::CategoryResult;

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
        let q = quality_of(&profile);
        assert_eq!(q.quality[Category::Reasoning.index()], Some(0.75));
        assert_eq!(q.quality[Category::Coding.index()], None);
    }
}
