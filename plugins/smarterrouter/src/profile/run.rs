//! What the CLI and the router's profiling jobs share: which models to profile, and profiling
//! them (a few at a time) with each profile saved as soon as it is complete.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::judge::{Judge, JudgeError};
use super::runner::{profile_model, Progress, RunSettings, Target};
use super::suites;
use crate::config::ProfilingConfig;
use crate::model::{ModelProfile, ProfileBook};
use crate::routing::ModelCatalog;
use crate::store::writer::StoreSender;
use crate::store::{Record, Store};
use crate::upstream::{NodeClient, Registry};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Suites(String),
    #[error(transparent)]
    Judge(#[from] JudgeError),
    #[error("{0}")]
    NoTarget(String),
    #[error("{model}: {errors} of the prompts got no answer (see the progress lines); the profile was not saved")]
    Unanswered { model: String, errors: usize },
    #[error("{model}: the profile could not be saved: {why}")]
    NotSaved { model: String, why: String },
}

/// Where profiles go: straight to the store (the CLI owns it), or through the router's store
/// service (acknowledged once flushed).
pub enum Saver {
    Direct(Arc<dyn Store>),
    Queued(StoreSender),
}

impl Saver {
    async fn save(&self, profile: &ModelProfile) -> Result<(), String> {
        match self {
            Saver::Direct(store) => {
                let (store, saved) = (Arc::clone(store), profile.clone());
                tokio::task::spawn_blocking(move || store.put_profile(&saved))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            }
            Saver::Queued(tx) => tx
                .send_durable(Record::Profile(profile.clone()), Duration::from_secs(30))
                .await
                .map(|_| ()),
        }
    }
}

/// Everything a profiling run needs.
pub struct ProfileRun<'a> {
    pub client: &'a NodeClient,
    pub config: &'a ProfilingConfig,
    pub saver: &'a Saver,
    pub profiles: &'a ProfileBook,
}

/// The suites' prompts asked of each model with these settings.
pub fn prompts_per_model(config: &ProfilingConfig) -> Result<usize, ProfileError> {
    let suites = suites::all().map_err(ProfileError::Suites)?;
    Ok(suites
        .iter()
        .map(|s| s.prompts.len().min(config.prompts_per_category.max(1)))
        .sum())
}

/// Profiles `targets`, `config.concurrency` at a time; each profile is saved (and put in the
/// book) as soon as it is complete, then `saved` is told.
pub async fn run_and_save(
    run: ProfileRun<'_>,
    targets: Vec<Target>,
    progress: &(dyn Fn(Progress) + Send + Sync),
    saved: &(dyn Fn(&ModelProfile, Duration) + Send + Sync),
) -> Result<Vec<Result<ModelProfile, ProfileError>>, ProfileError> {
    let suites = suites::all().map_err(ProfileError::Suites)?;
    let judge = match run.config.judge.enabled {
        true => Some(Judge::new(run.config.judge.clone())?),
        false => None,
    };
    let settings = RunSettings {
        prompts_per_category: run.config.prompts_per_category,
        timeout: Duration::from_secs(run.config.timeout_secs),
        max_tokens: run.config.max_tokens,
    };
    let (suites, settings, judge) = (&suites, &settings, judge.as_ref());
    let results = futures_util::stream::iter(targets)
        .map(|target| async move {
            let started = Instant::now();
            tracing::info!(model = %target.model, "profiling");
            let profile =
                profile_model(run.client, &target, suites, settings, judge, progress).await;
            if !profile.is_usable() {
                return Err(ProfileError::Unanswered {
                    model: target.model.clone(),
                    errors: profile.errors,
                });
            }
            run.saver
                .save(&profile)
                .await
                .map_err(|why| ProfileError::NotSaved {
                    model: target.model.clone(),
                    why,
                })?;
            run.profiles.insert(profile.clone());
            saved(&profile, started.elapsed());
            Ok(profile)
        })
        .buffer_unordered(run.config.concurrency.max(1))
        .collect()
        .await;
    Ok(results)
}

/// The models to profile on healthy nodes (one node per model, chat models only unless `only`
/// names one), and a line per skipped node.
pub fn targets(registry: &Registry, only: Option<&str>) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for node in registry.nodes() {
        let node_state = node.state();
        if !node_state.healthy {
            skipped.push(format!(
                "skipping node {} (down: {})",
                node.url,
                node_state.last_error.as_deref().unwrap_or("no answer")
            ));
            continue;
        }
        for model in node_state.models.iter() {
            let wanted = match only {
                Some(name) => model.name == name || model.name == format!("{name}:latest"),
                None => model.facts.can_chat(),
            };
            if wanted && !targets.iter().any(|t: &Target| t.model == model.name) {
                targets.push(Target {
                    model: model.name.clone(),
                    node_url: node.url.clone(),
                    node_kind: node.kind,
                    digest: model
                        .tags_entry
                        .get("digest")
                        .and_then(|d| d.as_str())
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                });
            }
        }
    }
    (targets, skipped)
}

/// Why no model could be profiled, for the CLI.
pub fn no_target(registry: &Registry, only: Option<&str>) -> ProfileError {
    ProfileError::NoTarget(match only {
        Some(name) => format!(
            "no healthy node has model {name:?} (available: {})",
            registry.all_models().join(", ")
        ),
        None => "no healthy node offers a chat model".to_string(),
    })
}
