//! The VRAM monitor: a Pingora background service (so it starts after the process has
//! daemonised, as NVML must) that samples every `router.vram.monitor_interval_secs`: this host's
//! GPUs through NVML, and each Ollama node's `/api/ps` through the shared node client. Each
//! sample goes to the in-memory history and the gauges; one in [`STORE_EVERY`] to the store.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::gpu::{GpuReading, GpuSource, Nvml};
use super::{node_sample, Sample, VramMonitor};
use crate::config::NodeKind;
use crate::store::writer::StoreSender;
use crate::store::{Record, VramSample};
use crate::upstream::{LoadedModel, NodeClient, Registry};

/// Every this-many samples, one goes to the store (every 5 minutes at the default 30 s).
pub const STORE_EVERY: u64 = 10;

pub struct VramService {
    pub monitor: Arc<VramMonitor>,
    pub registry: Arc<Registry>,
    pub client: NodeClient,
    pub store: StoreSender,
    /// `router.routing.pinned_model`: kept loaded on every Ollama node that has it.
    pub pinned: Option<String>,
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

#[async_trait]
impl BackgroundService for VramService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if !self.monitor.enabled {
            return;
        }
        let gpus: Option<Box<dyn GpuSource>> = match Nvml::open() {
            Ok(nvml) => {
                let found = nvml.read().map(|g| g.len()).unwrap_or(0);
                tracing::info!(
                    gpus = found,
                    "VRAM monitor: reading this host's GPUs through NVML"
                );
                Some(Box::new(nvml))
            }
            Err(why) => {
                tracing::info!(
                    "VRAM monitor: no local GPU readings ({why}); using the nodes' /api/ps and their \
                     declared vram_total_gb"
                );
                self.monitor.set_gpu_note(Some(format!("off: {why}")));
                None
            }
        };
        let mut taken: u64 = 0;
        loop {
            let sample = self.sample(gpus.as_deref()).await;
            publish(&sample);
            if taken.is_multiple_of(STORE_EVERY) {
                for node in sample.nodes.iter().filter(|n| n.used_bytes.is_some()) {
                    self.store.send(Record::Vram(VramSample {
                        node: node.url.clone(),
                        unix_ms: sample.unix_ms,
                        used_bytes: node.used_bytes.unwrap_or(0),
                        models: node
                            .models
                            .iter()
                            .map(|m| (m.name.clone(), m.vram_bytes))
                            .collect(),
                    }));
                }
            }
            self.monitor.events.observe(&sample);
            self.monitor.push(sample);
            self.keep_pinned_loaded().await;
            taken += 1;
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.monitor.interval) => {}
            }
        }
    }
}

impl VramService {
    /// Loads the pinned model (`keep_alive: -1`, so Ollama never lets it expire) on each
    /// healthy Ollama node that lists it but does not have it loaded: at start, and whenever
    /// something evicted it. Room is made as for any cold model.
    async fn keep_pinned_loaded(&self) {
        let Some(pinned) = self.pinned.as_deref() else {
            return;
        };
        let client = self.client.control();
        for node in self.registry.nodes() {
            let cold = node.kind == NodeKind::Ollama
                && node.is_healthy()
                && node.lists(pinned)
                && !node.has_loaded(pinned)
                && node.state().loaded.is_some();
            if !cold {
                continue;
            }
            let needed =
                super::admission::estimate(node, pinned, None, self.monitor.default_estimate_bytes);
            let lock = self.monitor.admission_lock(node.id);
            let one_at_a_time = lock.lock().await;
            let admitted = super::admission::admit(
                node,
                pinned,
                super::admission::AdmitContext {
                    budget: self.monitor.node_budget(&node.url),
                    needed,
                    pinned: Some(pinned),
                    strategy: self.monitor.strategy,
                    usage: &self.monitor.usage,
                    events: &self.monitor.events,
                    keeping_pinned: true,
                    client,
                    group_wait: std::time::Duration::ZERO,
                    min_residency: self.monitor.min_residency,
                    cluster: self.cluster.as_deref(),
                },
            )
            .await;
            // The memory is reserved (counted as loaded): the load itself need not hold others up.
            drop(one_at_a_time);
            let loaded = match admitted {
                Ok(()) => {
                    super::admission::load_pinned(
                        node,
                        pinned,
                        self.client.generation(),
                        self.monitor.load_timeout,
                    )
                    .await
                }
                Err(why) => Err(why),
            };
            match loaded {
                Ok(()) => {
                    node.settle(pinned);
                    tracing::info!(node = %node.url, model = %pinned, "loaded the pinned model (keep_alive -1)")
                }
                Err(why) => {
                    tracing::warn!(node = %node.url, model = %pinned, "cannot load the pinned model: {why}")
                }
            }
        }
    }

    async fn sample(&self, gpus: Option<&dyn GpuSource>) -> Sample {
        let gpus: Vec<GpuReading> = match gpus.map(GpuSource::read) {
            Some(Ok(readings)) => readings,
            Some(Err(why)) => {
                tracing::warn!("VRAM monitor: {why}");
                Vec::new()
            }
            None => Vec::new(),
        };
        let reads = self.registry.nodes().iter().map(|node| {
            let client = self.client.clone();
            let node = Arc::clone(node);
            async move {
                // Asked even while discovery calls the node down: its answer is the reading.
                let loaded = match node.kind {
                    NodeKind::Ollama => client.loaded_models(&node.url).await.ok().map(|ps| {
                        let loaded = ps
                            .iter()
                            .filter_map(LoadedModel::from_ps)
                            .collect::<Vec<_>>();
                        (loaded, ps)
                    }),
                    NodeKind::Openai => None,
                };
                (node, loaded)
            }
        });
        let read = futures_util::future::join_all(reads).await;
        let read: Vec<_> = read
            .into_iter()
            .map(|(node, reading)| {
                let loaded = reading.map(|(loaded, ps)| {
                    node.set_loaded(loaded.clone(), ps);
                    loaded
                });
                (node, loaded)
            })
            .collect();
        let nodes = read
            .into_iter()
            .map(|(node, loaded)| {
                node_sample(
                    &self.monitor,
                    &node.url,
                    node.vram_total_bytes,
                    node.local,
                    &gpus,
                    loaded,
                )
            })
            .collect();
        Sample {
            unix_ms: crate::store::now_unix_ms(),
            gpus,
            nodes,
        }
    }
}

/// The VRAM gauges from a sample.
fn publish(sample: &Sample) {
    let gpus: Vec<(u32, &str, u64, u64, u64)> = sample
        .gpus
        .iter()
        .map(|g| (g.index, g.vendor, g.total_bytes, g.used_bytes, g.free_bytes))
        .collect();
    let nodes: Vec<(&str, Option<u64>)> = sample
        .nodes
        .iter()
        .map(|n| (n.url.as_str(), n.used_bytes))
        .collect();
    crate::metrics::set_vram(super::report::totals(sample), &gpus, &nodes);
}
