//! Bad input gets a clear error in the client's dialect and never reaches a node.

use serde_json::{json, Value};

use crate::harness::*;

async fn post_raw(
    router: &RouterProcess,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let response = client()
        .post(format!("{}{path}", router.url()))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_wrong_type_and_empty_messages() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;

    let (status, body) = post_raw(
        &router,
        "/v1/chat/completions",
        "application/json",
        "{not json",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_json");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    let (status, body) = post_raw(&router, "/api/chat", "application/json", "{not json").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("not valid JSON"),
        "Ollama shape: {body}"
    );

    let (status, body) = post_raw(&router, "/v1/chat/completions", "text/plain", "{}").await;
    assert_eq!(status, 415);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("application/json"));

    let (status, body) = post_raw(&router, "/api/generate", "text/plain", "{}").await;
    assert_eq!(status, 415);
    assert!(body["error"].is_string());

    let (status, body) = post_raw(
        &router,
        "/v1/chat/completions",
        "application/json",
        r#"{"model":"auto","messages":[]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "empty_messages");

    let (status, body) = post_raw(
        &router,
        "/api/chat",
        "application/json",
        r#"{"messages":[]}"#,
    )
    .await;
    assert_eq!(status, 400, "a load request needs a named model: {body}");
    assert!(body["error"].as_str().unwrap().contains("model"));

    let (status, _) = post_raw(&router, "/v1/chat/completions", "application/json", "").await;
    assert_eq!(status, 400);

    assert_eq!(mock.state.count("/v1/chat/completions"), 0);
    assert_eq!(mock.state.count("/api/chat"), 0);
    assert_eq!(mock.state.count("/api/generate"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_model_is_404_listing_available_models() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let (status, body) = post_raw(
        &router,
        "/v1/chat/completions",
        "application/json",
        &chat_body("gpt-9", "hi").to_string(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gpt-9") && message.contains("llama3.2:1b"),
        "{message}"
    );

    let (status, body) = post_raw(
        &router,
        "/api/generate",
        "application/json",
        r#"{"model":"gpt-9","prompt":"x"}"#,
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("qwen2.5:7b"));
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_limit_is_413_and_unknown_routes_are_explained() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        extra: "  default_model: llama3.2:1b\n  max_body_bytes: 4096\n".into(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let big = chat_body("auto", &"y".repeat(5000)).to_string();
    let (status, body) = post_raw(&router, "/v1/chat/completions", "application/json", &big).await;
    assert_eq!(status, 413);
    assert!(body["error"]["message"].as_str().unwrap().contains("4096"));
    assert_eq!(mock.state.count("/v1/chat/completions"), 0);

    let response = client()
        .get(format!("{}/v1/chat/completions", router.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let response = client()
        .post(format!("{}/v2/unknown", router.url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("/v2/unknown"));
}

/// A node that sends nothing for `router.upstream.read_timeout_secs` gets 504 `upstream_timeout`
/// in the client's dialect, naming the node and the setting.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_node_is_504_upstream_timeout() {
    let mock = mock(MockConfig {
        latency: std::time::Duration::from_millis(2500),
        ..MockConfig::default()
    })
    .await;
    let router = RouterProcess::start(RouterOptions {
        extra: "  default_model: llama3.2:1b\n  upstream:\n    read_timeout_secs: 1\n".into(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("llama3.2:1b", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&mock.url()) && message.contains("read_timeout_secs"),
        "{message}"
    );
    let response = client()
        .post(format!("{}/api/chat", router.url()))
        .json(&serde_json::json!({"model": "llama3.2:1b", "stream": false,
                                  "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("read_timeout_secs"));
}
