//! Profiling in the router process: a background service that profiles models with no profile,
//! a stale one (older than `router.profiling.max_age_hours`) or one taken from another digest, at
//! start and whenever discovery finds such a model; plus the jobs behind `POST /admin/reprofile`
//! (which answers at once with a job id) and `GET /admin/reprofile/{id}` (progress).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Serialize;
use tokio::sync::mpsc;

use super::runner::{profile_model, Progress, RunSettings, Target};
use super::suites;
use crate::RouterState;

/// Job statuses kept for `/admin/reprofile/{id}`.
const MAX_JOBS: usize = 200;
/// Prompt lines kept per job (the oldest go first; `progress_skipped` counts them).
const MAX_PROGRESS_LINES: usize = 2000;

/// A profiling job as `/admin/reprofile/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub id: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: &'static str,
    /// `admin` or `automatic`.
    pub trigger: &'static str,
    pub models: Vec<String>,
    pub prompts_done: usize,
    pub prompts_total: usize,
    pub finished_models: Vec<String>,
    pub error: Option<String>,
    pub created_unix_ms: u64,
    pub finished_unix_ms: Option<u64>,
    /// Each graded prompt, in order (what `smarterrouter profile` prints as its progress).
    pub progress: Vec<Progress>,
    /// Lines dropped from the front of `progress` to keep it bounded.
    pub progress_skipped: usize,
}

#[derive(Debug)]
struct JobRequest {
    id: String,
    only: Option<String>,
    force: bool,
}

impl JobStatus {
    fn new(id: &str, trigger: &'static str) -> Self {
        JobStatus {
            id: id.to_string(),
            state: "queued",
            trigger,
            models: Vec::new(),
            prompts_done: 0,
            prompts_total: 0,
            finished_models: Vec::new(),
            error: None,
            created_unix_ms: crate::store::now_unix_ms(),
            finished_unix_ms: None,
            progress: Vec::new(),
            progress_skipped: 0,
        }
    }
}

/// Job registry shared by the admin endpoints and the background service.
pub struct ProfileJobs {
    statuses: Mutex<HashMap<String, JobStatus>>,
    tx: mpsc::UnboundedSender<JobRequest>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<JobRequest>>>,
}

impl Default for ProfileJobs {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        ProfileJobs {
            statuses: Mutex::new(HashMap::new()),
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl ProfileJobs {
    /// Queues a job and returns its status at once.
    pub fn submit(&self, only: Option<String>, force: bool) -> JobStatus {
        let id = format!("job-{}", uuid::Uuid::new_v4().simple());
        let status = JobStatus {
            models: only.clone().into_iter().collect(),
            ..JobStatus::new(&id, "admin")
        };
        self.update(&id, |s| *s = status.clone());
        if self.tx.send(JobRequest { id, only, force }).is_err() {
            self.update(&status.id, |s| {
                s.state = "failed";
                s.error = Some("the profiler is not running".to_string());
            });
        }
        status
    }

    pub fn status(&self, id: &str) -> Option<JobStatus> {
        self.statuses.lock().ok()?.get(id).cloned()
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut JobStatus)) {
        if let Ok(mut statuses) = self.statuses.lock() {
            // Keep the newest jobs only; finished ones go first.
            if statuses.len() >= MAX_JOBS && !statuses.contains_key(id) {
                let oldest = statuses
                    .values()
                    .filter(|s| s.finished_unix_ms.is_some())
                    .min_by_key(|s| s.created_unix_ms)
                    .map(|s| s.id.clone());
                if let Some(oldest) = oldest {
                    statuses.remove(&oldest);
                }
            }
            let entry = statuses
                .entry(id.to_string())
                .or_insert_with(|| JobStatus::new(id, "automatic"));
            change(entry);
        }
    }
}

/// The Pingora background service running profiles.
pub struct Profiler {
    pub state: Arc<RouterState>,
}

#[async_trait]
impl BackgroundService for Profiler {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self.state.jobs.rx.lock().ok().and_then(|mut rx| rx.take());
        let Some(mut rx) = taken else {
            return;
        };
        // Existing profiles load when the store opens; profiling before that would redo them.
        tokio::select! {
            _ = shutdown.changed() => return,
            status = self.state.store.settled() => {
                if status == crate::store::StoreStatus::Failed {
                    tracing::warn!("profiling without the store: profiles will not be saved");
                }
            }
        }
        let interval = Duration::from_secs(self.state.config.discovery.interval_secs.max(5));
        // Give discovery a moment to find the models first.
        let mut next_auto = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                request = rx.recv() => match request {
                    Some(request) => self.run_job(&request.id, request.only.as_deref(), request.force).await,
                    None => return,
                },
                _ = tokio::time::sleep_until(next_auto), if self.state.config.profiling.auto => {
                    let id = format!("auto-{}", crate::store::now_unix_ms());
                    if !self.stale_targets(None, false).is_empty() {
                        self.run_job(&id, None, false).await;
                    }
                    next_auto = tokio::time::Instant::now() + interval;
                }
            }
        }
    }
}

impl Profiler {
    /// Models that need a profile: none yet, too old, or from another digest (all with `force`).
    fn stale_targets(&self, only: Option<&str>, force: bool) -> Vec<Target> {
        let (targets, _) = super::cli::targets(&self.state, only);
        let max_age_ms = self
            .state
            .config
            .profiling
            .max_age_hours
            .saturating_mul(3_600_000);
        let now = crate::store::now_unix_ms();
        targets
            .into_iter()
            .filter(|t| {
                force
                    || match self.state.profiles.get(&t.model) {
                        None => true,
                        Some(p) => {
                            now.saturating_sub(p.profiled_unix_ms) > max_age_ms
                                || p.digest != t.digest
                        }
                    }
            })
            .collect()
    }

    async fn run_job(&self, id: &str, only: Option<&str>, force: bool) {
        let jobs = &self.state.jobs;
        let targets = self.stale_targets(only, force);
        let suites = match suites::all() {
            Ok(s) => s,
            Err(e) => {
                jobs.update(id, |s| {
                    s.state = "failed";
                    s.error = Some(e);
                });
                return;
            }
        };
        let config = &self.state.config.profiling;
        let settings = RunSettings {
            prompts_per_category: config.prompts_per_category,
            timeout: Duration::from_secs(config.timeout_secs),
            max_tokens: config.max_tokens,
        };
        let per_model: usize = suites
            .iter()
            .map(|s| s.prompts.len().min(settings.prompts_per_category.max(1)))
            .sum();
        jobs.update(id, |s| {
            s.state = "running";
            s.models = targets.iter().map(|t| t.model.clone()).collect();
            s.prompts_total = per_model * targets.len();
        });
        if targets.is_empty() {
            let why = only.map(|model| {
                if self.stale_targets(Some(model), true).is_empty() {
                    format!("no healthy node has model {model:?}")
                } else {
                    format!(
                        "model {model:?} has a fresh profile; add force=true to profile it again"
                    )
                }
            });
            jobs.update(id, |s| {
                s.state = if why.is_some() { "failed" } else { "done" };
                s.error = why;
                s.finished_unix_ms = Some(crate::store::now_unix_ms());
            });
            return;
        }
        let client = match reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                jobs.update(id, |s| {
                    s.state = "failed";
                    s.error = Some(e.to_string());
                });
                return;
            }
        };
        let judge = if config.judge.enabled {
            match super::judge::Judge::new(config.judge.clone()) {
                Ok(judge) => Some(judge),
                Err(e) => {
                    jobs.update(id, |s| {
                        s.state = "failed";
                        s.error = Some(e);
                    });
                    return;
                }
            }
        } else {
            None
        };
        let report = |p: Progress| {
            jobs.update(id, |s| {
                s.prompts_done += 1;
                s.progress.push(p);
                if s.progress.len() > MAX_PROGRESS_LINES {
                    s.progress.remove(0);
                    s.progress_skipped += 1;
                }
            })
        };
        let sem = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
        let runs = targets.iter().map(|target| {
            let (client, suites, settings, sem, report, judge) = (
                &client,
                &suites,
                &settings,
                Arc::clone(&sem),
                &report,
                judge.as_ref(),
            );
            async move {
                let _permit = sem.acquire().await.map_err(|e| e.to_string())?;
                tracing::info!(model = %target.model, "profiling");
                let profile = profile_model(client, target, suites, settings, judge, report).await;
                if !profile.is_usable() {
                    return Err(format!(
                        "{}: most prompts got no answer; not saved",
                        target.model
                    ));
                }
                // Saved (and flushed) as soon as it is complete, like the CLI does.
                self.state
                    .store_tx
                    .send_durable(
                        crate::store::Record::Profile(profile.clone()),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|e| format!("{}: not saved: {e}", profile.model))?;
                jobs.update(id, |s| s.finished_models.push(profile.model.clone()));
                self.state.profiles.insert(profile);
                Ok(())
            }
        });
        let results: Vec<Result<(), String>> = futures_util::future::join_all(runs).await;
        let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        let error = (!failures.is_empty()).then(|| failures.join("; "));
        jobs.update(id, |s| {
            s.state = if error.is_some() { "failed" } else { "done" };
            s.error = error;
            s.finished_unix_ms = Some(crate::store::now_unix_ms());
        });
    }
}
