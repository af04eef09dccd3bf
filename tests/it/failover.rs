//! Connection failures retry on another node; no node at all is a clear 503.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn connection_failure_retries_on_the_second_node() {
    let first = default_mock().await;
    let second = default_mock().await;
    // Discovery runs once at start and not again during the test, so only the proxy path can
    // find out that the first node went away.
    let router = RouterProcess::start(RouterOptions {
        discovery_secs: 600,
        ..RouterOptions::new(vec![
            node(&first.url(), "ollama"),
            node(&second.url(), "ollama"),
        ])
    })
    .await;
    let both_up = eventually(10, || {
        first.state.count("/api/tags") > 0 && second.state.count("/api/tags") > 0
    })
    .await;
    assert!(both_up);
    let health: Value = get_json(format!("{}/health", router.url())).await;
    assert_eq!(health["nodes"][0]["healthy"], true, "{health}");
    assert_eq!(health["nodes"][1]["healthy"], true, "{health}");
    first.stop();
    // Idle nodes take turns, so one of two requests tries the stopped node first.
    for _ in 0..2 {
        let response = client()
            .post(format!("{}/v1/chat/completions", router.url()))
            .json(&chat_body("llama3.2:1b", "hi"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}\n{}", router.logs());
    }
    assert_eq!(first.state.count("/v1/chat/completions"), 0);
    assert_eq!(second.state.count("/v1/chat/completions"), 2);
    assert_eq!(
        second.state.requests_to("/v1/chat/completions")[0].json()["model"],
        "llama3.2:1b"
    );
    let health: Value = get_json(format!("{}/health", router.url())).await;
    assert_eq!(health["nodes"][0]["healthy"], false, "{health}");
    assert!(
        health["nodes"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("connection failed"),
        "marked down by the failed connection, not by discovery: {health}"
    );
    assert_eq!(health["nodes"][1]["healthy"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn all_nodes_down_is_503_naming_the_pool() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let router = RouterProcess::start(RouterOptions {
        wait_healthy: false,
        ..RouterOptions::new(vec![node(&dead, "ollama")])
    })
    .await;
    let health = client()
        .get(format!("{}/health", router.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "unavailable");
    assert_eq!(health["nodes"][0]["healthy"], false);

    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("llama3.2:1b", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("testpool") && message.contains(&dead),
        "{message}"
    );

    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("auto", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "service_unavailable");
    assert_eq!(body["error"]["code"], "no_healthy_node");
}

#[tokio::test(flavor = "multi_thread")]
async fn node_that_went_down_gives_503_with_pool_and_reason() {
    let only = default_mock().await;
    let router = RouterProcess::start_default(&only).await;
    only.stop();
    // The first request finds the connection refused and marks the node down; with no other node
    // it fails with 503 naming the pool and why.
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("llama3.2:1b", "hi"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("testpool") && message.contains("down"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_marked_down_by_one_failed_connection_is_tried_again_soon() {
    let only = default_mock().await;
    let addr = only.addr;
    // Discovery is slow here: only the half-open retry can bring the node back in time.
    let router = RouterProcess::start(RouterOptions {
        discovery_secs: 60,
        ..RouterOptions::new(vec![node(&only.url(), "ollama")])
    })
    .await;
    only.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ask = || async {
        client()
            .post(format!("{}/v1/chat/completions", router.url()))
            .json(&chat_body("llama3.2:1b", "hi"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(ask().await, 503, "the connection fails: marked down");
    let back = MockOllama::start_on(addr, MockConfig::default())
        .await
        .unwrap();
    assert_eq!(ask().await, 503, "still down right after");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        ask().await,
        200,
        "tried again after 2 s, long before the next discovery pass"
    );
    assert_eq!(back.state.count("/v1/chat/completions"), 1);
}
