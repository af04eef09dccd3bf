//! Feedback: validated, stored durably (survives SIGKILL), folded into routing with decay.

use serde_json::{json, Value};

use crate::harness::*;

pub fn twins() -> MockConfig {
    MockConfig {
        // The mock reports its first model as loaded: make that the embedding model so the two
        // chat models are equal in every respect.
        models: vec![
            MockModel::embedding("nomic-embed-text:latest"),
            MockModel::with("alpha:7b", "7B", &[]),
            MockModel::with("beta:7b", "7B", &[]),
        ],
        ..MockConfig::default()
    }
}

pub async fn chosen(router: &RouterProcess, request_id: &str) -> String {
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .header("x-request-id", request_id)
        .json(&chat_body("auto", "Write a poem about the sea"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["x-smarterrouter-model"]
        .to_str()
        .unwrap()
        .to_string()
}

pub async fn feedback(router: &RouterProcess, body: Value) -> (u16, Value) {
    let response = client()
        .post(format!("{}/v1/feedback", router.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn negative_feedback_moves_routing_and_survives_sigkill() {
    let mock = mock(twins()).await;
    let data = tempfile::tempdir().unwrap();
    let options = || RouterOptions {
        extra: String::new(),
        data_dir: Some(data.path().display().to_string()),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    };
    let mut router = RouterProcess::start(options()).await;
    assert_eq!(
        chosen(&router, "fb-1").await,
        "alpha:7b",
        "equal models: the first by name"
    );

    let (status, body) = feedback(
        &router,
        json!({"response_id": "fb-1", "score": -1, "comment": "wrong"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert!(body["id"].as_u64().is_some());
    for _ in 0..3 {
        let (status, _) = feedback(&router, json!({"model_name": "alpha:7b", "score": -1})).await;
        assert_eq!(status, 200);
    }
    let explain: Value = get_json(format!(
        "{}/admin/explain?prompt=Write%20a%20poem%20about%20the%20sea",
        router.admin_url()
    ))
    .await;
    let alpha = explain["scoring"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == "alpha:7b")
        .unwrap()
        .clone();
    assert!(
        alpha["terms"]["feedback"].as_f64().unwrap() < 0.0,
        "{alpha}"
    );
    assert_eq!(
        chosen(&router, "fb-2").await,
        "beta:7b",
        "feedback moved the choice: {explain}"
    );

    // The decisions of fb-1 and fb-2 reach the decision ring file (header + one 512-byte slot
    // each) within moments; written there, a kill does not lose them.
    let ring = data.path().join("decisions.ring");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&ring).map_or(0, |m| m.len()) < 3 * 512 {
        assert!(
            std::time::Instant::now() < deadline,
            "no decisions in {ring:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Acknowledged feedback is on disk: kill without any shutdown and start again.
    router.kill_hard();
    let router = RouterProcess::start(options()).await;
    assert_eq!(
        chosen(&router, "fb-3").await,
        "beta:7b",
        "feedback survived SIGKILL"
    );
    // fb-2 was answered by the killed process: its decision is read back from the ring file.
    let (status, body) = feedback(&router, json!({"response_id": "fb-2", "score": 1})).await;
    assert_eq!(status, 200, "a decision from before the kill: {body}");
    let (status, body) = feedback(&router, json!({"response_id": "fb-3", "score": 1})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = feedback(&router, json!({"response_id": "fb-3", "score": 1})).await;
    assert_eq!(status, 400, "one rating per response: {body}");
    let (status, body) = feedback(&router, json!({"model_name": "no-such:1b", "score": 1})).await;
    assert_eq!(status, 400, "unknown models are refused: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_or_disabled_feedback_is_refused() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let (status, body) = feedback(&router, json!({"model_name": "llama3.2:1b", "score": 3})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("score"));
    let (status, body) = feedback(&router, json!({"response_id": "never-seen", "score": 1})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model_name"),
        "{body}"
    );
    let (status, _) = feedback(
        &router,
        json!({"model_name": "m", "score": 1, "category": "poetry"}),
    )
    .await;
    assert_eq!(status, 400);

    let disabled = RouterProcess::start(RouterOptions {
        env: vec![("ROUTER_FEEDBACK_ENABLED".into(), "false".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let (status, body) =
        feedback(&disabled, json!({"model_name": "llama3.2:1b", "score": 1})).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "feedback_disabled");
}
