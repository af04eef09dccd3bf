//! The scoring engine end to end: prompts of different kinds reach different models at the node,
//! and /admin/explain explains without side effects.

use serde_json::{json, Value};

use crate::harness::*;

fn lab_mock_config() -> MockConfig {
    MockConfig {
        models: vec![
            MockModel::with("llama3.2:3b", "3.2B", &["tools"]),
            MockModel::with("qwen2.5-coder:7b", "7.6B", &["tools"]),
            MockModel::with("llava:7b", "7.2B", &["vision"]),
            MockModel::embedding("nomic-embed-text:latest"),
        ],
        ..MockConfig::default()
    }
}

async fn routed(router: &RouterProcess, body: Value) -> (String, String) {
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
    (
        header("x-smarterrouter-model"),
        header("x-smarterrouter-category"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn coding_creative_and_image_prompts_reach_different_models() {
    let mock = mock(lab_mock_config()).await;
    let router = RouterProcess::start(RouterOptions {
        extra: String::new(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;

    let coding = chat_body(
        "smarterrouter/main",
        "Write a Python function that parses JSON and handles errors",
    );
    assert_eq!(
        routed(&router, coding).await,
        ("qwen2.5-coder:7b".into(), "coding".into())
    );
    let creative = chat_body("smarterrouter/main", "Write a short poem about the sea");
    assert_eq!(
        routed(&router, creative).await,
        ("llama3.2:3b".into(), "creativity".into())
    );
    let image = json!({"model": "auto", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    assert_eq!(routed(&router, image).await.0, "llava:7b");

    let models: Vec<String> = mock
        .state
        .requests_to("/v1/chat/completions")
        .iter()
        .map(|r| r.json()["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        models,
        ["qwen2.5-coder:7b", "llama3.2:3b", "llava:7b"],
        "what the node received"
    );

    // Ollama dialect with images in `images`.
    let response = client()
        .post(format!("{}/api/chat", router.url()))
        .json(&json!({"model": "auto", "stream": false,
                      "messages": [{"role": "user", "content": "Describe this", "images": ["iVBORw0KGgo="]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        mock.state.requests_to("/api/chat")[0].json()["model"],
        "llava:7b"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_shows_every_candidate_and_has_no_side_effects() {
    let mock = mock(lab_mock_config()).await;
    let router = RouterProcess::start(RouterOptions {
        extra: String::new(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let url = format!(
        "{}/admin/explain?prompt=Write%20a%20Python%20function%20that%20parses%20JSON&quality_preference=0.5",
        router.admin_url()
    );
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let explained: Value = response.json().await.unwrap();
    assert_eq!(explained["analysis"]["dominant"], "coding");
    assert_eq!(
        explained["scoring"]["decision"]["model"],
        "qwen2.5-coder:7b"
    );
    let confidence = explained["scoring"]["decision"]["confidence"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    let candidates = explained["scoring"]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 4);
    let embed = candidates
        .iter()
        .find(|c| c["model"] == "nomic-embed-text:latest")
        .unwrap();
    assert_eq!(embed["eligible"], false);
    assert_eq!(embed["excluded_because"], "embedding model");
    let coder = candidates
        .iter()
        .find(|c| c["model"] == "qwen2.5-coder:7b")
        .unwrap();
    for term in [
        "quality",
        "speed",
        "loaded_bonus",
        "size_penalty",
        "quality_part",
        "speed_part",
    ] {
        assert!(coder["terms"].get(term).is_some(), "term {term}: {coder}");
    }
    let known = explained["models_known"].as_array().unwrap();
    let llava = known.iter().find(|m| m["model"] == "llava:7b").unwrap();
    assert_eq!(llava["vision"], true);
    assert_eq!(
        llava["capabilities_from"], "node",
        "capabilities came from /api/show"
    );

    // Without router.admin.api_key, /admin/* is for the admin port only.
    let refused = client()
        .get(format!("{}/admin/explain?prompt=hi", router.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "admin_port_only");

    // POST a full chat body; quality preference 1 via the query.
    let response = client()
        .post(format!(
            "{}/admin/explain?quality_preference=1",
            router.admin_url()
        ))
        .json(&chat_body("auto", "Write a short poem about the sea"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let explained: Value = response.json().await.unwrap();
    assert_eq!(explained["settings"]["quality_preference"], 1.0);
    assert_eq!(
        explained["scoring"]["decision"]["model"], "qwen2.5-coder:7b",
        "largest text model at q=1"
    );

    let bad = client()
        .get(format!("{}/admin/explain", router.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        mock.state.count("/v1/chat/completions"),
        0,
        "explain never calls a model"
    );
    assert_eq!(mock.state.count("/api/chat"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_api_key_opens_admin_on_both_ports_to_bearers_only() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        env: vec![("ROUTER_ADMIN_API_KEY".into(), "s3cret-admin-key".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    for base in [router.url(), router.admin_url()] {
        let url = format!("{base}/admin/profiles");
        let anonymous = client().get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{url}");
        let wrong = client()
            .get(&url)
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{url}");
        let allowed = client()
            .get(&url)
            .bearer_auth("s3cret-admin-key")
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200, "{url}");
    }
    let health = client()
        .get(format!("{}/health", router.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "health needs no key");
}

/// Explain says which classifier decided, and its probabilities sum to 1; with
/// `classifier: keywords` the keyword analyser's scores are used.
#[tokio::test(flavor = "multi_thread")]
async fn explain_names_the_classifier_in_use() {
    let mock = default_mock().await;
    let learned = RouterProcess::start_default(&mock).await;
    let keywords = RouterProcess::start(RouterOptions {
        extra: "  routing:\n    classifier: keywords\n".into(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let prompt = "Three%20friends%20share%208%20slices.%20Ana%20eats%203%20and%20Ben%20twice%20as%20many%20as%20Chen.%20How%20many%20does%20Chen%20eat%3F";
    let e: Value = get_json(format!(
        "{}/admin/explain?prompt={prompt}",
        learned.admin_url()
    ))
    .await;
    assert_eq!(e["classifier"], "learned", "{e}");
    let sum: f64 = e["analysis"]["categories"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-3, "{e}");
    assert_eq!(e["analysis"]["dominant"], "reasoning", "{e}");
    let k: Value = get_json(format!(
        "{}/admin/explain?prompt={prompt}",
        keywords.admin_url()
    ))
    .await;
    assert_eq!(k["classifier"], "keywords", "{k}");
}
