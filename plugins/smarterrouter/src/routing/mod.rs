//! Which model serves a request. Pure: no I/O; the models on offer come in through
//! [`ModelCatalog`].
//!
//! A request naming a real model gets it (unless `router.routing.override_explicit_model`); a
//! virtual model (`smarterrouter/main`, `auto`) or no model goes through [`analysis`] (what the
//! prompt needs) and [`score`] (which capable model fits best). `router.default_model` is the
//! fallback when no model can be scored.

pub mod analysis;
pub mod classifier;
pub mod feedback;
mod keywords;
pub mod score;

use crate::error::RequestError;
use crate::model::facts::ModelFacts;
use analysis::{Category, PromptAnalysis};
use score::{Candidate, Scored, ScoringSettings};

/// The answer to "which model serves this request", with why and how sure.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingDecision {
    /// The model name to forward, as the nodes list it.
    pub model: String,
    /// Human-readable explanation.
    pub reason: String,
    /// 0..1; 1 when the client named the model.
    pub confidence: f32,
    /// The prompt's dominant category, when the router chose.
    pub category: Option<Category>,
    /// The second-best model, when the router chose.
    pub runner_up: Option<String>,
    /// The router chose the model (scored, or its fallback), rather than the client naming it.
    pub by_router: bool,
}

impl RoutingDecision {
    fn named(model: String, reason: String, confidence: f32) -> Self {
        RoutingDecision {
            model,
            reason,
            confidence,
            category: None,
            runner_up: None,
            by_router: false,
        }
    }

    fn fallback(model: String, reason: String, confidence: f32) -> Self {
        RoutingDecision {
            by_router: true,
            ..Self::named(model, reason, confidence)
        }
    }
}

/// What the routing needs to know about models on offer.
pub trait ModelCatalog {
    /// The name a node lists for `requested` (exact, or Ollama's implicit `:latest` tag).
    fn resolve(&self, requested: &str) -> Option<String>;
    /// Every model on a healthy node that can generate text, sorted.
    fn generation_models(&self) -> Vec<String>;
    /// Every model on a healthy node, sorted.
    fn all_models(&self) -> Vec<String>;
    /// Facts of the models on healthy nodes (Ollama nodes only when `ollama_only`), sorted by name.
    fn candidate_facts(&self, ollama_only: bool) -> Vec<ModelFacts>;
}

/// Why no model could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// Embeddings and `/api/show` cannot be routed: the client must name a model.
    #[error("field `model` must name a model served by a node (available: {available})")]
    ModelRequired { available: String },
    #[error("model {model:?} is not served by any node{}", crate::error::available_hint(.available))]
    ModelNotFound {
        model: String,
        available: Vec<String>,
    },
    #[error("no model is available: {0}")]
    NoModels(String),
}

impl From<RoutingError> for RequestError {
    fn from(e: RoutingError) -> Self {
        match e {
            RoutingError::ModelRequired { available } => RequestError::InvalidField {
                field: "model",
                why: format!("must name a model served by a node (available: {available})"),
            },
            RoutingError::ModelNotFound { model, available } => {
                RequestError::ModelNotFound { model, available }
            }
            RoutingError::NoModels(why) => RequestError::NoModels(why),
        }
    }
}

/// What the client asked for.
#[derive(Debug, Clone, Copy)]
pub struct ModelRequest<'a> {
    /// `?model=` on the URL: overrides the body, as in the original.
    pub query_override: Option<&'a str>,
    pub body_model: Option<&'a str>,
    /// Chat or generation, where the router may choose; embeddings and show need a named model.
    pub router_may_choose: bool,
    /// Ollama-dialect request: only models on Ollama nodes can serve it.
    pub ollama_only: bool,
}

/// Routing settings the decision reads.
#[derive(Debug, Clone, Copy)]
pub struct RoutingSettings<'a> {
    pub virtual_models: &'a [String],
    pub default_model: Option<&'a str>,
    pub scoring: &'a ScoringSettings,
    /// Route even requests that name a real model.
    pub override_explicit_model: bool,
    pub feedback: Option<&'a feedback::FeedbackIndex>,
    pub profiles: Option<&'a crate::model::ProfileBook>,
}

/// Whether `name` means "let the router choose": one of `virtual_models`, in any case, with or
/// without the `:latest` tag Ollama clients add to names that have none.
pub fn is_virtual(virtual_models: &[String], name: &str) -> bool {
    let bare = name
        .strip_suffix(":latest")
        .or_else(|| name.strip_suffix(":LATEST"))
        .unwrap_or(name);
    virtual_models
        .iter()
        .any(|v| v.eq_ignore_ascii_case(name) || v.eq_ignore_ascii_case(bare))
}

pub fn decide(
    request: ModelRequest<'_>,
    analysis: &PromptAnalysis,
    settings: RoutingSettings<'_>,
    catalog: &dyn ModelCatalog,
) -> Result<RoutingDecision, RoutingError> {
    decide_scored(request, analysis, settings, catalog).map(|(decision, _)| decision)
}

/// [`decide`], with the engine's scoring when it scored (the dashboard's breakdown of a decision).
pub fn decide_scored(
    request: ModelRequest<'_>,
    analysis: &PromptAnalysis,
    settings: RoutingSettings<'_>,
    catalog: &dyn ModelCatalog,
) -> Result<(RoutingDecision, Option<score::Scoring>), RoutingError> {
    let unscored = |decision: Result<RoutingDecision, RoutingError>| decision.map(|d| (d, None));
    let is_virtual = |m: &&str| is_virtual(settings.virtual_models, m);
    if let Some(name) = request.query_override.filter(|m| !is_virtual(m)) {
        return unscored(explicit(name, "the ?model= query parameter", catalog));
    }
    let named = request.body_model.filter(|m| !is_virtual(m));
    if let Some(name) = named {
        let reroute = settings.override_explicit_model
            && request.router_may_choose
            && catalog.resolve(name).is_some();
        if !reroute {
            return unscored(explicit(name, "the request's model field", catalog));
        }
    }
    if !request.router_may_choose {
        return Err(RoutingError::ModelRequired {
            available: preview(&catalog.all_models()),
        });
    }
    let facts = catalog.candidate_facts(request.ollama_only);
    if let Some(scored) = score_with_inputs(
        analysis,
        &facts,
        settings.scoring,
        settings.feedback,
        settings.profiles,
    ) {
        let (decision, scoring) = scored.into_parts();
        return Ok((decision, Some(scoring)));
    }
    unscored(fallback(settings, catalog))
}

/// Runs the scoring engine over model facts alone (size priors, no feedback).
pub fn score_facts(
    analysis: &PromptAnalysis,
    facts: &[ModelFacts],
    settings: &ScoringSettings,
) -> Option<Scored> {
    score_with_inputs(analysis, facts, settings, None, None)
}

/// Runs the scoring engine with measured profiles and user feedback where there are any.
pub fn score_with_inputs(
    analysis: &PromptAnalysis,
    facts: &[ModelFacts],
    settings: &ScoringSettings,
    feedback: Option<&feedback::FeedbackIndex>,
    profiles: Option<&crate::model::ProfileBook>,
) -> Option<Scored> {
    let category = analysis.dominant();
    let now = crate::model::now_unix_ms();
    let measured: Vec<Option<score::QualityProfile>> = facts
        .iter()
        .map(|f| profiles.and_then(|book| book.read(&f.name, score::quality_of)))
        .collect();
    let candidates: Vec<Candidate<'_>> = facts
        .iter()
        .zip(&measured)
        .map(|(f, profile)| Candidate {
            facts: f,
            profile: profile.as_ref(),
            feedback: feedback.map_or(0.0, |index| index.value(&f.name, category, now)),
        })
        .collect();
    score::score(analysis, &candidates, settings)
}

/// `router.default_model`, else the first model, when nothing could be scored.
fn fallback(
    settings: RoutingSettings<'_>,
    catalog: &dyn ModelCatalog,
) -> Result<RoutingDecision, RoutingError> {
    if let Some(default) = settings.default_model {
        return match catalog.resolve(default) {
            Some(model) => Ok(RoutingDecision::fallback(
                model,
                format!("no model could be scored; router.default_model ({default})"),
                0.5,
            )),
            None => Err(RoutingError::NoModels(format!(
                "router.default_model {default:?} is not offered by any healthy node (available: {}); change the setting or ROUTER_DEFAULT_MODEL",
                preview(&catalog.generation_models())
            ))),
        };
    }
    match catalog.generation_models().into_iter().next() {
        Some(model) => Ok(RoutingDecision::fallback(
            model.clone(),
            format!("no model could be scored and no router.default_model is set; first available model ({model})"),
            0.1,
        )),
        None => Err(RoutingError::NoModels(
            "no healthy node offers a model yet (see GET /health)".to_string(),
        )),
    }
}

fn explicit(
    name: &str,
    source: &str,
    catalog: &dyn ModelCatalog,
) -> Result<RoutingDecision, RoutingError> {
    match catalog.resolve(name) {
        Some(model) => Ok(RoutingDecision::named(
            model,
            format!("model {name} named by {source}"),
            1.0,
        )),
        None => Err(RoutingError::ModelNotFound {
            model: name.to_string(),
            available: catalog.all_models(),
        }),
    }
}

fn preview(models: &[String]) -> String {
    if models.is_empty() {
        return "none".to_string();
    }
    let shown: Vec<&str> = models.iter().take(5).map(String::as_str).collect();
    if models.len() > shown.len() {
        format!("{}, ...", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
