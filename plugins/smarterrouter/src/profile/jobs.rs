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

use super::run::{self, ProfileRun, Saver};
use super::runner::{Progress, Target};
use crate::config::ProfilingConfig;
use crate::model::{ModelProfile, ProfileBook};
use crate::store::writer::StoreSender;
use crate::store::{StoreHandle, StoreStatus};
use crate::upstream::{NodeClient, Registry};

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
            created_unix_ms: crate::model::now_unix_ms(),
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

    pub(super) fn update(&self, id: &str, change: impl FnOnce(&mut JobStatus)) {
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

/// What the profiler works with (narrow handles, not the whole router state).
pub struct Profiler {
    pub registry: Arc<Registry>,
    pub client: NodeClient,
    pub store: Arc<StoreHandle>,
    pub store_tx: StoreSender,
    pub profiles: Arc<ProfileBook>,
    pub jobs: Arc<ProfileJobs>,
    pub config: ProfilingConfig,
    /// How often to look for models that need a profile (the discovery interval, at least 5 s).
    pub interval: Duration,
    /// Cluster mode: profiles measured once for the cluster, under a lease per model.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// How long one instance may hold a model's profiling lease (longer than any run should take;
/// a crashed instance's lease lapses).
const PROFILE_LEASE: Duration = Duration::from_secs(15 * 60);

#[async_trait]
impl BackgroundService for Profiler {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self.jobs.rx.lock().ok().and_then(|mut rx| rx.take());
        let Some(mut rx) = taken else {
            return;
        };
        // Existing profiles load when the store opens; profiling before that would redo them.
        tokio::select! {
            _ = shutdown.changed() => return,
            status = self.store.settled() => {
                if status == StoreStatus::Failed {
                    tracing::warn!("profiling without the store: profiles will not be saved");
                }
            }
        }
        // Give discovery a moment to find the models first.
        let mut next_auto = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                request = rx.recv() => match request {
                    Some(request) => self.run_job(&request.id, request.only.as_deref(), request.force).await,
                    None => return,
                },
                _ = tokio::time::sleep_until(next_auto), if self.config.auto => {
                    let id = format!("auto-{}", crate::model::now_unix_ms());
                    if !self.stale_targets(None, false).is_empty() {
                        self.run_job(&id, None, false).await;
                    }
                    next_auto = tokio::time::Instant::now() + self.interval;
                }
            }
        }
    }
}

impl Profiler {
    /// In cluster mode: takes the models another instance has measured already (same digest,
    /// fresh) from Redis, leaves those another instance is measuring now, and leases the rest.
    /// Returns the models to measure here and the leases held.
    async fn share_out(&self, targets: Vec<Target>, force: bool) -> (Vec<Target>, Vec<String>) {
        let Some(cluster) = self.cluster.as_ref().filter(|c| c.is_up()) else {
            return (targets, Vec::new());
        };
        let max_age_ms = self.config.max_age_hours.saturating_mul(3_600_000);
        let now = crate::model::now_unix_ms();
        let (mut mine, mut leases) = (Vec::new(), Vec::new());
        for target in targets {
            if !force {
                if let Some(profile) = cluster.profile(&target.model).await.filter(|p| {
                    p.digest == target.digest
                        && now.saturating_sub(p.profiled_unix_ms) <= max_age_ms
                }) {
                    tracing::info!(model = %target.model, "profile measured by another instance of the cluster");
                    self.profiles.insert(profile.clone());
                    self.store_tx.send(crate::store::Record::Profile(profile));
                    continue;
                }
            }
            match cluster.lease("profile", &target.model, PROFILE_LEASE).await {
                Some(false) => {
                    tracing::info!(model = %target.model, "another instance of the cluster is profiling it");
                }
                Some(true) => {
                    leases.push(target.model.clone());
                    mine.push(target);
                }
                None => mine.push(target),
            }
        }
        (mine, leases)
    }

    /// Models that need a profile: none yet, too old, or from another digest (all with `force`).
    fn stale_targets(&self, only: Option<&str>, force: bool) -> Vec<Target> {
        let (targets, _) = run::targets(&self.registry, only);
        let max_age_ms = self.config.max_age_hours.saturating_mul(3_600_000);
        let now = crate::model::now_unix_ms();
        targets
            .into_iter()
            .filter(|t| {
                force
                    || self
                        .profiles
                        .read(&t.model, |p| {
                            now.saturating_sub(p.profiled_unix_ms) > max_age_ms
                                || p.digest != t.digest
                        })
                        .unwrap_or(true)
            })
            .collect()
    }

    async fn run_job(&self, id: &str, only: Option<&str>, force: bool) {
        let jobs = &self.jobs;
        let fail = |error: String| {
            jobs.update(id, |s| {
                s.state = "failed";
                s.error = Some(error);
                s.finished_unix_ms = Some(crate::model::now_unix_ms());
            })
        };
        let per_model = match run::prompts_per_model(&self.config) {
            Ok(n) => n,
            Err(e) => return fail(e.to_string()),
        };
        let (targets, leases) = self.share_out(self.stale_targets(only, force), force).await;
        jobs.update(id, |s| {
            s.state = "running";
            s.models = targets.iter().map(|t| t.model.clone()).collect();
            s.prompts_total = per_model * targets.len();
        });
        if targets.is_empty() {
            match only {
                Some(model) if self.stale_targets(Some(model), true).is_empty() => {
                    fail(format!("no healthy node has model {model:?}"))
                }
                Some(model) => fail(format!(
                    "model {model:?} has a fresh profile; add force=true to profile it again"
                )),
                None => jobs.update(id, |s| {
                    s.state = "done";
                    s.finished_unix_ms = Some(crate::model::now_unix_ms());
                }),
            }
            return;
        }
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
        let measured = Mutex::new(Vec::new());
        let saved = |p: &ModelProfile, _: Duration| {
            if let Ok(mut m) = measured.lock() {
                m.push(p.clone());
            }
            jobs.update(id, |s| s.finished_models.push(p.model.clone()))
        };
        let saver = Saver::Queued(self.store_tx.clone());
        let run = ProfileRun {
            client: &self.client,
            config: &self.config,
            saver: &saver,
            profiles: &self.profiles,
        };
        let failures: Vec<String> = match run::run_and_save(run, targets, &report, &saved).await {
            Ok(results) => results
                .into_iter()
                .filter_map(|r| r.err().map(|e| e.to_string()))
                .collect(),
            Err(e) => vec![e.to_string()],
        };
        if let Some(cluster) = &self.cluster {
            let ttl =
                Duration::from_millis(self.config.max_age_hours.saturating_mul(3_600_000).max(1));
            for profile in measured.into_inner().unwrap_or_default() {
                cluster.share_profile(&profile, ttl).await;
            }
            for model in leases {
                cluster.release("profile", &model).await;
            }
        }
        if failures.is_empty() {
            jobs.update(id, |s| {
                s.state = "done";
                s.finished_unix_ms = Some(crate::model::now_unix_ms());
            });
        } else {
            fail(failures.join("; "));
        }
    }
}
