//! GPU memory readings: `/admin/vram` in the original's shape (plus nodes and GPUs) from the
//! mock's `/api/ps` and the node's declared total, the gauges, the access log's `vram_used_gb`,
//! and the no-NVML path for real (this machine has no NVIDIA library).

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

/// A router whose one node declares `vram_total_gb: 4`, sampling every second.
async fn start(mock: &MockOllama, env: Vec<(String, String)>) -> RouterProcess {
    RouterProcess::start(RouterOptions {
        extra: format!(
            "  default_model: llama3.2:1b\n  pools:\n    - name: gpu\n      nodes:\n        - url: {}\n          vram_total_gb: 4\n",
            mock.url()
        ),
        env: [vec![("ROUTER_VRAM_MONITOR_INTERVAL".to_string(), "1".to_string())], env].concat(),
        ..RouterOptions::new(Vec::new())
    })
    .await
}

async fn vram_until(router: &RouterProcess, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = get_json(format!("{}/admin/vram", router.admin_url())).await;
        if check(&v) || std::time::Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_vram_reports_the_nodes_loaded_models_in_the_originals_shape() {
    let mock = default_mock().await;
    let router = start(&mock, Vec::new()).await;
    // The mock reports its first model loaded, size_vram = its size.
    let loaded_gb = mock.state.config.models[0].size as f64 / 1e9;
    let v = vram_until(&router, |v| {
        v["history"].as_array().is_some_and(|h| h.len() >= 2)
    })
    .await;
    // The original's keys, in its order, then ours.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys[..5],
        ["current", "budget", "models_loaded", "history", "warnings"],
        "{v}"
    );
    for key in [
        "total_gb",
        "used_gb",
        "free_gb",
        "utilization_pct",
        "timestamp",
    ] {
        assert!(v["current"][key].is_number(), "current.{key}: {v}");
    }
    for key in [
        "max_configured_gb",
        "headroom_gb",
        "available_gb",
        "allocated_gb",
        "utilization_pct",
    ] {
        assert!(v["budget"][key].is_number(), "budget.{key}: {v}");
    }
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    assert_eq!(
        v["current"]["total_gb"], 4.0,
        "the declared total (no NVML here)"
    );
    assert_eq!(v["current"]["used_gb"], round2(loaded_gb));
    assert_eq!(
        v["budget"]["max_configured_gb"], 3.6,
        "90% of the total by default"
    );
    assert_eq!(v["models_loaded"]["llama3.2:1b"], round2(loaded_gb));
    let first = &v["history"][0];
    for key in ["timestamp", "used_gb", "util_pct", "models"] {
        assert!(!first[key].is_null(), "history[].{key}: {v}");
    }
    assert_eq!(first["models"], serde_json::json!(["llama3.2:1b"]));
    assert!(v["warnings"].is_array());
    assert_eq!(v["nodes"][0]["url"], mock.url());
    assert_eq!(
        v["nodes"][0]["models"][0]["expires_at"],
        "2026-11-27T10:05:00Z"
    );
    assert_eq!(v["gpus"], serde_json::json!([]));
    assert!(
        v["gpu_monitoring"]
            .as_str()
            .unwrap()
            .contains("NVML is not available"),
        "{v}"
    );
    assert!(mock.state.count("/api/ps") >= 2, "sampled through /api/ps");
    let logs = router.logs();
    assert_eq!(
        logs.matches("VRAM monitor: no local GPU readings").count(),
        1,
        "one clear line at start: {logs}"
    );

    // history_minutes=0 is an empty window; a bad value is a clear 400.
    let none = get_json(format!(
        "{}/admin/vram?history_minutes=0",
        router.admin_url()
    ))
    .await;
    assert!(none["history"].as_array().unwrap().len() <= 1, "{none}");
    let bad = client()
        .get(format!(
            "{}/admin/vram?history_minutes=ten",
            router.admin_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("history_minutes"));
    // Admin-only: the proxy port refuses without an admin key.
    let proxied = client()
        .get(format!("{}/admin/vram", router.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 403);

    let metrics = get_text(format!("{}/metrics", router.url())).await;
    for line in [
        "smarterrouter_vram_total_gb 4".to_string(),
        format!(
            "smarterrouter_node_vram_used_gb{{node=\"{}\"}} {}",
            mock.url(),
            loaded_gb
        ),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.contains("smarterrouter_vram_utilization_pct "),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_carries_the_serving_nodes_vram() {
    let mock = default_mock().await;
    let router = start(&mock, vec![("ROUTER_LOG_FORMAT".into(), "json".into())]).await;
    vram_until(&router, |v| !v["current"].is_null()).await;
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .header("x-request-id", "vram-log-1")
        .json(&chat_body("llama3.2:1b", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let expected = (mock.state.config.models[0].size as f64 / 1e9 * 100.0).round() / 100.0;
    let found = eventually(5, || {
        router.logs().lines().any(|l| {
            l.contains("vram-log-1")
                && serde_json::from_str::<Value>(l)
                    .is_ok_and(|v| v["vram_used_gb"].as_f64() == Some(expected))
        })
    })
    .await;
    assert!(found, "vram_used_gb {expected} in:\n{}", router.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_monitoring_answers_as_the_original() {
    let mock = default_mock().await;
    let router = start(
        &mock,
        vec![("ROUTER_VRAM_MONITOR_ENABLED".into(), "false".into())],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let v = get_json(format!("{}/admin/vram", router.admin_url())).await;
    assert_eq!(
        v,
        serde_json::json!({"error": "VRAM monitoring not enabled"})
    );
    assert_eq!(
        mock.state.count("/api/ps"),
        mock.state.count("/api/tags"),
        "only discovery asks /api/ps"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_go_to_the_node_where_their_model_is_loaded() {
    // Each mock reports its first model loaded: llama on A, qwen on B; both have both.
    let a = mock(MockConfig {
        models: vec![
            MockModel::chat("llama3.2:1b"),
            MockModel::chat("qwen2.5:7b"),
        ],
        ..MockConfig::default()
    })
    .await;
    let b = mock(MockConfig {
        models: vec![
            MockModel::chat("qwen2.5:7b"),
            MockModel::chat("llama3.2:1b"),
        ],
        ..MockConfig::default()
    })
    .await;
    let router = RouterProcess::start(RouterOptions::new(vec![
        node(&a.url(), "ollama"),
        node(&b.url(), "ollama"),
    ]))
    .await;
    for model in ["llama3.2:1b", "qwen2.5:7b"] {
        for i in 0..4 {
            let response = client()
                .post(format!("{}/api/chat", router.url()))
                .json(&serde_json::json!({"model": model, "stream": false,
                    "messages": [{"role": "user", "content": format!("placement {i}")}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    }
    let sent = |m: &MockOllama, model: &str| {
        m.state
            .requests_to("/api/chat")
            .iter()
            .filter(|r| r.json()["model"] == model)
            .count()
    };
    assert_eq!(
        (sent(&a, "llama3.2:1b"), sent(&b, "llama3.2:1b")),
        (4, 0),
        "llama is loaded on A"
    );
    assert_eq!(
        (sent(&a, "qwen2.5:7b"), sent(&b, "qwen2.5:7b")),
        (0, 4),
        "qwen is loaded on B"
    );
}
