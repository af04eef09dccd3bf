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
    pub cluster_up: Option<IntGauge>,
    pub cache_shared_fills: Option<IntCounter>,
    pub cache_hits: Option<IntCounterVec>,
    pub cache_misses: Option<IntCounterVec>,
    pub cache_hit_rate: Option<Gauge>,
    pub cache_evictions: Option<IntCounter>,
    pub cache_bytes: Option<IntGauge>,
    pub vram_total_bytes: Option<Gauge>,
    pub vram_used_bytes: Option<Gauge>,
    pub vram_utilization_pct: Option<Gauge>,
    pub gpu_total_bytes: Option<GaugeVec>,
    pub gpu_used_bytes: Option<GaugeVec>,
    pub gpu_free_bytes: Option<GaugeVec>,
    pub node_vram_used_bytes: Option<GaugeVec>,
    pub model_loads: Option<IntCounter>,
    pub rate_limited: Option<IntCounter>,
    pub model_unloads: Option<IntCounterVec>,
    pub errors: Option<IntCounterVec>,
    pub model_selections: Option<IntCounterVec>,
    pub ttft: Option<HistogramVec>,
    pub tokens_per_second: Option<HistogramVec>,
    pub tokens: Option<IntCounterVec>,
    pub upstream_errors: Option<IntCounterVec>,
    pub overhead: Option<HistogramVec>,
    pub log_lines_dropped: Option<IntCounter>,
    pub decisions_not_persisted: Option<IntCounter>,
}

/// Registration fails only if a metric of the same name exists already; the router then runs
/// without that metric rather than refusing to start.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    Metrics {
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
    cluster_up: register_int_gauge!(
        "smarterrouter_cluster_up",
        "1 while the cluster's Redis answers (router.cluster.redis_url); 0 while this instance runs on its own state"
    )
    .ok(),
    cache_shared_fills: register_int_counter!(
        "smarterrouter_cache_shared_fills_total",
        "Local cache misses answered from the cluster's shared tier in Redis"
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
    vram_total_bytes: register_gauge!(
        "smarterrouter_vram_total_bytes",
        "GPU memory, bytes: this host's GPUs (NVML), else the nodes' declared totals"
    )
    .ok(),
    vram_used_bytes: register_gauge!(
        "smarterrouter_vram_used_bytes",
        "GPU memory in use, bytes (as smarterrouter_vram_total_bytes)"
    )
    .ok(),
    vram_utilization_pct: register_gauge!(
        "smarterrouter_vram_utilization_pct",
        "smarterrouter_vram_used_bytes over smarterrouter_vram_total_bytes, percent"
    )
    .ok(),
    gpu_total_bytes: register_gauge_vec!(
        "smarterrouter_gpu_total_bytes",
        "A local GPU's memory, bytes",
        &["gpu_index", "vendor"]
    )
    .ok(),
    gpu_used_bytes: register_gauge_vec!(
        "smarterrouter_gpu_used_bytes",
        "A local GPU's memory in use, bytes",
        &["gpu_index", "vendor"]
    )
    .ok(),
    gpu_free_bytes: register_gauge_vec!(
        "smarterrouter_gpu_free_bytes",
        "A local GPU's free memory, bytes",
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
    errors: register_int_counter_vec!(
        "smarterrouter_errors_total",
        "Responses with a 4xx or 5xx status, by endpoint template and type (the router's error code, or node_http_4xx / node_http_5xx for a node's own error)",
        &["endpoint", "type"]
    )
    .ok(),
    model_selections: register_int_counter_vec!(
        "smarterrouter_model_selections_total",
        "Models the router chose (scored or its fallback, not named by the client), by model and the prompt's category",
        &["model", "category"]
    )
    .ok(),
    ttft: register_histogram_vec!(
        "smarterrouter_time_to_first_token_seconds",
        "Streamed answers: from the request's arrival to the first frame from the node, by model",
        &["model"],
        vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0]
    )
    .ok(),
    tokens_per_second: register_histogram_vec!(
        "smarterrouter_output_tokens_per_second",
        "Generation speed of answers that report their output tokens, by model",
        &["model"],
        vec![1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0]
    )
    .ok(),
    tokens: register_int_counter_vec!(
        "smarterrouter_tokens_total",
        "Tokens the nodes reported (usage, eval_count), by model and type (input or output), as gen_ai.client.token.usage",
        &["model", "type"]
    )
    .ok(),
    upstream_errors: register_int_counter_vec!(
        "smarterrouter_upstream_errors_total",
        "Failures of a node: connect (refused, timed out), proxy (reset or timed out mid-request), http_5xx (its own 5xx answer)",
        &["node", "kind"]
    )
    .ok(),
    overhead: register_histogram_vec!(
        "smarterrouter_overhead_seconds",
        "Time spent in the router, not waiting for a node: until the first node attempt began (body, routing, cache lookup), or the whole request when the router answered it (cache hits, local endpoints, errors)",
        &["endpoint"],
        vec![0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0]
    )
    .ok(),
    log_lines_dropped: register_int_counter!(
        "smarterrouter_log_lines_dropped_total",
        "Log lines dropped because the log writer's buffer was full (the writer could not keep up)"
    )
    .ok(),
    decisions_not_persisted: register_int_counter!(
        "smarterrouter_store_decisions_not_persisted_total",
        "Routing decisions over the store's per-second cap: kept in memory, stored at a reload or stop"
    )
    .ok(),
    node_vram_used_bytes: register_gauge_vec!(
        "smarterrouter_node_vram_used_bytes",
        "GPU memory the models loaded on a node use (sum of /api/ps size_vram), bytes",
        &["node"]
    )
    .ok(),
}
});

/// The VRAM gauges from one sample: `current` as `(total, used)` bytes, GPUs as
/// `(index, vendor, total, used, free)`, nodes as `(url, used)`.
pub fn set_vram(
    current: Option<(u64, u64)>,
    gpus: &[(u32, &str, u64, u64, u64)],
    nodes: &[(&str, Option<u64>)],
) {
    let bytes = |b: u64| b as f64;
    if let Some((total, used)) = current {
        let set = |g: &Option<Gauge>, v: f64| {
            if let Some(g) = g {
                g.set(v)
            }
        };
        set(&METRICS.vram_total_bytes, bytes(total));
        set(&METRICS.vram_used_bytes, bytes(used));
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
            (&METRICS.gpu_total_bytes, total),
            (&METRICS.gpu_used_bytes, used),
            (&METRICS.gpu_free_bytes, free),
        ] {
            if let Some(vec) = vec {
                vec.with_label_values(&[index.as_str(), vendor])
                    .set(bytes(*value));
            }
        }
    }
    if let Some(vec) = &METRICS.node_vram_used_bytes {
        for (url, used) in nodes {
            if let Some(used) = used {
                vec.with_label_values(&[url]).set(bytes(*used));
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

pub fn cache_shared_hit() {
    if let Some(counter) = &METRICS.cache_shared_fills {
        counter.inc();
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

pub fn set_cluster_up(up: bool) {
    if let Some(gauge) = &METRICS.cluster_up {
        gauge.set(i64::from(up));
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

/// What one finished request contributes to the request series.
pub struct Finished<'a> {
    pub endpoint: &'a str,
    pub status: u16,
    pub model: &'a str,
    pub seconds: f64,
    /// The error type for a 4xx/5xx: the router's code, else the node's status class.
    pub error_type: Option<&'a str>,
    /// The router chose the model (category of the prompt).
    pub selected: Option<&'a str>,
    pub overhead_seconds: f64,
}

pub fn observe_finished(f: &Finished<'_>) {
    observe_request(f.endpoint, f.status, f.model, f.seconds);
    if let (Some(kind), Some(errors)) = (f.error_type, &METRICS.errors) {
        errors.with_label_values(&[f.endpoint, kind]).inc();
    }
    if let (Some(category), Some(selections)) = (f.selected, &METRICS.model_selections) {
        selections.with_label_values(&[f.model, category]).inc();
    }
    if let Some(overhead) = &METRICS.overhead {
        overhead
            .with_label_values(&[f.endpoint])
            .observe(f.overhead_seconds);
    }
}

/// What a node's answer reported about its generation.
pub fn observe_generation(
    model: &str,
    ttft_seconds: Option<f64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    tokens_per_second: Option<f64>,
) {
    if let (Some(t), Some(h)) = (ttft_seconds, &METRICS.ttft) {
        h.with_label_values(&[model]).observe(t);
    }
    if let Some(tokens) = &METRICS.tokens {
        if let Some(n) = input_tokens {
            tokens.with_label_values(&[model, "input"]).inc_by(n);
        }
        if let Some(n) = output_tokens {
            tokens.with_label_values(&[model, "output"]).inc_by(n);
        }
    }
    if let (Some(rate), Some(h)) = (tokens_per_second, &METRICS.tokens_per_second) {
        h.with_label_values(&[model]).observe(rate);
    }
}

/// A node failed a request: `kind` is `connect`, `proxy` or `http_5xx`.
pub fn upstream_error(node: &str, kind: &str) {
    if let Some(c) = &METRICS.upstream_errors {
        c.with_label_values(&[node, kind]).inc();
    }
}

pub fn decisions_not_persisted(n: u64) {
    if let Some(c) = &METRICS.decisions_not_persisted {
        c.inc_by(n);
    }
}

pub fn log_lines_dropped(n: u64) {
    if let Some(c) = &METRICS.log_lines_dropped {
        c.inc_by(n);
    }
}
