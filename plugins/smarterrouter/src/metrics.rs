//! Prometheus metrics, registered in the `prometheus` crate's default registry and rendered by
//! `/metrics`.
//! Labels are bounded: endpoint templates, status codes, and model names from the pools.

use std::sync::LazyLock;

use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge_vec, Encoder,
    HistogramVec, IntCounterVec, IntGaugeVec, TextEncoder,
};

pub struct Metrics {
    pub requests: Option<IntCounterVec>,
    pub duration: Option<HistogramVec>,
    pub node_up: Option<IntGaugeVec>,
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
});

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
