//! `/admin/explain`: what the router would choose for a prompt and why, term by term, with no
//! side effects. `GET /admin/explain?prompt=...[&quality_preference=0.8]` explains a bare
//! prompt; `POST /admin/explain` takes a full chat request body (either dialect).

use serde_json::{json, Map, Value};

use crate::api::prompt::PromptView;
use crate::error::RequestError;
use crate::routing::analysis::{analyse_with, Category, PromptAnalysis};
use crate::routing::{score_with_inputs, ModelCatalog};
use crate::RouterState;

/// The explanation, or why the request cannot be explained.
pub fn explain(
    state: &RouterState,
    params: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<Value, RequestError> {
    let mut scoring = state.scoring.clone();
    if let Some(value) = params
        .iter()
        .find(|(k, _)| k == "quality_preference")
        .map(|(_, v)| v)
    {
        scoring.quality_preference = value
            .parse::<f32>()
            .ok()
            .filter(|q| (0.0..=1.0).contains(q))
            .ok_or_else(|| RequestError::InvalidField {
                field: "quality_preference",
                why: format!("{value:?} is not a number from 0 to 1"),
            })?;
    }
    let parsed: Map<String, Value>;
    let prompt_param;
    let (view, named_model) = match body.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) {
        Some(raw) => {
            let value: Value = serde_json::from_slice(raw)
                .map_err(|e| RequestError::MalformedJson(e.to_string()))?;
            parsed = match value {
                Value::Object(map) => map,
                _ => return Err(RequestError::NotAnObject),
            };
            let named = parsed
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_string);
            (PromptView::from_body(&parsed), named)
        }
        None => {
            prompt_param = params
                .iter()
                .find(|(k, _)| k == "prompt")
                .map(|(_, v)| v.clone())
                .ok_or_else(|| RequestError::InvalidField {
                    field: "prompt",
                    why: "is required: GET /admin/explain?prompt=... or POST a chat request body"
                        .to_string(),
                })?;
            (PromptView::from_prompt(&prompt_param), None)
        }
    };
    let analysis = analyse_with(&view, state.classifier.as_deref());
    let facts = state.registry.candidate_facts(false);
    let feedback = state.config.feedback.enabled.then_some(&*state.feedback);
    let scored = score_with_inputs(
        &analysis,
        &facts,
        &scoring,
        feedback,
        Some(&*state.profiles),
    );
    let named_model = named_model.filter(|m| {
        !state
            .config
            .virtual_models
            .iter()
            .any(|v| v.eq_ignore_ascii_case(m))
    });
    let honoured = named_model
        .as_deref()
        .and_then(|m| state.registry.resolve(m));
    Ok(json!({
        "analysis": analysis_json(&analysis),
        "classifier": if state.classifier.is_some() { "learned" } else { "keywords" },
        "settings": {
            "quality_preference": scoring.quality_preference,
            "prefer_smaller_models": scoring.prefer_smaller_models,
            "pinned_model": scoring.pinned_model,
            "override_explicit_model": state.config.routing.override_explicit_model,
        },
        "named_model": named_model,
        "named_model_honoured": honoured.is_some() && !state.config.routing.override_explicit_model,
        "scoring": scored.map(|s| s.to_json()),
        "models_known": facts.iter().map(|f| json!({
            "model": f.name, "params_b": f.params_b, "loaded": f.loaded,
            "nodes": nodes_of(state, &f.name),
            "profile": state.profiles.read(&f.name, crate::routing::score::quality_of).map(|p| {
                let share = |c: Category| p.quality[c.index()].map(|e| e.share());
                json!({
                    "coding": share(Category::Coding),
                    "reasoning": share(Category::Reasoning),
                    "creativity": share(Category::Creativity),
                    "factual": share(Category::Factual),
                    "tokens_per_sec": p.tokens_per_sec,
                })
            }),
            "capabilities_from": f.source.as_str(),
            "vision": f.capabilities.vision, "tools": f.capabilities.tools,
            "embedding": f.capabilities.embedding, "context_length": f.context_length,
        })).collect::<Vec<_>>(),
    }))
}

/// Where a model is: each node that lists it, whether it is loaded there now and whether that
/// node could take a request now (the scoring's `loaded` counts only those).
fn nodes_of(state: &RouterState, model: &str) -> Vec<Value> {
    state
        .registry
        .nodes()
        .iter()
        .filter(|n| n.lists(model))
        .map(|n| {
            json!({
                "url": n.url,
                "healthy": n.is_healthy(),
                "loaded": n.has_loaded(model),
                "in_flight": n.in_flight(),
                "degraded": n.degraded(),
            })
        })
        .collect()
}

pub fn analysis_json(analysis: &PromptAnalysis) -> Value {
    let categories: Map<String, Value> = Category::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), json!(analysis.score(*c))))
        .collect();
    json!({
        "categories": categories,
        "dominant": analysis.dominant().as_str(),
        "complexity": analysis.complexity,
        "difficulty": analysis.difficulty().as_str(),
        "vision": analysis.vision,
        "tools": analysis.tools,
        "json": analysis.json,
        "scanned_bytes": analysis.scanned_bytes,
        "total_bytes": analysis.total_bytes,
    })
}
