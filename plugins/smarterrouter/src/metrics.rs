//! Prometheus metrics, registered in the `prometheus` crate's default registry and rendered by
//! `/metrics`.
//! Labels are bounded: endpoint templates, status codes, and model names from the pools.

use std::sync::LazyLock;

use prometheus::{
    register_gauge, register_gauge_vec, register_histogram_vec, register_int_counter,
    register_int_counter_vec, register_int_gauge, register_int_gauge_vec, Encoder, Gauge, GaugeVec,
    HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, TextEncoder,
};

pub struct Metrics {
    pub requests: Option<IntCounterVec>,
    pub duration: Option<HistogramVec>,
    pub node_up: Option<IntGaugeVec>,
    pub cache_hits: Option<IntCounterVec>,
    pub cache_misses: Option<IntCounterVec>,
    pub cache_hit_rate: Option<Gauge>,
    pub cache_evictions: Option<IntCounter>,
    pub cache_bytes: Option<IntGauge>,
    pub vram_total_gb: Option<Gauge>,
    pub vram_used_gb: Option<Gauge>,
    pub vram_utilization_pct: Option<Gauge>,
    pub gpu_total_gb: Option<GaugeVec>,
    pub gpu_used_gb: Option<GaugeVec>,
    pub gpu_free_gb: Option<GaugeVec>,
    pub node_vram_used_gb: Option<GaugeVec>,
    pub model_loads: Option<IntCounter>,
    pub rate_limited: Option<IntCounter>,
    pub model_unloads: Option<IntCounterVec>,
}

/// Registration fails only if a metric of the same name exists already; the router then runs
/// without that metric rather than refusing to start.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    requests: register_int_counter_vec!(
        "smarterrouter_requests_total",
        "Requests handled, by endpoint template, status code and model selected",
        &["endpoint", "status", "model"]
    )
    .ok(),
    duration: register_histogram_vec!(
        "smarterrouter_request_duration_seconds",
        "Time from request start to the end of the response, by endpoint template",
        &["endpoint"],
        vec![0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]
    )
    .ok(),
    node_up: register_int_gauge_vec!(
        "smarterrouter_node_up",
        "1 if the node answered its last discovery check",
        &["pool", "node"]
    )
    .ok(),
    cache_hits: register_int_counter_vec!(
        "smarterrouter_cache_hits_total",
        "Requests answered from the response cache, by kind (exact or semantic)",
        &["kind"]
    )
    .ok(),
    cache_misses: register_int_counter_vec!(
        "smarterrouter_cache_misses_total",
        "Cacheable requests the response cache could not answer, by kind",
        &["kind"]
    )
    .ok(),
    cache_hit_rate: register_gauge!(
        "smarterrouter_cache_hit_rate",
        "Hits over hits and misses of the response cache since start"
    )
    .ok(),
    cache_evictions: register_int_counter!(
        "smarterrouter_cache_evictions_total",
        "Answers dropped from the response cache to stay within its budgets"
    )
    .ok(),
    cache_bytes: register_int_gauge!(
        "smarterrouter_cache_bytes",
        "Bytes of answers held by the response cache"
    )
    .ok(),
    vram_total_gb: register_gauge!(
        "smarterrouter_vram_total_gb",
        "GPU memory, GB: this host's GPUs (NVML), else the nodes' declared totals"
    )
    .ok(),
    vram_used_gb: register_gauge!(
        "smarterrouter_vram_used_gb",
        "GPU memory in use, GB (as smarterrouter_vram_total_gb)"
    )
    .ok(),
    vram_utilization_pct: register_gauge!(
        "smarterrouter_vram_utilization_pct",
        "smarterrouter_vram_used_gb over smarterrouter_vram_total_gb, percent"
    )
    .ok(),
    gpu_total_gb: register_gauge_vec!(
        "smarterrouter_gpu_total_gb",
        "A local GPU's memory, GB",
        &["gpu_index", "vendor"]
    )
    .ok(),
    gpu_used_gb: register_gauge_vec!(
        "smarterrouter_gpu_used_gb",
        "A local GPU's memory in use, GB",
        &["gpu_index", "vendor"]
    )
    .ok(),
    gpu_free_gb: register_gauge_vec!(
        "smarterrouter_gpu_free_gb",
        "A local GPU's free memory, GB",
        &["gpu_index", "vendor"]
    )
    .ok(),
    rate_limited: register_int_counter!(
        "smarterrouter_rate_limited_total",
        "Requests refused with 429 by router.rate_limit"
    )
    .ok(),
    model_loads: register_int_counter!(
        "smarterrouter_model_loads_total",
        "Cold models admitted to a node (the request that follows loads it)"
    )
    .ok(),
    model_unloads: register_int_counter_vec!(
        "smarterrouter_model_unloads_total",
        "Models the router unloaded, by reason",
        &["reason"]
    )
    .ok(),
    node_vram_used_gb: register_gauge_vec!(
        "smarterrouter_node_vram_used_gb",
        "GPU memory the models loaded on a node use (sum of /api/ps size_vram), GB",
        &["node"]
    )
    .ok(),
});

/// The VRAM gauges from one sample: `current` as `(total, used)` bytes, GPUs as
/// `(index, vendor, total, used, free)`, nodes as `(url, used)`.
pub fn set_vram(
    current: Option<(u64, u64)>,
    gpus: &[(u32, &str, u64, u64, u64)],
    nodes: &[(&str, Option<u64>)],
) {
    let gb = |b: u64| b as f64 / 1e9;
    if let Some((total, used)) = current {
        let set = |g: &Option<Gauge>, v: f64| {
            if let Some(g) = g {
                g.set(v)
            }
        };
        set(&METRICS.vram_total_gb, gb(total));
        set(&METRICS.vram_used_gb, gb(used));
        let pct = if total == 0 {
            0.0
        } else {
            used as f64 / total as f64 * 100.0
        };
        set(&METRICS.vram_utilization_pct, pct);
    }
    for (index, vendor, total, used, free) in gpus {
        let index = index.to_string();
        for (vec, value) in [
            (&METRICS.gpu_total_gb, total),
            (&METRICS.gpu_used_gb, used),
            (&METRICS.gpu_free_gb, free),
        ] {
            if let Some(vec) = vec {
                vec.with_label_values(&[index.as_str(), vendor])
                    .set(gb(*value));
            }
        }
    }
    if let Some(vec) = &METRICS.node_vram_used_gb {
        for (url, used) in nodes {
            if let Some(used) = used {
                vec.with_label_values(&[url]).set(gb(*used));
            }
        }
    }
}

/// A cache outcome: `kind` is `None` for a request that went past the cache.
/// A request the cache looked up: a hit counts under its kind; a miss is an exact miss, and
/// also a semantic one when a semantic lookup found nothing.
pub fn observe_cache(kind: Option<&str>, hit: bool, semantic_miss: bool, hit_rate: f64) {
    let Some(kind) = kind else {
        return;
    };
    if let (true, Some(hits)) = (hit, &METRICS.cache_hits) {
        hits.with_label_values(&[kind]).inc();
    }
    if let Some(misses) = &METRICS.cache_misses {
        if !hit {
            misses.with_label_values(&["exact"]).inc();
        }
        if semantic_miss {
            misses.with_label_values(&["semantic"]).inc();
        }
    }
    if let Some(gauge) = &METRICS.cache_hit_rate {
        gauge.set(hit_rate);
    }
}

pub fn cache_evicted() {
    if let Some(counter) = &METRICS.cache_evictions {
        counter.inc();
    }
}

pub fn set_cache_bytes(bytes: usize) {
    if let Some(gauge) = &METRICS.cache_bytes {
        gauge.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

pub fn observe_request(endpoint: &str, status: u16, model: &str, seconds: f64) {
    let status = status.to_string();
    if let Some(requests) = &METRICS.requests {
        requests
            .with_label_values(&[endpoint, &status, model])
            .inc();
    }
    if let Some(duration) = &METRICS.duration {
        duration.with_label_values(&[endpoint]).observe(seconds);
    }
}

pub fn set_node_up(pool: &str, node: &str, up: bool) {
    if let Some(gauge) = &METRICS.node_up {
        gauge.with_label_values(&[pool, node]).set(i64::from(up));
    }
}

/// The text exposition of every registered metric.
pub fn render() -> Vec<u8> {
    LazyLock::force(&METRICS);
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&prometheus::gather(), &mut out) {
        out = format!("# metrics could not be encoded: {e}\n").into_bytes();
    }
    out
}

pub fn model_loaded() {
    if let Some(c) = &METRICS.model_loads {
        c.inc();
    }
}

pub fn model_unloaded(reason: &str) {
    if let Some(c) = &METRICS.model_unloads {
        c.with_label_values(&[reason]).inc();
    }
}

pub fn rate_limited() {
    if let Some(c) = &METRICS.rate_limited {
        c.inc();
    }
}
