//! Which model serves a request. Pure: no I/O; the model list comes in through [`ModelCatalog`].
//!
//! Today the choice for a virtual model (`smarterrouter/main`, `auto`) or a request without a
//! model is `router.default_model`; the prompt-scoring engine replaces that branch of [`decide`]
//! and fills the same [`RoutingDecision`].

use crate::error::RequestError;

/// The answer to "which model serves this request", with why and how sure.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingDecision {
    /// The model name to forward, as the nodes list it.
    pub model: String,
    /// Human-readable explanation.
    pub reason: String,
    /// 0..1; 1 when the client named the model.
    pub confidence: f32,
}

/// What the routing needs to know about models on offer.
pub trait ModelCatalog {
    /// The name a node lists for `requested` (exact, or Ollama's implicit `:latest` tag).
    fn resolve(&self, requested: &str) -> Option<String>;
    /// Every model on a healthy node that can generate text, sorted.
    fn generation_models(&self) -> Vec<String>;
    /// Every model on a healthy node, sorted.
    fn all_models(&self) -> Vec<String>;
}

/// What the client asked for.
#[derive(Debug, Clone, Copy)]
pub struct ModelRequest<'a> {
    /// `?model=` on the URL: overrides the body, as in the original.
    pub query_override: Option<&'a str>,
    pub body_model: Option<&'a str>,
    /// Chat or generation, where the router may choose; embeddings and show need a named model.
    pub router_may_choose: bool,
}

/// Routing settings the decision reads.
#[derive(Debug, Clone, Copy)]
pub struct RoutingSettings<'a> {
    pub virtual_models: &'a [String],
    pub default_model: Option<&'a str>,
}

pub fn decide(
    request: ModelRequest<'_>,
    settings: RoutingSettings<'_>,
    catalog: &dyn ModelCatalog,
) -> Result<RoutingDecision, RequestError> {
    if let Some(name) = request.query_override {
        return explicit(name, "the ?model= query parameter", catalog);
    }
    let named = request.body_model.filter(|m| {
        !settings
            .virtual_models
            .iter()
            .any(|v| v.eq_ignore_ascii_case(m))
    });
    if let Some(name) = named {
        return explicit(name, "the request's model field", catalog);
    }
    if !request.router_may_choose {
        return Err(RequestError::InvalidField {
            field: "model",
            why: format!(
                "must name a model served by a node (available: {})",
                preview(&catalog.all_models())
            ),
        });
    }
    if let Some(default) = settings.default_model {
        return match catalog.resolve(default) {
            Some(model) => Ok(RoutingDecision {
                model,
                reason: format!("router.default_model ({default})"),
                confidence: 0.5,
            }),
            None => Err(RequestError::NoModels(format!(
                "router.default_model {default:?} is not offered by any healthy node (available: {}); change the setting or ROUTER_DEFAULT_MODEL",
                preview(&catalog.generation_models())
            ))),
        };
    }
    match catalog.generation_models().into_iter().next() {
        Some(model) => Ok(RoutingDecision {
            reason: format!("no router.default_model set; first available model ({model})"),
            model,
            confidence: 0.1,
        }),
        None => Err(RequestError::NoModels(
            "no healthy node offers a model yet (see GET /health)".to_string(),
        )),
    }
}

fn explicit(
    name: &str,
    source: &str,
    catalog: &dyn ModelCatalog,
) -> Result<RoutingDecision, RequestError> {
    match catalog.resolve(name) {
        Some(model) => Ok(RoutingDecision {
            reason: format!("model {name} named by {source}"),
            model,
            confidence: 1.0,
        }),
        None => Err(RequestError::ModelNotFound {
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
mod tests {
    use super::*;

    struct Fixed(Vec<&'static str>);
    impl ModelCatalog for Fixed {
        fn resolve(&self, requested: &str) -> Option<String> {
            let tagged = format!("{requested}:latest");
            self.0
                .iter()
                .find(|m| **m == requested || **m == tagged)
                .map(|m| m.to_string())
        }
        fn generation_models(&self) -> Vec<String> {
            self.0
                .iter()
                .filter(|m| !m.contains("embed"))
                .map(|m| m.to_string())
                .collect()
        }
        fn all_models(&self) -> Vec<String> {
            self.0.iter().map(|m| m.to_string()).collect()
        }
    }

    fn settings<'a>(virtuals: &'a [String], default: Option<&'a str>) -> RoutingSettings<'a> {
        RoutingSettings {
            virtual_models: virtuals,
            default_model: default,
        }
    }

    fn req<'a>(query: Option<&'a str>, body: Option<&'a str>) -> ModelRequest<'a> {
        ModelRequest {
            query_override: query,
            body_model: body,
            router_may_choose: true,
        }
    }

    #[test]
    fn virtual_and_missing_models_get_the_default() {
        let catalog = Fixed(vec!["a:1b", "b:7b"]);
        let virtuals = vec!["smarterrouter/main".to_string(), "auto".to_string()];
        for body in [None, Some("smarterrouter/main"), Some("AUTO")] {
            let d = decide(req(None, body), settings(&virtuals, Some("b:7b")), &catalog).unwrap();
            assert_eq!(d.model, "b:7b");
            assert!(d.reason.contains("default_model"));
        }
    }

    #[test]
    fn query_overrides_body_and_latest_tag_resolves() {
        let catalog = Fixed(vec!["a:latest", "b:7b"]);
        let d = decide(req(Some("a"), Some("b:7b")), settings(&[], None), &catalog).unwrap();
        assert_eq!(d.model, "a:latest");
        assert_eq!(d.confidence, 1.0);
    }

    #[test]
    fn unknown_model_is_not_found_with_the_list() {
        let catalog = Fixed(vec!["a:1b"]);
        let err = decide(req(None, Some("zzz")), settings(&[], None), &catalog).unwrap_err();
        assert_eq!(err.status(), 404);
        assert!(err.to_string().contains("a:1b"));
    }

    #[test]
    fn without_default_the_first_generation_model_is_used() {
        let catalog = Fixed(vec!["all-embed", "b:7b"]);
        let d = decide(req(None, None), settings(&[], None), &catalog).unwrap();
        assert_eq!(d.model, "b:7b");
    }

    #[test]
    fn embeddings_need_a_named_model() {
        let catalog = Fixed(vec!["e-embed"]);
        let request = ModelRequest {
            query_override: None,
            body_model: None,
            router_may_choose: false,
        };
        let err = decide(request, settings(&[], None), &catalog).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn missing_default_is_503_naming_the_setting() {
        let catalog = Fixed(vec!["a:1b"]);
        let err = decide(req(None, None), settings(&[], Some("gone")), &catalog).unwrap_err();
        assert_eq!(err.status(), 503);
        assert!(err.to_string().contains("router.default_model"));
    }
}
