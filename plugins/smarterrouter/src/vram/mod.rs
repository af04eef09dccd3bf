//! GPU memory: readings of this host's GPUs (NVML, [`gpu`]) and of each Ollama node's loaded
//! models (`/api/ps`), sampled every `router.vram.monitor_interval_secs` by a Pingora
//! background service ([`service`]); the last hour in memory (bounded), a downsampled history
//! in the store; `/admin/vram` ([`report`], the original's shape plus per-node and per-GPU
//! detail), the VRAM gauges and the access log's `vram_used_gb`; [`admission`] makes room for a
//! cold model within a node's budget.
//!
//! A node's total is its declared `vram_total_gb`, or NVML's total when the node is on this host
//! (`local: true`, or a loopback address); its use is the sum of `size_vram` of the models its
//! `/api/ps` lists; its budget is `router.vram.max_total_gb` (`ROUTER_VRAM_MAX_TOTAL_GB`) or
//! 90% of its total (never a made-up default: the original fell back to 24 GB).

pub mod admission;
pub mod events;
pub mod gpu;
pub mod report;
pub mod service;

use std::collections::VecDeque;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use gpu::GpuReading;

use crate::config::VramConfig;
use crate::upstream::LoadedModel;

/// A node's share of a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSample {
    pub url: String,
    /// Declared, or NVML's for a local node; `None` when unknown.
    pub total_bytes: Option<u64>,
    pub budget_bytes: Option<u64>,
    /// Sum of `size_vram`; `None` when `/api/ps` did not answer (or the node has none).
    pub used_bytes: Option<u64>,
    pub models: Vec<LoadedModel>,
}

/// Everything read at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub unix_ms: u64,
    pub gpus: Vec<GpuReading>,
    pub nodes: Vec<NodeSample>,
}

/// The samples of the last hour, and what the report needs to know about the configuration.
pub struct VramMonitor {
    pub enabled: bool,
    pub interval: Duration,
    /// `router.vram.max_total_gb` in bytes.
    pub max_total_bytes: Option<u64>,
    samples: Mutex<VecDeque<Sample>>,
    capacity: usize,
    /// Why there are no GPU readings, once known (for `/admin/vram`).
    gpu_note: RwLock<Option<String>>,
    /// This router's use of each model on each node (for LRU and "never unload a busy model").
    pub usage: admission::UsageBook,
    /// Recent loads and unloads with their reasons.
    pub events: events::VramEvents,
    /// One admission per node at a time (by node id), so two cold models never both count on
    /// the same free memory.
    admitting: Mutex<std::collections::HashMap<usize, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    pub auto_unload: bool,
    pub strategy: crate::config::UnloadStrategy,
    pub default_estimate_bytes: u64,
    /// `router.vram.group_wait_ms`.
    pub group_wait: Duration,
    /// `router.vram.load_timeout_ms` and `degraded_secs`.
    pub load_timeout: Duration,
    pub degraded_for: Duration,
    /// `router.vram.min_residency_secs`.
    pub min_residency: Duration,
    /// `router.vram.unload_threshold_pct`, for `/admin/vram`'s warning.
    pub unload_threshold_pct: f64,
}

/// How much history stays in memory.
pub const HISTORY_KEPT: Duration = Duration::from_secs(3600);

impl VramMonitor {
    pub fn new(config: &VramConfig) -> Self {
        let interval = Duration::from_secs(config.monitor_interval_secs.max(1));
        let capacity = (HISTORY_KEPT.as_secs() / interval.as_secs()).clamp(2, 3600) as usize + 1;
        VramMonitor {
            enabled: config.enabled,
            interval,
            max_total_bytes: config.max_total_gb.map(crate::config::gb_to_bytes),
            samples: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            gpu_note: RwLock::new(None),
            usage: admission::UsageBook::default(),
            events: events::VramEvents::default(),
            admitting: Mutex::new(std::collections::HashMap::new()),
            auto_unload: config.auto_unload_enabled,
            strategy: config.unload_strategy,
            default_estimate_bytes: crate::config::gb_to_bytes(config.default_estimate_gb),
            group_wait: Duration::from_millis(config.group_wait_ms),
            load_timeout: Duration::from_millis(config.load_timeout_ms.max(1)),
            degraded_for: Duration::from_secs(config.degraded_secs),
            min_residency: Duration::from_secs(config.min_residency_secs),
            unload_threshold_pct: config.unload_threshold_pct,
        }
    }

    /// A node's budget: the configured one, or 90% of its total.
    pub fn budget(&self, total_bytes: Option<u64>) -> Option<u64> {
        self.max_total_bytes
            .or(total_bytes.map(|t| (t as f64 * 0.9).round() as u64))
    }

    pub fn push(&self, sample: Sample) {
        if let Ok(mut samples) = self.samples.lock() {
            while samples.len() >= self.capacity {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
    }

    pub fn latest(&self) -> Option<Sample> {
        self.samples.lock().ok()?.back().cloned()
    }

    /// Samples taken at or after `since_unix_ms`, oldest first.
    pub fn since(&self, since_unix_ms: u64) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|x| x.unix_ms >= since_unix_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The GB in use on the node at `url`, from the latest sample (for the access log).
    pub fn node_used_gb(&self, url: &str) -> Option<f64> {
        let samples = self.samples.lock().ok()?;
        let node = samples.back()?.nodes.iter().find(|n| n.url == url)?;
        node.used_bytes.map(report::gb)
    }

    /// The lock admissions to node `id` take.
    pub fn admission_lock(&self, id: usize) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        match self.admitting.lock() {
            Ok(mut locks) => std::sync::Arc::clone(locks.entry(id).or_default()),
            Err(_) => std::sync::Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The budget of the node at `url` at the latest sample.
    pub fn node_budget(&self, url: &str) -> Option<u64> {
        let samples = self.samples.lock().ok()?;
        samples
            .back()?
            .nodes
            .iter()
            .find(|n| n.url == url)?
            .budget_bytes
    }

    pub fn set_gpu_note(&self, note: Option<String>) {
        if let Ok(mut slot) = self.gpu_note.write() {
            *slot = note;
        }
    }

    pub fn gpu_note(&self) -> Option<String> {
        self.gpu_note.read().ok()?.clone()
    }
}

/// Builds a node's share of a sample (pure).
pub fn node_sample(
    monitor: &VramMonitor,
    url: &str,
    declared_total: Option<u64>,
    local: bool,
    gpus: &[GpuReading],
    loaded: Option<Vec<LoadedModel>>,
) -> NodeSample {
    let nvml_total = (local && !gpus.is_empty()).then(|| gpus.iter().map(|g| g.total_bytes).sum());
    let total_bytes = declared_total.or(nvml_total);
    NodeSample {
        url: url.to_string(),
        total_bytes,
        budget_bytes: monitor.budget(total_bytes),
        used_bytes: loaded
            .as_ref()
            .map(|models| models.iter().map(|m| m.vram_bytes).sum()),
        models: loaded.unwrap_or_default(),
    }
}
