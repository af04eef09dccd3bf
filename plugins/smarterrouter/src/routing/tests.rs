//! Tests of `decide`: explicit models, virtual models, fallbacks.

use serde_json::json;

use super::analysis::analyse;
use super::*;
use crate::api::prompt::PromptView;

/// A catalog of names; `scored` decides whether it offers model facts to the engine.
struct Fixed {
    names: Vec<&'static str>,
    scored: bool,
}

impl ModelCatalog for Fixed {
    fn resolve(&self, requested: &str) -> Option<String> {
        let tagged = format!("{requested}:latest");
        self.names
            .iter()
            .find(|m| **m == requested || **m == tagged)
            .map(|m| m.to_string())
    }
    fn generation_models(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|m| !m.contains("embed"))
            .map(|m| m.to_string())
            .collect()
    }
    fn all_models(&self) -> Vec<String> {
        self.names.iter().map(|m| m.to_string()).collect()
    }
    fn candidate_facts(&self, _ollama_only: bool) -> Vec<ModelFacts> {
        if !self.scored {
            return Vec::new();
        }
        self.names
            .iter()
            .map(|n| ModelFacts::from_tags_entry(n, &json!({})))
            .collect()
    }
}

fn fixed(names: Vec<&'static str>) -> Fixed {
    Fixed {
        names,
        scored: false,
    }
}

fn settings<'a>(
    virtuals: &'a [String],
    default: Option<&'a str>,
    scoring: &'a ScoringSettings,
) -> RoutingSettings<'a> {
    RoutingSettings {
        virtual_models: virtuals,
        default_model: default,
        scoring,
        override_explicit_model: false,
        feedback: None,
        profiles: None,
    }
}

fn req<'a>(query: Option<&'a str>, body: Option<&'a str>) -> ModelRequest<'a> {
    ModelRequest {
        query_override: query,
        body_model: body,
        router_may_choose: true,
        ollama_only: false,
    }
}

fn hi() -> PromptAnalysis {
    analyse(&PromptView::from_prompt("hi"))
}

#[test]
fn without_facts_virtual_and_missing_models_get_the_default() {
    let catalog = fixed(vec!["a:1b", "b:7b"]);
    let virtuals = vec!["smarterrouter/main".to_string(), "auto".to_string()];
    let scoring = ScoringSettings::default();
    for body in [None, Some("smarterrouter/main"), Some("AUTO")] {
        let d = decide(
            req(None, body),
            &hi(),
            settings(&virtuals, Some("b:7b"), &scoring),
            &catalog,
        )
        .unwrap();
        assert_eq!(d.model, "b:7b");
        assert!(d.reason.contains("default_model"));
    }
}

#[test]
fn with_facts_the_engine_chooses() {
    let catalog = Fixed {
        names: vec!["small:1b", "big:70b"],
        scored: true,
    };
    let virtuals = vec!["auto".to_string()];
    let scoring = ScoringSettings::default();
    let d = decide(
        req(None, Some("auto")),
        &hi(),
        settings(&virtuals, Some("big:70b"), &scoring),
        &catalog,
    )
    .unwrap();
    assert_eq!(
        d.model, "small:1b",
        "a greeting goes to the small model: {}",
        d.reason
    );
    assert_eq!(d.runner_up.as_deref(), Some("big:70b"));
    assert!(d.confidence > 0.0 && d.confidence <= 1.0);
    assert_eq!(d.category, Some(Category::Factual));
}

#[test]
fn query_overrides_body_and_latest_tag_resolves() {
    let catalog = fixed(vec!["a:latest", "b:7b"]);
    let scoring = ScoringSettings::default();
    let d = decide(
        req(Some("a"), Some("b:7b")),
        &hi(),
        settings(&[], None, &scoring),
        &catalog,
    )
    .unwrap();
    assert_eq!(d.model, "a:latest");
    assert_eq!(d.confidence, 1.0);
}

#[test]
fn override_explicit_model_routes_named_requests() {
    let catalog = Fixed {
        names: vec!["small:1b", "big:70b"],
        scored: true,
    };
    let scoring = ScoringSettings::default();
    let mut s = settings(&[], None, &scoring);
    let d = decide(req(None, Some("big:70b")), &hi(), s, &catalog).unwrap();
    assert_eq!(d.model, "big:70b", "honoured by default");
    s.override_explicit_model = true;
    let d = decide(req(None, Some("big:70b")), &hi(), s, &catalog).unwrap();
    assert_eq!(d.model, "small:1b", "re-routed when the setting is on");
}

#[test]
fn unknown_model_is_not_found_with_the_list() {
    let catalog = fixed(vec!["a:1b"]);
    let scoring = ScoringSettings::default();
    let err = decide(
        req(None, Some("zzz")),
        &hi(),
        settings(&[], None, &scoring),
        &catalog,
    )
    .unwrap_err();
    assert_eq!(RequestError::from(err.clone()).status(), 404);
    assert!(err.to_string().contains("a:1b"));
}

#[test]
fn without_default_the_first_generation_model_is_used() {
    let catalog = fixed(vec!["all-embed", "b:7b"]);
    let scoring = ScoringSettings::default();
    let d = decide(
        req(None, None),
        &hi(),
        settings(&[], None, &scoring),
        &catalog,
    )
    .unwrap();
    assert_eq!(d.model, "b:7b");
}

#[test]
fn embeddings_need_a_named_model() {
    let catalog = fixed(vec!["e-embed"]);
    let scoring = ScoringSettings::default();
    let request = ModelRequest {
        router_may_choose: false,
        ..req(None, None)
    };
    let err = decide(request, &hi(), settings(&[], None, &scoring), &catalog).unwrap_err();
    assert_eq!(RequestError::from(err.clone()).status(), 400);
}

#[test]
fn missing_default_is_503_naming_the_setting() {
    let catalog = fixed(vec!["a:1b"]);
    let scoring = ScoringSettings::default();
    let err = decide(
        req(None, None),
        &hi(),
        settings(&[], Some("gone"), &scoring),
        &catalog,
    )
    .unwrap_err();
    assert_eq!(RequestError::from(err.clone()).status(), 503);
    assert!(err.to_string().contains("router.default_model"));
}
