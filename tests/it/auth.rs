//! Client API keys (`router.auth.api_keys`, inline and from `api_keys_file`): without a valid
//! key a model request gets 401 in its dialect and never reaches a node; a key limited to some
//! models gets only those (403 for others, routing among them); answers are cached per tenant;
//! a response is rated only by the key that asked for it; a key can have its own rate; the
//! client's key is not passed on to the node.

use serde_json::{json, Value};

use crate::harness::*;

const TEAM_A: &str = "sk-team-a-0123456789abcdef";
const TEAM_B: &str = "sk-team-b-0123456789abcdef";

async fn start_with_keys(mock: &mock_ollama::MockOllama, rate_limit: bool) -> RouterProcess {
    let options = RouterOptions {
        extra: format!(
            "  auth:\n    api_keys:\n      - key: {TEAM_A}\n        name: team-a\n        models: [\"llama3.2:1b\"]\n    api_keys_file: KEYS_FILE\n  rate_limit:\n    enabled: {rate_limit}\n"
        ),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    };
    let mut router = RouterProcess::prepare(&options);
    let keys_file = router.dir().join("keys.yaml");
    std::fs::write(
        &keys_file,
        format!("- key: {TEAM_B}\n  name: team-b\n  requests_per_minute: 3\n"),
    )
    .unwrap();
    let yaml = std::fs::read_to_string(&router.conf)
        .unwrap()
        .replace("KEYS_FILE", &keys_file.display().to_string());
    std::fs::write(&router.conf, yaml).unwrap();
    router.launch(&options).await;
    router
}

async fn post(
    router: &RouterProcess,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = client().post(format!("{}{path}", router.url())).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_valid_key_nothing_reaches_a_node_and_keys_get_only_their_models() {
    let mock = default_mock().await;
    let router = start_with_keys(&mock, false).await;
    let body = chat_body("auto", "hello there");

    let missing = post(&router, "/v1/chat/completions", None, &body).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["error"]["type"], "authentication_error", "{error}");
    assert_eq!(error["error"]["code"], "invalid_api_key", "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));
    let wrong = post(
        &router,
        "/api/chat",
        Some("sk-team-a-0123456789abcdeX"),
        &body,
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let error: Value = wrong.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("not valid"),
        "Ollama's shape: {error}"
    );
    let listing = client()
        .get(format!("{}/v1/models", router.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 401, "listings need a key too");
    for open in ["/health", "/metrics", "/api/version"] {
        let r = client()
            .get(format!("{}{open}", router.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "{open} stays open for probes and Prometheus"
        );
    }
    assert_eq!(mock.state.count("/v1/chat/completions"), 0);
    assert_eq!(mock.state.count("/api/chat"), 0);

    // team-a may use llama3.2:1b only: a virtual model is routed among its models...
    let routed = post(&router, "/v1/chat/completions", Some(TEAM_A), &body).await;
    assert_eq!(routed.status(), 200);
    assert_eq!(routed.headers()["x-smarterrouter-model"], "llama3.2:1b");
    // ...and another model, named, is refused before any node sees it.
    let other = post(
        &router,
        "/v1/chat/completions",
        Some(TEAM_A),
        &chat_body("qwen2.5:7b", "write a long essay about the history of Rome"),
    )
    .await;
    assert_eq!(other.status(), 403);
    let error: Value = other.json().await.unwrap();
    assert_eq!(error["error"]["type"], "permission_error");
    assert_eq!(error["error"]["code"], "permission_denied");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("team-a"));
    // Its listings show its models (and the virtual ones) only.
    let listed = |path: &'static str, key: &'static str| {
        let url = format!("{}{path}", router.url());
        async move {
            let v: Value = client()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v.to_string()
        }
    };
    for path in ["/v1/models", "/api/tags", "/api/ps"] {
        let a = listed(path, TEAM_A).await;
        assert!(
            !a.contains("qwen2.5:7b") && a.contains("llama3.2:1b"),
            "{path}: {a}"
        );
        assert!(listed(path, TEAM_B).await.contains("qwen2.5:7b") || path == "/api/ps");
    }
    // team-b (from the keys file) has every model.
    let b = post(
        &router,
        "/api/chat",
        Some(TEAM_B),
        &chat_body("qwen2.5:7b", "hi"),
    )
    .await;
    assert_eq!(b.status(), 200);
    assert_eq!(b.headers()["x-smarterrouter-model"], "qwen2.5:7b");

    let sent = mock.state.requests_to("/v1/chat/completions");
    assert_eq!(sent.len(), 1, "only the allowed request reached the node");
    assert_eq!(sent[0].json()["model"], "llama3.2:1b");
    assert!(
        mock.state
            .requests()
            .iter()
            .all(|r| !r.headers.contains_key("authorization")),
        "the client's key is not passed on to the node"
    );
    let logs = router.logs();
    assert!(
        logs.contains("tenant=\"team-a\""),
        "the access line names the tenant:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_are_cached_per_tenant_and_rated_only_by_their_owner() {
    let mock = default_mock().await;
    let router = start_with_keys(&mock, false).await;
    let body = json!({"model": "llama3.2:1b", "temperature": 0,
                      "messages": [{"role": "user", "content": "what is a tenant?"}]});
    let first = post(&router, "/v1/chat/completions", Some(TEAM_A), &body).await;
    assert_eq!(first.headers()["x-smarterrouter-cache"], "MISS");
    let id = first.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let again = post(&router, "/v1/chat/completions", Some(TEAM_A), &body).await;
    assert_eq!(again.headers()["x-smarterrouter-cache"], "HIT");
    let other_tenant = post(&router, "/v1/chat/completions", Some(TEAM_B), &body).await;
    assert_eq!(
        other_tenant.headers()["x-smarterrouter-cache"],
        "MISS",
        "another tenant never gets team-a's answer"
    );
    assert_eq!(mock.state.count("/v1/chat/completions"), 2);

    let rating = json!({"response_id": id, "score": 1});
    let stolen = post(&router, "/v1/feedback", Some(TEAM_B), &rating).await;
    assert_eq!(stolen.status(), 403);
    let error: Value = stolen.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another API key"),
        "{error}"
    );
    let anonymous = post(&router, "/v1/feedback", None, &rating).await;
    assert_eq!(anonymous.status(), 401);
    let owner = post(&router, "/v1/feedback", Some(TEAM_A), &rating).await;
    assert_eq!(owner.status(), 200, "{}", owner.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_has_its_own_rate_and_is_counted_by_key_not_address() {
    let mock = default_mock().await;
    let router = start_with_keys(&mock, true).await;
    let body = chat_body("llama3.2:1b", "hi");
    for i in 0..3 {
        let r = post(&router, "/api/chat", Some(TEAM_B), &body).await;
        assert_eq!(r.status(), 200, "{i}");
    }
    let refused = post(&router, "/api/chat", Some(TEAM_B), &body).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-ratelimit-limit"], "3");
    // Same address, another key: its own budget (the default 60 a minute).
    for i in 0..5 {
        let a = post(&router, "/api/chat", Some(TEAM_A), &body).await;
        assert_eq!(a.status(), 200, "{i}");
    }
    assert_eq!(mock.state.count("/api/chat"), 8);
    // Wrong keys count against the address (60 a minute here): guessing is throttled. The
    // bucket gets a token back each second, so a slow machine may see a few more 401s.
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    while statuses.last() != Some(&429) {
        assert!(statuses.len() < 200, "guessing was never throttled");
        let r = post(
            &router,
            "/api/chat",
            Some("sk-guess-0123456789abcdef"),
            &body,
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    let refilled = started.elapsed().as_secs_f64().ceil() as usize;
    let unauthorized = statuses.len() - 1;
    assert!(
        statuses[..unauthorized].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert!(
        (60..=60 + refilled).contains(&unauthorized),
        "{unauthorized} guesses answered 401 before the 429, in {:?}",
        started.elapsed()
    );
    assert_eq!(mock.state.count("/api/chat"), 8);
}

#[test]
fn bad_key_entries_are_reported_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.yaml");
    std::fs::write(&keys, "- key: short\n  nmae: x\n").unwrap();
    let conf = dir.path().join("router.yaml");
    std::fs::write(
        &conf,
        format!(
            "router:\n  auth:\n    api_keys:\n      - key: {TEAM_A}\n        requests_per_minute: 0\n      - key: {TEAM_A}\n      - key: {TEAM_B}\n        name: key-abc\n      - key: sk-team-c-0123456789abcdef\n        name: t\n        models: [a]\n      - key: sk-team-d-0123456789abcdef\n        name: t\n    api_keys_file: {}\n",
            keys.display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_smarterrouter"))
        .args(["--validate", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "router.auth.api_keys[0].requests_per_minute: must be at least 1",
        "router.auth.api_keys[1].key: the same key is listed twice",
        "[0].nmae: unknown key",
        "router.auth.api_keys[2].name: names starting with key- are kept",
        "router.auth.api_keys[4]: name \"t\" is also used by an entry with other models",
        &format!("{}[0].key: must be at least 16 characters", keys.display()),
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
