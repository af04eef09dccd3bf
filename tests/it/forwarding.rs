//! Both dialects forwarded with the model rewritten and everything else intact.

use serde_json::{json, Value};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn openai_chat_gets_default_model_rewritten_with_exact_length() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let body = json!({"model": "smarterrouter/main", "temperature": 0.2,
                      "messages": [{"role": "user", "content": "Say hi"}]});
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .header("x-request-id", "req-42")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-smarterrouter-model"], "llama3.2:1b");
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "llama3.2:1b");

    let seen = mock.state.requests_to("/v1/chat/completions");
    assert_eq!(seen.len(), 1, "upstream called once");
    let upstream = &seen[0];
    assert_eq!(
        upstream.headers["content-length"],
        upstream.body.len().to_string()
    );
    assert_eq!(upstream.headers["x-request-id"], "req-42");
    let sent = upstream.json();
    assert_eq!(sent["model"], "llama3.2:1b");
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["messages"], body["messages"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn named_model_is_honoured_and_query_override_wins() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("qwen2.5:7b", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-smarterrouter-model"], "qwen2.5:7b");

    let response = client()
        .post(format!("{}/api/chat?model=qwen2.5%3A7b", router.url()))
        .json(&json!({"model": "llama3.2:1b", "stream": false,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-smarterrouter-model"], "qwen2.5:7b");
    let seen = mock.state.requests_to("/api/chat");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].json()["model"], "qwen2.5:7b");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["done"], true);
    assert_eq!(answer["model"], "qwen2.5:7b");
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_implicit_latest_tag_resolves() {
    let mock = mock(MockConfig {
        models: vec![MockModel::chat("llama3.2:latest")],
        ..MockConfig::default()
    })
    .await;
    let router = RouterProcess::start(RouterOptions {
        extra: String::new(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let response = client()
        .post(format!("{}/api/generate", router.url()))
        .json(&json!({"model": "llama3.2", "prompt": "hi", "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        mock.state.requests_to("/api/generate")[0].json()["model"],
        "llama3.2:latest"
    );
    let answer: Value = response.json().await.unwrap();
    assert!(answer["response"].as_str().unwrap().contains("simulated"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_forwarded_endpoint_reaches_the_node() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let c = client();
    let calls: Vec<(&str, Value)> = vec![
        (
            "/v1/completions",
            json!({"model": "auto", "prompt": "Once"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm", "input": ["a", "b"]}),
        ),
        (
            "/api/generate",
            json!({"model": "auto", "prompt": "Once", "stream": false}),
        ),
        (
            "/api/embed",
            json!({"model": "all-minilm:latest", "input": "a"}),
        ),
        (
            "/api/embeddings",
            json!({"model": "all-minilm:latest", "prompt": "a"}),
        ),
        ("/api/show", json!({"name": "qwen2.5:7b"})),
    ];
    for (path, body) in &calls {
        let response = c
            .post(format!("{}{path}", router.url()))
            .header("x-request-id", format!("call{path}"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        // Discovery calls /api/show too; count only what this test forwarded.
        let id = format!("call{path}");
        let forwarded = mock
            .state
            .requests_to(path)
            .into_iter()
            .filter(|r| r.headers.get("x-request-id") == Some(&id))
            .count();
        assert_eq!(forwarded, 1, "{path} reached the node once");
    }
    let embeds = mock.state.requests_to("/v1/embeddings");
    assert_eq!(embeds[0].json()["model"], "all-minilm:latest");
    let shown = mock.state.requests_to("/api/show");
    let forwarded_show = shown
        .iter()
        .find(|r| r.headers.contains_key("x-request-id"))
        .unwrap();
    assert_eq!(forwarded_show.json()["model"], "qwen2.5:7b");
    assert_eq!(
        forwarded_show.json()["name"],
        "qwen2.5:7b",
        "the rest is kept"
    );
    assert_eq!(
        mock.state.requests_to("/api/generate")[0].json()["model"],
        "llama3.2:1b"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_load_request_with_a_named_model_is_forwarded() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let response = client()
        .post(format!("{}/api/chat", router.url()))
        .json(&json!({"model": "qwen2.5:7b", "messages": [], "keep_alive": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["done_reason"], "unload");
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_overrides_replace_pool_and_quality_preference() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        env: vec![
            ("ROUTER_OLLAMA_URL".into(), mock.url()),
            ("ROUTER_QUALITY_PREFERENCE".into(), "1".into()),
        ],
        extra: String::new(),
        ..RouterOptions::new(Vec::new())
    })
    .await;
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("auto", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-smarterrouter-model"],
        "qwen2.5:7b",
        "quality preference 1 picks the larger model even for a greeting"
    );
    assert_eq!(mock.state.count("/v1/chat/completions"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_kind_node_serves_v1_and_is_skipped_for_ollama_api() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions::new(vec![node(&mock.url(), "openai")])).await;
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&chat_body("llama3.2:1b", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        mock.state.count("/v1/models") >= 1,
        "discovered through /v1/models"
    );
    assert_eq!(
        mock.state.count("/api/tags"),
        0,
        "openai nodes are discovered through /v1/models"
    );

    let response = client()
        .post(format!("{}/api/chat", router.url()))
        .json(&chat_body("llama3.2:1b", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("/v1"),
        "{answer}"
    );
    assert_eq!(mock.state.count("/api/chat"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_slash_and_virtual_query_model_are_normalised() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let response = client()
        .post(format!(
            "{}/v1/chat/completions/?model=auto&trace=1",
            router.url()
        ))
        .json(&chat_body("llama3.2:1b", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "a virtual ?model= lets the router choose"
    );
    let seen = mock.state.requests_to("/v1/chat/completions");
    assert_eq!(
        seen.len(),
        1,
        "forwarded to the canonical path without the slash"
    );
    let recorded_path = &seen[0].path;
    assert_eq!(recorded_path, "/v1/chat/completions");
}
