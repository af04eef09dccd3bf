//! Endpoints the router answers itself: model listings merged across nodes, health, metrics.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::harness::*;

async fn get_json(url: String) -> (u16, Value) {
    let response = client().get(&url).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = format!("{:?}", response.headers());
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: HTTP {status} {headers}, body {text:?}: {e}"));
    (status, value)
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_are_the_union_of_all_nodes() {
    let a = mock(MockConfig {
        models: vec![MockModel::chat("llama3.2:1b")],
        ..MockConfig::default()
    })
    .await;
    let b = mock(MockConfig {
        models: vec![
            MockModel::chat("qwen2.5:7b"),
            MockModel::embedding("all-minilm:latest"),
        ],
        ..MockConfig::default()
    })
    .await;
    let router = RouterProcess::start(RouterOptions::new(vec![
        node(&a.url(), "ollama"),
        node(&b.url(), "ollama"),
    ]))
    .await;
    let both = eventually(10, || {
        a.state.count("/api/tags") > 0 && b.state.count("/api/tags") > 0
    })
    .await;
    assert!(both);
    // Wait for the second node to be marked up as well.
    let mut tags = Value::Null;
    for _ in 0..100 {
        tags = get_json(format!("{}/api/tags", router.url())).await.1;
        if tags["models"].as_array().is_some_and(|m| m.len() == 5) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The virtual models come first, then every node's models.
    let listed: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed[..2], ["smarterrouter/main", "auto"]);
    let names: BTreeSet<&str> = listed[2..].iter().copied().collect();
    assert_eq!(
        names,
        BTreeSet::from(["llama3.2:1b", "qwen2.5:7b", "all-minilm:latest"])
    );
    assert_eq!(tags["models"][0]["details"]["family"], "smarterrouter");
    assert_eq!(
        tags["models"][2]["details"]["format"], "gguf",
        "node's own entries are passed on"
    );
    assert_ne!(tags["models"][2]["details"]["family"], "smarterrouter");

    let (status, models) = get_json(format!("{}/v1/models", router.url())).await;
    assert_eq!(status, 200);
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[..2], ["smarterrouter/main", "auto"]);
    assert!(ids.contains(&"qwen2.5:7b") && ids.contains(&"llama3.2:1b"));
    let (status, one) = get_json(format!("{}/v1/models/qwen2.5:7b", router.url())).await;
    assert_eq!(status, 200);
    assert_eq!(one["owned_by"], "testpool");
    let (status, _) = get_json(format!("{}/v1/models/nope", router.url())).await;
    assert_eq!(status, 404);

    // /api/ps answers from the nodes' latest readings: polling it costs the nodes nothing.
    let asked_before = a.state.count("/api/ps") + b.state.count("/api/ps");
    for _ in 0..20 {
        let (status, ps) = get_json(format!("{}/api/ps", router.url())).await;
        assert_eq!(status, 200);
        assert_eq!(
            ps["models"].as_array().unwrap().len(),
            2,
            "one loaded model per mock: {ps}"
        );
        let age = ps["sample_age_secs"].as_f64().unwrap();
        assert!((0.0..60.0).contains(&age), "{ps}");
    }
    let asked_after = a.state.count("/api/ps") + b.state.count("/api/ps");
    assert!(
        asked_after - asked_before < 4,
        "20 polls made {} calls to the nodes",
        asked_after - asked_before
    );

    let (status, version) = get_json(format!("{}/api/version", router.url())).await;
    assert_eq!(status, 200);
    assert_eq!(version["version"], "0.33.0-mock");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics_on_proxy_and_admin_ports() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("auto", "hi"))
        .send()
        .await
        .unwrap();
    for base in [router.url(), router.admin_url()] {
        let (status, health) = get_json(format!("{base}/health")).await;
        assert_eq!(status, 200);
        assert_eq!(health["status"], "ok");
        assert_eq!(health["nodes"][0]["url"], mock.url());
        assert_eq!(health["nodes"][0]["models"], 3);
        let metrics = get_text(format!("{base}/metrics")).await;
        assert!(
            metrics.contains(r#"smarterrouter_requests_total{endpoint="/v1/chat/completions",model="llama3.2:1b",status="200"} 1"#),
            "{metrics}"
        );
    }
    let response = client()
        .post(format!("{}/v1/chat/completions", router.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "the admin port does not proxy");
}
