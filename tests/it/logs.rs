//! JSON access log: one line per request with the documented fields.

use serde_json::Value;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn json_log_line_per_request() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        env: vec![("ROUTER_LOG_FORMAT".into(), "json".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .header("x-request-id", "log-test-1")
        .json(&chat_body("auto", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut line = None;
    for _ in 0..100 {
        line = router
            .logs()
            .lines()
            .find(|l| l.contains("log-test-1"))
            .map(str::to_string);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let line = line.unwrap_or_else(|| panic!("no access line; log:\n{}", router.logs()));
    let entry: Value = serde_json::from_str(&line).unwrap();
    for field in [
        "timestamp",
        "level",
        "request_id",
        "endpoint",
        "model_selected",
        "latency_ms",
        "cache_hit",
        "status",
        "node",
        "category",
    ] {
        assert!(entry.get(field).is_some(), "missing {field}: {line}");
    }
    assert_eq!(entry["request_id"], "log-test-1");
    assert_eq!(entry["endpoint"], "/v1/chat/completions");
    assert_eq!(entry["model_selected"], "llama3.2:1b");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["cache_hit"], false);
    assert_eq!(entry["category"], "factual", "\"hi\" is a general prompt");
    assert_eq!(entry["node"], mock.url());
    assert!(entry["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(
        router
            .logs()
            .lines()
            .all(|l| l.trim().is_empty() || serde_json::from_str::<Value>(l).is_ok()),
        "every line is JSON"
    );
}
