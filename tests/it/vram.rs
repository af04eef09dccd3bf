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
    // history_points thins the window for a chart, keeping the newest sample.
    let full = get_json(format!("{}/admin/vram", router.admin_url())).await;
    let thinned = get_json(format!(
        "{}/admin/vram?history_points=2",
        router.admin_url()
    ))
    .await;
    let (full, thinned) = (
        full["history"].as_array().unwrap(),
        thinned["history"].as_array().unwrap(),
    );
    assert!(full.len() >= 2 && thinned.len() <= 2, "{thinned:?}");
    assert_eq!(
        thinned.last().unwrap()["nodes"][mock.url()],
        full.last().unwrap()["nodes"][mock.url()]
    );
    let bad = client()
        .get(format!(
            "{}/admin/vram?history_points=1",
            router.admin_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // Admin-only: the proxy port refuses without an admin key.
    let proxied = client()
        .get(format!("{}/admin/vram", router.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 403);

    let metrics = get_text(format!("{}/metrics", router.url())).await;
    for line in [
        "smarterrouter_vram_total_bytes 4000000000".to_string(),
        format!(
            "smarterrouter_node_vram_used_bytes{{node=\"{}\"}} {}",
            mock.url(),
            mock.state.config.models[0].size
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
    // Discovery asks /api/tags, then /api/show, then /api/ps: read between two passes.
    assert!(
        eventually(5, || mock.state.count("/api/ps")
            == mock.state.count("/api/tags"))
        .await,
        "only discovery asks /api/ps: {} against {} /api/tags",
        mock.state.count("/api/ps"),
        mock.state.count("/api/tags")
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
    // Explain shows where each model is loaded.
    let explained = get_json(format!("{}/admin/explain?prompt=hi", router.admin_url())).await;
    let known = explained["models_known"].as_array().unwrap();
    let llama = known.iter().find(|m| m["model"] == "llama3.2:1b").unwrap();
    let loaded_on: Vec<(&str, bool)> = llama["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["url"].as_str().unwrap(), n["loaded"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        loaded_on,
        [(a.url().as_str(), true), (b.url().as_str(), false)],
        "{llama}"
    );
}

const GB: u64 = 1_000_000_000;

fn sized(name: &str, gb: u64) -> MockModel {
    MockModel {
        size: gb * GB,
        ..MockModel::chat(name)
    }
}

/// A node with 10 GB (budget 9) holding `a` and `b`; `c` is cold.
async fn crowded(
    sizes: [u64; 3],
    env: Vec<(&str, &str)>,
    latency_ms: u64,
) -> (MockOllama, RouterProcess) {
    let mock = mock(MockConfig {
        models: vec![
            sized("a:1b", sizes[0]),
            sized("b:1b", sizes[1]),
            sized("c:1b", sizes[2]),
        ],
        vram_sim: Some(vec!["a:1b".into(), "b:1b".into()]),
        latency: Duration::from_millis(latency_ms),
        ..MockConfig::default()
    })
    .await;
    let router = RouterProcess::start(RouterOptions {
        extra: format!(
            "  default_model: a:1b\n  pools:\n    - name: gpu\n      nodes:\n        - url: {}\n          vram_total_gb: 10\n",
            mock.url()
        ),
        env: [("ROUTER_VRAM_MONITOR_INTERVAL", "1")]
            .into_iter()
            .chain(env)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..RouterOptions::new(Vec::new())
    })
    .await;
    let v = vram_until(&router, |v| {
        v["models_loaded"].as_object().is_some_and(|m| m.len() == 2)
    })
    .await;
    assert_eq!(v["budget"]["max_configured_gb"], 9.0, "{v}");
    (mock, router)
}

async fn ask(router: &RouterProcess, model: &str) -> reqwest::Response {
    client()
        .post(format!("{}/api/chat", router.url()))
        .json(&serde_json::json!({"model": model, "stream": false,
            "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap()
}

fn unloads(mock: &MockOllama) -> Vec<String> {
    mock.state.unloads.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cold_model_unloads_the_least_recently_used_one() {
    let (mock, router) = crowded([4, 4, 4], Vec::new(), 0).await;
    assert_eq!(
        ask(&router, "a:1b").await.status(),
        200,
        "a is used now; b was never used here"
    );
    assert!(unloads(&mock).is_empty(), "a was loaded: nothing to admit");
    assert_eq!(ask(&router, "c:1b").await.status(), 200);
    assert_eq!(
        unloads(&mock),
        ["b:1b"],
        "8 GB used + 4 > 9: the LRU one goes"
    );
    assert_eq!(mock.state.loaded_now(), ["a:1b", "c:1b"]);
    assert_eq!(ask(&router, "c:1b").await.status(), 200);
    assert_eq!(
        unloads(&mock).len(),
        1,
        "c is loaded now: nothing more to do"
    );
    let metrics = get_text(format!("{}/metrics", router.url())).await;
    assert!(
        metrics.contains("smarterrouter_model_unloads_total{reason=\"budget\"} 1"),
        "{metrics}"
    );
    assert!(router
        .logs()
        .contains("unloaded a model to fit another in the VRAM budget"));
    // The dashboard's loads and unloads, newest first, with their reasons.
    let v = get_json(format!("{}/admin/vram", router.admin_url())).await;
    let events: Vec<(String, String, String)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap().to_string();
            (field("event"), field("model"), field("reason"))
        })
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (events[0].0.as_str(), events[0].1.as_str()),
        ("load", "c:1b")
    );
    assert!(events[0].2.starts_with("a request for it"), "{events:?}");
    assert_eq!(
        events[1],
        (
            "unload".to_string(),
            "b:1b".to_string(),
            "to fit c:1b in the node's budget (lru first)".to_string()
        )
    );
    assert_eq!(v["events"][1]["node"], mock.url());
    // A model that leaves /api/ps by itself (Ollama's keep_alive) is an event too.
    mock.state.unload("a:1b");
    let v = vram_until(&router, |v| v["events"].as_array().unwrap().len() == 3).await;
    assert_eq!(v["events"][0]["model"], "a:1b");
    assert_eq!(v["events"][0]["event"], "unload");
    assert!(v["events"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("keep_alive expired"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_largest_strategy_unloads_the_biggest_and_the_pinned_model_stays() {
    let (mock, router) = crowded(
        [5, 3, 3],
        vec![("ROUTER_VRAM_UNLOAD_STRATEGY", "largest")],
        0,
    )
    .await;
    assert_eq!(ask(&router, "c:1b").await.status(), 200);
    assert_eq!(unloads(&mock), ["a:1b"], "8 + 3 > 9: the 5 GB one goes");

    // Pinned: b is the least recently used, but pinned, so a goes although it was used last.
    let (mock, router) = crowded([4, 4, 4], vec![("ROUTER_PINNED_MODEL", "b:1b")], 0).await;
    assert_eq!(ask(&router, "a:1b").await.status(), 200);
    assert_eq!(ask(&router, "c:1b").await.status(), 200);
    assert_eq!(unloads(&mock), ["a:1b"], "never the pinned model");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_with_requests_in_flight_is_never_unloaded() {
    let (mock, router) = crowded([4, 4, 4], Vec::new(), 700).await;
    // b is the LRU choice (never used), but a request to it is running.
    let busy = tokio::spawn({
        let url = router.url();
        async move {
            client()
                .post(format!("{url}/api/chat"))
                .json(&serde_json::json!({"model": "b:1b", "stream": false,
                    "messages": [{"role": "user", "content": "slow"}]}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    // Counted in flight before it is forwarded: once the node has it, it is busy.
    assert!(
        eventually(10, || mock
            .state
            .requests_to("/api/chat")
            .iter()
            .any(|r| r.json()["model"] == "b:1b"))
        .await
    );
    assert_eq!(ask(&router, "c:1b").await.status(), 200);
    assert_eq!(busy.await.unwrap(), 200);
    assert_eq!(unloads(&mock), ["a:1b"], "b was busy");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_cannot_fit_gets_503_vram_exhausted_and_nothing_is_unloaded() {
    let (mock, router) = crowded([4, 4, 12], Vec::new(), 0).await;
    let response = ask(&router, "c:1b").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("c:1b") && error.contains("a:1b 4.0 GB") && error.contains("b:1b 4.0 GB"),
        "{error}"
    );
    assert!(error.contains("budget is 9.0 GB"), "{error}");
    assert!(unloads(&mock).is_empty());
    let sent = mock.state.requests_to("/api/chat");
    assert!(
        sent.iter().all(|r| r.json()["model"] != "c:1b"),
        "never sent to the node"
    );
    let openai = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("c:1b", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 503);
    let body: Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["code"], "vram_exhausted");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pinned_model_is_loaded_at_start_and_reloaded_after_an_eviction() {
    let mock = mock(MockConfig {
        models: vec![sized("a:1b", 4), sized("b:1b", 4)],
        vram_sim: Some(vec!["a:1b".into()]),
        ..MockConfig::default()
    })
    .await;
    let _router = RouterProcess::start(RouterOptions {
        extra: format!(
            "  default_model: a:1b\n  pools:\n    - name: gpu\n      nodes:\n        - url: {}\n          vram_total_gb: 10\n",
            mock.url()
        ),
        env: vec![
            ("ROUTER_VRAM_MONITOR_INTERVAL".into(), "1".into()),
            ("ROUTER_PINNED_MODEL".into(), "b:1b".into()),
        ],
        ..RouterOptions::new(Vec::new())
    })
    .await;
    let loads = || mock.state.loads.lock().unwrap().clone();
    assert!(
        eventually(10, || loads() == ["b:1b"]).await,
        "loaded at start: {:?}",
        loads()
    );
    let load = mock
        .state
        .requests_to("/api/generate")
        .into_iter()
        .map(|r| r.json())
        .find(|b| b["model"] == "b:1b")
        .unwrap();
    assert_eq!(load["keep_alive"], -1, "kept loaded for good: {load}");
    assert!(load.get("prompt").is_none());
    // Something else evicts it (another client, Ollama itself): it comes back.
    mock.state.unload("b:1b");
    assert!(
        eventually(10, || loads() == ["b:1b", "b:1b"]).await,
        "reloaded: {:?}",
        loads()
    );
    assert_eq!(mock.state.loaded_now(), ["a:1b", "b:1b"]);
    // A client's own keep_alive would let Ollama expire it: requests for it keep it for good.
    let response = client()
        .post(format!("{}/api/chat", _router.url()))
        .json(
            &serde_json::json!({"model": "b:1b", "stream": false, "keep_alive": "5m",
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = mock.state.requests_to("/api/chat").last().unwrap().json();
    assert_eq!(sent["keep_alive"], -1, "{sent}");
}

/// Alternating requests for a loaded model and a cold one that cannot fit beside it: `(503s,
/// loads of the cold model)` with the given `group_wait_ms`.
async fn alternating(group_wait_ms: &str) -> (usize, Vec<String>) {
    let mock = mock(MockConfig {
        models: vec![sized("a:1b", 5), sized("c:1b", 5)],
        vram_sim: Some(vec!["a:1b".into()]),
        latency: Duration::from_millis(300),
        ..MockConfig::default()
    })
    .await;
    let router = RouterProcess::start(RouterOptions {
        extra: format!(
            "  default_model: a:1b\n  vram:\n    group_wait_ms: {group_wait_ms}\n  pools:\n    - name: gpu\n      nodes:\n        - url: {}\n          vram_total_gb: 10\n",
            mock.url()
        ),
        env: vec![("ROUTER_VRAM_MONITOR_INTERVAL".into(), "1".into())],
        ..RouterOptions::new(Vec::new())
    })
    .await;
    vram_until(&router, |v| !v["current"].is_null()).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        let model = if i % 2 == 0 { "a:1b" } else { "c:1b" };
        let url = router.url();
        sent.push(tokio::spawn(async move {
            client()
                .post(format!("{url}/api/chat"))
                .json(&serde_json::json!({"model": model, "stream": false,
                    "messages": [{"role": "user", "content": format!("turn {i}")}]}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let mut refused = 0;
    for request in sent {
        let status = request.await.unwrap();
        assert!(status == 200 || status == 503, "{status}");
        refused += usize::from(status == 503);
    }
    let loads = mock.state.loads.lock().unwrap().clone();
    (refused, loads)
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_for_a_cold_model_wait_for_the_busy_one_and_go_as_a_group() {
    let (refused_without, loads_without) = alternating("0").await;
    let (refused_with, loads_with) = alternating("3000").await;
    eprintln!(
        "alternating a/c, 10 requests: group_wait 0 ms: {refused_without} refused, loads {loads_without:?}; \
         group_wait 3000 ms: {refused_with} refused, loads {loads_with:?}"
    );
    assert!(
        refused_without >= 3,
        "c cannot fit while a is busy: {refused_without}"
    );
    assert_eq!(refused_with, 0, "every c request waited for a to finish");
    assert_eq!(loads_with, ["c:1b"], "one switch for the whole group");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_loads_hang_is_degraded_and_avoided_for_cold_models() {
    let models = || {
        ["a:1b", "c:1b", "d:1b", "e:1b", "f:1b", "g:1b"]
            .into_iter()
            .map(|m| sized(m, 1))
            .collect::<Vec<_>>()
    };
    // A answers only after 800 ms (a load that hangs past the 300 ms timeout); B at once.
    let a = mock(MockConfig {
        models: models(),
        vram_sim: Some(vec!["a:1b".into()]),
        latency: Duration::from_millis(800),
        ..MockConfig::default()
    })
    .await;
    let b = mock(MockConfig {
        models: models(),
        vram_sim: Some(vec!["a:1b".into()]),
        ..MockConfig::default()
    })
    .await;
    let router = RouterProcess::start(RouterOptions {
        extra: "  default_model: a:1b\n  vram:\n    load_timeout_ms: 300\n".to_string(),
        env: vec![("ROUTER_VRAM_MONITOR_INTERVAL".into(), "1".into())],
        ..RouterOptions::new(vec![node(&a.url(), "ollama"), node(&b.url(), "ollama")])
    })
    .await;
    // Cold streamed requests for c until one lands on A (equal nodes take turns): a stream's
    // first byte is when the load is done.
    for _ in 0..2 {
        let streamed = client()
            .post(format!("{}/api/chat", router.url()))
            .json(&serde_json::json!({"model": "c:1b",
                "messages": [{"role": "user", "content": "hello"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(streamed.status(), 200);
        streamed.text().await.unwrap();
        if a.state.count("/api/chat") > 0 {
            break;
        }
    }
    assert_eq!(a.state.count("/api/chat"), 1, "one cold load went to A");
    let health = get_json(format!("{}/health", router.url())).await;
    let node_a = health["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["url"] == a.url())
        .unwrap();
    assert!(
        node_a["degraded"]
            .as_str()
            .unwrap()
            .contains("load_timeout_ms"),
        "{health}"
    );
    assert!(router.logs().contains("node degraded for cold loads"));
    // Other cold models now go to B.
    for model in ["d:1b", "e:1b", "f:1b", "g:1b"] {
        assert_eq!(ask(&router, model).await.status(), 200);
    }
    assert_eq!(a.state.count("/api/chat"), 1, "A is avoided for cold loads");
    // A model already loaded on A still goes there (the hang is about loads).
    assert!(a.state.loaded_now().contains(&"c:1b".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn history_older_than_the_hour_in_memory_comes_from_the_store() {
    let mock = default_mock().await;
    let data = tempfile::tempdir().unwrap();
    let options = || {
        RouterOptions {
        extra: format!(
            "  default_model: llama3.2:1b\n  pools:\n    - name: gpu\n      nodes:\n        - url: {}\n          vram_total_gb: 4\n",
            mock.url()
        ),
        env: vec![("ROUTER_VRAM_MONITOR_INTERVAL".into(), "1".into())],
        data_dir: Some(data.path().display().to_string()),
        ..RouterOptions::new(Vec::new())
    }
    };
    let first = RouterProcess::start(options()).await;
    let before = vram_until(&first, |v| !v["history"].as_array().unwrap().is_empty()).await;
    let stored_at = before["history"][0]["timestamp"].as_f64().unwrap();
    // A graceful stop flushes the store.
    let pid = first.pid().unwrap();
    signal(pid, "TERM");
    assert!(wait_exit(pid, 10).await, "stopped");
    drop(first);

    let second = RouterProcess::start(options()).await;
    let recent = get_json(format!(
        "{}/admin/vram?history_minutes=10",
        second.admin_url()
    ))
    .await;
    let times = |v: &Value| -> Vec<f64> {
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["timestamp"].as_f64().unwrap())
            .collect()
    };
    assert!(
        !times(&recent).contains(&stored_at),
        "memory starts empty after a restart"
    );
    let long = get_json(format!(
        "{}/admin/vram?history_minutes=120",
        second.admin_url()
    ))
    .await;
    assert!(
        times(&long).contains(&stored_at),
        "the store has it: {long}"
    );
    let entry = long["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["timestamp"].as_f64() == Some(stored_at))
        .unwrap();
    assert_eq!(entry["models"], serde_json::json!(["llama3.2:1b"]));
    let too_long = client()
        .get(format!(
            "{}/admin/vram?history_minutes=99999999",
            second.admin_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(too_long.status(), 400);
}
