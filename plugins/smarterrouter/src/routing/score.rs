//! The scoring engine: which capable model best fits the prompt, the quality-vs-speed preference
//! and what the hardware holds. Pure and deterministic.
//!
//! For each candidate: `total = A·quality + B·(speed + loaded + pinned) + feedback + size_penalty`
//! where `A = q·(0.5 + need)` and `B = (1 − q)·(1.5 − need)` (×1.25 with
//! `prefer_smaller_models`), `q` being the quality preference and `need` the prompt's complexity
//! plus its coding/reasoning strength. Quality is the prompt's category
//! mix over the model's per-category quality: a prior from size and name (1 at 70B, still rising
//! past it), updated by the profile's evidence (k of n prompts passed) as the mean of a Beta
//! posterior whose prior counts as [`PRIOR_STRENGTH`] prompts; speed is measured tokens/s, else a
//! prior from size. A loaded model saves its load time,
//! which counts on the speed side in proportion to its size; feedback counts on both axes. Because
//! everything that depends on `q` sits on one of the two axes, raising `q` never picks a model of
//! lower feedback-adjusted quality, unless the category size penalty intervenes (it only ever
//! favours larger models); property-tested for models whose quality grows with size.

use serde_json::{json, Value};

use super::analysis::{Category, PromptAnalysis};
use super::RoutingDecision;
use crate::model::facts::ModelFacts;
use crate::model::ModelProfile;

/// What the profiler measured in one category: `successes` of `trials` prompts (a judge's grades
/// count as fractions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    pub successes: f32,
    pub trials: f32,
}

impl Evidence {
    pub fn share(self) -> f32 {
        if self.trials > 0.0 {
            self.successes / self.trials
        } else {
            0.0
        }
    }
}

/// Measured numbers for a model (filled by the profiler).
#[derive(Debug, Clone, PartialEq)]
pub struct QualityProfile {
    /// Per category, indexed by [`Category::index`]; `None` where not measured.
    pub quality: [Option<Evidence>; 4],
    pub tokens_per_sec: Option<f32>,
}

/// How many prompts' worth of evidence the size/name prior counts as. The suites send 3 to 5
/// prompts per category, so with 4: equal evidence (every model 0/3) keeps the priors' order (the
/// posterior is monotone in the prior); 3/3 against 0/3 overrides a prior gap of up to 0.75 and
/// 5/5 against 0/5 any gap between priors up to 1 (70B); 2/3 against 1/3 only one below 0.25, as
/// thin evidence should. The part of a prior above 1 is kept beside the evidence.
pub const PRIOR_STRENGTH: f32 = 4.0;

/// The posterior mean quality: the prior as `PRIOR_STRENGTH` pseudo-prompts, plus the evidence.
/// A prior above 1 (models past 70B) mixes as 1 and keeps its excess, so passing every prompt
/// never lowers a large model below its unmeasured self.
pub fn posterior(prior: f32, evidence: Option<Evidence>) -> f32 {
    match evidence {
        Some(e) if e.trials > 0.0 => {
            let base = prior.min(1.0);
            (PRIOR_STRENGTH * base + e.successes) / (PRIOR_STRENGTH + e.trials) + (prior - base)
        }
        _ => prior,
    }
}

/// One category's quality as the engine weighed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityDetail {
    pub prior: f32,
    pub evidence: Option<Evidence>,
    pub posterior: f32,
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
    /// Per category: prior, evidence and posterior.
    pub quality_detail: [QualityDetail; 4],
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
    // A vision model (a text model with an image adapter, such as llava) has no edge for a text
    // prompt: its text quality counts as a model a quarter its size, and its being loaded (for
    // image work) earns it no text traffic.
    let vision_model_on_text = !analysis.vision && is_vision_specialist(facts);
    let params_b = if vision_model_on_text {
        facts.params_b.map(|p| p / VISION_TEXT_DISCOUNT)
    } else {
        facts.params_b
    };
    let prior = |c: Category| prior_quality_with(params_b, c, specialised[c.index()]);
    let quality_detail = Category::ALL.map(|c| {
        let prior = prior(c).clamp(0.0, 1.5);
        let evidence = cand.profile.and_then(|p| p.quality[c.index()]);
        QualityDetail {
            prior,
            evidence,
            posterior: posterior(prior, evidence),
        }
    });
    let quality_source = if quality_detail.iter().any(|d| d.evidence.is_some()) {
        "posterior"
    } else {
        "prior"
    };
    let quality: f32 = (0..4)
        .map(|i| weights[i] * quality_detail[i].posterior)
        .sum();
    let (speed, speed_source) = match cand.profile.and_then(|p| p.tokens_per_sec) {
        Some(tps) if tps > 0.0 => (tps / (tps + 40.0), "profile"),
        _ => (prior_speed(facts), "prior"),
    };
    let loaded = if facts.loaded && !vision_model_on_text {
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
        quality_detail,
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
    prior_quality_with(
        facts.params_b,
        category,
        specialisations(facts)[category.index()],
    )
}

fn prior_quality_with(params_b: Option<f32>, category: Category, specialised: bool) -> f32 {
    let size_score = match params_b {
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

/// A vision model counts as this many times smaller for a text prompt.
const VISION_TEXT_DISCOUNT: f32 = 4.0;

/// A model built for images (its name says so, and it reads images): weaker at text than a text
/// model of its size.
fn is_vision_specialist(facts: &ModelFacts) -> bool {
    let name = facts.name.to_ascii_lowercase();
    facts.capabilities.vision
        && [
            "llava",
            "bakllava",
            "moondream",
            "vision",
            "minicpm-v",
            "-vl",
            "qwen2.5vl",
            "granite3.2-vision",
        ]
        .iter()
        .any(|w| name.contains(w))
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
        let mut value = scoring_json(&self.candidates, self.quality_weight, self.speed_weight);
        value["decision"] = json!({
            "model": self.decision.model,
            "runner_up": self.runner_up,
            "confidence": self.decision.confidence,
            "reason": self.decision.reason,
        });
        value
    }

    /// The decision, and the terms behind it (moved, not copied).
    pub fn into_parts(self) -> (RoutingDecision, Scoring) {
        (
            self.decision,
            Scoring {
                quality_weight: self.quality_weight,
                speed_weight: self.speed_weight,
                candidates: self.candidates,
            },
        )
    }
}

/// The terms behind a decision: the weights and every candidate's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub quality_weight: f32,
    pub speed_weight: f32,
    pub candidates: Vec<CandidateScore>,
}

impl Scoring {
    pub fn to_json(&self) -> Value {
        scoring_json(&self.candidates, self.quality_weight, self.speed_weight)
    }
}

/// `weights` and `candidates`, as `/admin/explain` and `/admin/decisions/{id}` show them.
fn scoring_json(candidates: &[CandidateScore], quality_weight: f32, speed_weight: f32) -> Value {
    let rendered: Vec<Value> = candidates
        .iter()
        .map(|c| {
            let mut v =
                json!({"model": c.model, "params_b": c.params_b, "eligible": c.excluded.is_none()});
            if let Some(why) = &c.excluded {
                v["excluded_because"] = json!(why);
            }
            if let Some(t) = &c.terms {
                let detail: serde_json::Map<String, Value> = Category::ALL
                    .iter()
                    .map(|c| {
                        let d = t.quality_detail[c.index()];
                        let evidence = d.evidence.map(|e| {
                            json!({
                                "passed": e.successes, "of": e.trials, "share": e.share(),
                            })
                        });
                        (
                            c.as_str().to_string(),
                            json!({
                                "prior": d.prior, "evidence": evidence, "posterior": d.posterior,
                            }),
                        )
                    })
                    .collect();
                v["terms"] = json!({
                    "quality": t.quality, "quality_source": t.quality_source,
                    "quality_by_category": detail,
                    "speed": t.speed, "speed_source": t.speed_source,
                    "loaded_bonus": t.loaded, "pinned_bonus": t.pinned, "feedback": t.feedback,
                    "size_penalty": t.size_penalty,
                    "quality_part": quality_weight * t.quality,
                    "speed_part": speed_weight * t.speed,
                });
                v["total"] = json!(t.total);
            }
            v
        })
        .collect();
    json!({
        "weights": {"quality": quality_weight, "speed": speed_weight},
        "candidates": rendered,
    })
}

/// A profile in the engine's terms: reasoning pools the reasoning and math suites' prompts; a
/// category the suites did not measure stays on the size prior.
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
    let get = |name: &str| {
        profile
            .categories
            .get(name)
            .filter(|c| c.total > 0)
            .map(|c| Evidence {
                successes: c.score * c.total as f32,
                trials: c.total as f32,
            })
    };
    let pooled = |a: Option<Evidence>, b: Option<Evidence>| match (a, b) {
        (Some(a), Some(b)) => Some(Evidence {
            successes: a.successes + b.successes,
            trials: a.trials + b.trials,
        }),
        (a, b) => a.or(b),
    };
    let mut quality = [None; 4];
    quality[Category::Coding.index()] = get("coding");
    quality[Category::Reasoning.index()] = pooled(get("reasoning"), get("math"));
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
    fn reasoning_pools_the_reasoning_and_math_prompts() {
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
        assert_eq!(
            q.quality[Category::Reasoning.index()],
            Some(Evidence {
                successes: 3.0,
                trials: 4.0
            })
        );
        assert_eq!(q.quality[Category::Coding.index()], None);
    }

    #[test]
    fn thin_equal_evidence_keeps_the_priors_order_and_strong_evidence_overrides_it() {
        let none = |n: f32| {
            Some(Evidence {
                successes: 0.0,
                trials: n,
            })
        };
        let all = |n: f32| {
            Some(Evidence {
                successes: n,
                trials: n,
            })
        };
        // Every model 0/3: the order of the priors stands.
        let priors = [0.2, 0.45, 0.7, 1.2];
        let post: Vec<f32> = priors.iter().map(|p| posterior(*p, none(3.0))).collect();
        assert!(post.windows(2).all(|w| w[0] < w[1]), "{post:?}");
        // 5/5 beats 0/5 across the widest gap of priors up to 70B (1.0).
        assert!(posterior(0.05, all(5.0)) > posterior(1.0, none(5.0)));
        // 2/3 against 1/3 moves a close pair, not a distant one.
        assert!(
            posterior(
                0.40,
                Some(Evidence {
                    successes: 2.0,
                    trials: 3.0
                })
            ) > posterior(
                0.50,
                Some(Evidence {
                    successes: 1.0,
                    trials: 3.0
                })
            )
        );
        assert!(
            posterior(
                0.20,
                Some(Evidence {
                    successes: 2.0,
                    trials: 3.0
                })
            ) < posterior(
                0.60,
                Some(Evidence {
                    successes: 1.0,
                    trials: 3.0
                })
            )
        );
        assert_eq!(posterior(0.3, None), 0.3);
        // A model past 70B that passes everything is not made worse by being measured.
        assert!(posterior(1.2, all(5.0)) >= 1.2);
    }
}
