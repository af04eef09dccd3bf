//! Prometheus metrics, registered in the `prometheus` crate's default registry and rendered by
//! `/metrics`.
//! Labels are bounded: endpoint templates, status codes, and model names from the pools.

use std::sync::LazyLock;

use prometheus::{
    register_gauge, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, Encoder, Gauge, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, TextEncoder,
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
});

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
