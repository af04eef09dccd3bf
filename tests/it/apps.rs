//! The virtual models as Ollama clients (Open WebUI, the `ollama` CLI, IDE assistants) see them:
//! listed first in `/api/tags`, described by `/api/show`, loadable, and routed when chatted with.

use serde_json::{json, Value};

use crate::harness::*;

fn models() -> MockConfig {
    let mut small = MockModel::chat("llama3.2:1b");
    small.context_length = 4096;
    MockConfig {
        models: vec![
            small,
            MockModel::with("llava:7b", "7B", &["vision"]),
            MockModel::with("qwen2.5-coder:7b", "7.6B", &["tools"]),
            MockModel::embedding("all-minilm:latest"),
        ],
        ..MockConfig::default()
    }
}

async fn post(router: &RouterProcess, path: &str, body: Value) -> (u16, Value, Option<String>) {
    let response = client()
        .post(format!("{}{path}", router.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let model = response
        .headers()
        .get("x-smarterrouter-model")
        .map(|v| v.to_str().unwrap().to_string());
    (status, response.json().await.unwrap_or(Value::Null), model)
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_clients_see_describe_load_and_chat_with_the_virtual_models() {
    let mock = mock(models()).await;
    let router = RouterProcess::start(RouterOptions::new(vec![node(&mock.url(), "ollama")])).await;
    // Wait for /api/show of every model, so the facts are the node's.
    assert!(eventually(10, || mock.state.count("/api/show") >= 4).await);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let tags = get_json(format!("{}/api/tags", router.url())).await;
    let entries = tags["models"].as_array().unwrap();
    assert_eq!(entries[0]["name"], "smarterrouter/main");
    assert_eq!(entries[0]["model"], "smarterrouter/main");
    assert_eq!(entries[1]["name"], "auto");
    for entry in &entries[..2] {
        assert_eq!(entry["details"]["family"], "smarterrouter");
        assert_eq!(entry["digest"].as_str().unwrap().len(), 64);
        assert!(entry["modified_at"].as_str().unwrap().contains('T'));
        assert!(entry["size"].as_u64().unwrap() > 0, "{entry}");
    }
    assert_eq!(entries.len(), 6);

    // /api/show answers for the virtual model itself: what some candidate can do, and the
    // context every candidate has; the node is not asked.
    let shows_before = mock.state.count("/api/show");
    let (status, show, _) =
        post(&router, "/api/show", json!({"model": "smarterrouter/main"})).await;
    assert_eq!(status, 200, "{show}");
    let capabilities: Vec<&str> = show["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(capabilities, ["completion", "vision", "tools"]);
    assert_eq!(show["model_info"]["smarterrouter.context_length"], 4096);
    assert_eq!(show["details"]["family"], "smarterrouter");
    assert!(show["description"].as_str().unwrap().contains("llava:7b"));
    assert!(!show["description"].as_str().unwrap().contains("all-minilm"));
    assert_eq!(mock.state.count("/api/show"), shows_before);

    // `ollama run` loads the model first (empty messages); nothing to load for a virtual one.
    let chats_before = mock.state.count("/api/chat");
    let (status, loaded, _) = post(
        &router,
        "/api/chat",
        json!({"model": "smarterrouter/main:latest", "messages": []}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(loaded["done_reason"], "load");
    assert_eq!(loaded["done"], true);
    assert_eq!(mock.state.count("/api/chat"), chats_before);

    // A chat naming it (with the :latest Ollama clients add) is routed to a real model.
    let (status, answer, model) = post(
        &router,
        "/api/chat",
        json!({"model": "smarterrouter/main:latest", "stream": false,
               "messages": [{"role": "user", "content": "Write a Python function that reverses a list"}]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(model.as_deref(), Some("qwen2.5-coder:7b"));
    let forwarded = mock.state.requests_to("/api/chat");
    let last: Value = serde_json::from_slice(&forwarded.last().unwrap().body).unwrap();
    assert_eq!(last["model"], "qwen2.5-coder:7b");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_webui_background_tasks_are_routed_but_cannot_be_rated() {
    let mock = mock(models()).await;
    let router = RouterProcess::start(RouterOptions::new(vec![node(&mock.url(), "ollama")])).await;
    let title = "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n\
                 ### Output:\nJSON format: { \"title\": \"your concise title here\" }\n\
                 ### Chat History:\n<chat_history>\nUSER: Write a poem about the sea\n</chat_history>";
    let response = client()
        .post(format!("{}/api/chat", router.url()))
        .header("x-request-id", "owui-title-1")
        .json(&json!({"model": "smarterrouter/main", "stream": false,
                      "messages": [{"role": "user", "content": title}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-smarterrouter-model"));
    let (status, body, _) = post(
        &router,
        "/v1/feedback",
        json!({"response_id": "owui-title-1", "score": -1}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("background request"));
    assert!(router
        .logs()
        .contains("open-webui task (routed like any prompt; not rated)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_virtual_models_can_be_left_out_of_api_tags() {
    let mock = mock(models()).await;
    let router = RouterProcess::start(RouterOptions {
        extra: "  default_model: llama3.2:1b\n  list_virtual_models_in_tags: false\n".to_string(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let tags = get_json(format!("{}/api/tags", router.url())).await;
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"smarterrouter/main"), "{names:?}");
    assert_eq!(names.len(), 4);
}
