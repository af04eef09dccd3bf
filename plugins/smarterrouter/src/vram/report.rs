//! `GET /admin/vram[?history_minutes=N]`: the original SmarterRouter's shape, key for key
//! (`current`, `budget`, `models_loaded`, `history`, `warnings`), so existing dashboards and `jq`
//! scripts keep working, plus `nodes[]` and `gpus[]`. Pure: built from samples.
//!
//! - `current`: this host's GPUs when NVML sees any, else the nodes whose total is known
//!   (declared `vram_total_gb`); `null` before the first sample or when no total is known.
//! - `budget`: `max_configured_gb` is the sum of the nodes' budgets, `headroom_gb` what the
//!   budgets keep free of the totals, `allocated_gb` the loaded models' `size_vram`,
//!   `available_gb` budget minus allocated, `utilization_pct` allocated over budget.
//! - `warnings`: the original's strings and thresholds (75/85/95%) on `current.utilization_pct`,
//!   and its auto-unload line at `router.vram.unload_threshold_pct` when auto-unload is on.
//! - `history[]` adds (ours) `nodes` (GB used per node URL) and `gpus` (used and total per GPU).
//! - `events` (ours): the window's model loads and unloads, newest first, each with its node and
//!   reason (an admission's, the pinned model's, or a change seen only in `/api/ps`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Sample, VramMonitor};

pub const DEFAULT_HISTORY_MINUTES: u64 = 10;

/// Bytes to GB (10^9), as the original reports them.
pub fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// `(total, used)` of a sample as `current` reports it.
pub fn totals(sample: &Sample) -> Option<(u64, u64)> {
    if !sample.gpus.is_empty() {
        let total = sample.gpus.iter().map(|g| g.total_bytes).sum();
        let used = sample.gpus.iter().map(|g| g.used_bytes).sum();
        return Some((total, used));
    }
    let known: Vec<_> = sample
        .nodes
        .iter()
        .filter_map(|n| n.total_bytes.map(|t| (t, n.used_bytes.unwrap_or(0))))
        .collect();
    if known.is_empty() {
        return None;
    }
    Some(
        known
            .iter()
            .fold((0, 0), |(t, u), (nt, nu)| (t + nt, u + nu)),
    )
}

fn utilization(total: u64, used: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        round(used as f64 / total as f64 * 100.0, 1)
    }
}

/// The original's warnings for a utilisation.
pub fn warnings(utilization_pct: Option<f64>) -> Vec<String> {
    match utilization_pct {
        Some(u) if u > 95.0 => {
            vec!["CRITICAL: VRAM > 95% - immediate unload recommended".to_string()]
        }
        Some(u) if u > 85.0 => vec!["WARNING: VRAM > 85% - consider unloading models".to_string()],
        Some(u) if u > 75.0 => vec!["NOTICE: VRAM > 75% - monitor usage".to_string()],
        _ => Vec::new(),
    }
}

/// At most `points` of `samples`, evenly spaced, the newest always kept.
pub fn thin(samples: Vec<Sample>, points: usize) -> Vec<Sample> {
    let points = points.max(1);
    if samples.len() <= points {
        return samples;
    }
    let step = samples.len().div_ceil(points);
    let last = samples.len() - 1;
    samples
        .into_iter()
        .enumerate()
        .filter(|(i, _)| (last - i).is_multiple_of(step))
        .map(|(_, s)| s)
        .collect()
}

/// The whole answer. `history` holds the samples of the window asked for, oldest first;
/// `events` the loads and unloads of that window, newest first.
pub fn admin_vram(
    monitor: &VramMonitor,
    latest: Option<&Sample>,
    history: &[Sample],
    events: Vec<Value>,
) -> Value {
    if !monitor.enabled {
        return json!({"error": "VRAM monitoring not enabled"});
    }
    let current = latest.and_then(|s| totals(s).map(|t| (s, t)));
    let current_json = current.map(|(s, (total, used))| {
        json!({
            "total_gb": round(gb(total), 2),
            "used_gb": round(gb(used), 2),
            "free_gb": round(gb(total.saturating_sub(used)), 2),
            "utilization_pct": utilization(total, used),
            "timestamp": s.unix_ms as f64 / 1000.0,
        })
    });
    let nodes = latest.map(|s| s.nodes.as_slice()).unwrap_or_default();
    let budget: Option<u64> = nodes
        .iter()
        .filter_map(|n| n.budget_bytes)
        .reduce(|a, b| a + b);
    let total_known: u64 = nodes
        .iter()
        .filter(|n| n.budget_bytes.is_some())
        .filter_map(|n| n.total_bytes)
        .sum();
    let allocated: u64 = nodes.iter().filter_map(|n| n.used_bytes).sum();
    let mut models_loaded: BTreeMap<String, f64> = BTreeMap::new();
    for model in nodes.iter().flat_map(|n| &n.models) {
        *models_loaded.entry(model.name.clone()).or_default() += gb(model.vram_bytes);
    }
    let models_loaded: serde_json::Map<String, Value> = models_loaded
        .into_iter()
        .map(|(name, g)| (name, json!(round(g, 2))))
        .collect();
    let history: Vec<Value> = history
        .iter()
        .map(|s| {
            let (total, used) =
                totals(s).unwrap_or((0, s.nodes.iter().filter_map(|n| n.used_bytes).sum()));
            let mut models: Vec<&str> = s
                .nodes
                .iter()
                .flat_map(|n| n.models.iter().map(|m| m.name.as_str()))
                .collect();
            models.sort_unstable();
            models.dedup();
            let per_node: serde_json::Map<String, Value> = s
                .nodes
                .iter()
                .map(|n| (n.url.clone(), json!(n.used_bytes.map(|u| round(gb(u), 2)))))
                .collect();
            json!({
                "timestamp": s.unix_ms as f64 / 1000.0,
                "used_gb": round(gb(used), 2),
                "util_pct": utilization(total, used),
                "models": models,
                "nodes": per_node,
                "gpus": s.gpus.iter().map(|g| json!({
                    "index": g.index,
                    "used_gb": round(gb(g.used_bytes), 2),
                    "total_gb": round(gb(g.total_bytes), 2),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let utilization_pct = current.map(|(_, (total, used))| utilization(total, used));
    json!({
        "current": current_json,
        "budget": {
            "max_configured_gb": budget.map(|b| round(gb(b), 2)),
            "headroom_gb": budget.map(|b| round(gb(total_known.saturating_sub(b)), 2)),
            "available_gb": budget.map(|b| round(gb(b.saturating_sub(allocated)), 2)),
            "allocated_gb": round(gb(allocated), 2),
            "utilization_pct": budget.map(|b| utilization(b, allocated)),
        },
        "models_loaded": models_loaded,
        "history": history,
        "warnings": warnings(utilization_pct).into_iter().chain(
            utilization_pct
                .filter(|u| monitor.auto_unload && *u >= monitor.unload_threshold_pct)
                .map(|_| format!("Auto-unload threshold ({:.1}%) reached or exceeded", monitor.unload_threshold_pct)),
        ).collect::<Vec<_>>(),
        "nodes": nodes.iter().map(|n| json!({
            "url": n.url,
            "total_gb": n.total_bytes.map(|t| round(gb(t), 2)),
            "budget_gb": n.budget_bytes.map(|b| round(gb(b), 2)),
            "used_gb": n.used_bytes.map(|u| round(gb(u), 2)),
            "models": n.models.iter().map(|m| json!({
                "name": m.name,
                "size_gb": round(gb(m.size_bytes), 2),
                "vram_gb": round(gb(m.vram_bytes), 2),
                "expires_at": m.expires_at,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "gpus": latest.map(|s| s.gpus.as_slice()).unwrap_or_default().iter().map(|g| json!({
            "index": g.index,
            "name": g.name,
            "vendor": g.vendor,
            "total_gb": round(gb(g.total_bytes), 2),
            "used_gb": round(gb(g.used_bytes), 2),
            "free_gb": round(gb(g.free_bytes), 2),
        })).collect::<Vec<_>>(),
        "gpu_monitoring": monitor.gpu_note().unwrap_or_else(|| "NVML".to_string()),
        "events": events,
    })
}

#[cfg(test)]
mod tests {
    use super::super::gpu::GpuReading;
    use super::super::{node_sample, VramMonitor};
    use super::*;
    use crate::config::VramConfig;
    use crate::upstream::LoadedModel;

    fn loaded(name: &str, gb: u64) -> LoadedModel {
        LoadedModel {
            name: name.into(),
            size_bytes: gb * 1_000_000_000,
            vram_bytes: gb * 1_000_000_000,
            expires_at: Some("2026-12-02T15:00:00Z".into()),
        }
    }

    fn gpu(total: u64, used: u64) -> GpuReading {
        GpuReading {
            index: 0,
            name: "Fake GPU".into(),
            vendor: "nvidia",
            total_bytes: total * 1_000_000_000,
            used_bytes: used * 1_000_000_000,
            free_bytes: (total - used) * 1_000_000_000,
        }
    }

    #[test]
    fn the_shape_and_figures_follow_the_original() {
        let monitor = VramMonitor::new(&VramConfig::default());
        let gpus = vec![gpu(24, 21)];
        let node = node_sample(
            &monitor,
            "http://127.0.0.1:11434",
            None,
            true,
            &gpus,
            Some(vec![loaded("a", 8), loaded("b", 4)]),
        );
        assert_eq!(
            node.total_bytes,
            Some(24_000_000_000),
            "a local node takes NVML's total"
        );
        assert_eq!(node.budget_bytes, Some(21_600_000_000), "90% of it");
        let sample = Sample {
            unix_ms: 1_000_000,
            gpus,
            nodes: vec![node],
        };
        let v = admin_vram(
            &monitor,
            Some(&sample),
            std::slice::from_ref(&sample),
            Vec::new(),
        );
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "current",
            "budget",
            "models_loaded",
            "history",
            "warnings",
            "nodes",
            "gpus",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        assert_eq!(v["current"]["total_gb"], 24.0);
        assert_eq!(v["current"]["used_gb"], 21.0);
        assert_eq!(v["current"]["free_gb"], 3.0);
        assert_eq!(v["current"]["utilization_pct"], 87.5);
        assert_eq!(v["budget"]["max_configured_gb"], 21.6);
        assert_eq!(v["budget"]["allocated_gb"], 12.0);
        assert_eq!(v["budget"]["available_gb"], 9.6);
        assert_eq!(v["budget"]["headroom_gb"], 2.4);
        assert_eq!(v["models_loaded"]["a"], 8.0);
        assert_eq!(v["history"][0]["models"], json!(["a", "b"]));
        assert_eq!(v["history"][0]["nodes"]["http://127.0.0.1:11434"], 12.0);
        assert_eq!(v["history"][0]["gpus"][0]["used_gb"], 21.0);
        assert_eq!(
            v["warnings"],
            json!([
                "WARNING: VRAM > 85% - consider unloading models",
                "Auto-unload threshold (85.0%) reached or exceeded"
            ])
        );
        assert_eq!(v["gpus"][0]["name"], "Fake GPU");
    }

    #[test]
    fn thinning_keeps_at_most_the_points_asked_for_and_the_newest() {
        let samples: Vec<Sample> = (0..3600)
            .map(|i| Sample {
                unix_ms: i,
                gpus: Vec::new(),
                nodes: Vec::new(),
            })
            .collect();
        let thinned = thin(samples.clone(), 400);
        assert!(
            thinned.len() <= 400 && thinned.len() >= 390,
            "{}",
            thinned.len()
        );
        assert_eq!(thinned.last().unwrap().unix_ms, 3599);
        assert!(thinned.windows(2).all(|w| w[1].unix_ms - w[0].unix_ms == 9));
        assert_eq!(thin(samples[..10].to_vec(), 400).len(), 10);
    }

    #[test]
    fn warnings_at_each_threshold_and_disabled_monitoring() {
        assert!(warnings(Some(75.0)).is_empty());
        assert!(warnings(Some(75.1))[0].starts_with("NOTICE"));
        assert!(warnings(Some(96.0))[0].starts_with("CRITICAL"));
        assert!(warnings(None).is_empty());
        let off = VramMonitor::new(&VramConfig {
            enabled: false,
            ..VramConfig::default()
        });
        assert_eq!(
            admin_vram(&off, None, &[], Vec::new()),
            json!({"error": "VRAM monitoring not enabled"})
        );
        let on = VramMonitor::new(&VramConfig::default());
        assert_eq!(
            admin_vram(&on, None, &[], Vec::new())["current"],
            Value::Null,
            "before the first sample"
        );
    }
}
