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
    let (line, entry) = access_line(&router, "log-test-1").await;
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
    assert_eq!(
        entry["cache"], "random_sampling",
        "no temperature: not cached"
    );
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

/// The access line of request `id` (waits for it), raw and parsed.
async fn access_line(router: &RouterProcess, id: &str) -> (String, Value) {
    for _ in 0..100 {
        if let Some(line) = router.logs().lines().find(|l| l.contains(id)) {
            return (line.to_string(), serde_json::from_str(line).unwrap());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no access line for {id}; log:\n{}", router.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_hit_is_logged_as_one() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        env: vec![("ROUTER_LOG_FORMAT".into(), "json".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let body = serde_json::json!({"model": "auto", "temperature": 0,
                                  "messages": [{"role": "user", "content": "hi"}]});
    for id in ["log-miss-1", "log-hit-2"] {
        let response = client()
            .post(format!("{}/v1/chat/completions", router.url()))
            .header("x-request-id", id)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-request-id"], id);
    }
    let (_, miss) = access_line(&router, "log-miss-1").await;
    let (_, hit) = access_line(&router, "log-hit-2").await;
    assert_eq!(
        (miss["cache_hit"].clone(), miss["cache"].clone()),
        (false.into(), "miss".into())
    );
    assert_eq!(
        (hit["cache_hit"].clone(), hit["cache"].clone()),
        (true.into(), "exact".into())
    );
    assert_eq!(hit["model_selected"], "llama3.2:1b");
    assert_eq!(hit["status"], 200);
    assert_eq!(hit["node"], "", "a hit reaches no node");
    assert_eq!(mock.state.count("/v1/chat/completions"), 1);
}

/// A secret planted in a prompt, a query string and headers (the client's key, a cookie)
/// appears in no log line, in either format, for answers, errors, streams and refusals.
#[tokio::test(flavor = "multi_thread")]
async fn no_prompt_key_or_authorization_header_reaches_the_log() {
    const PROMPT: &str = "SECRET-PROMPT-7f3a9c";
    const KEY: &str = "SECRET-KEY-0b1d2e3f4a5b6c7d";
    const QUERY: &str = "SECRET-QUERY-99e1";
    let mock = default_mock().await;
    for (format, auth) in [("json", true), ("text", false)] {
        let extra = if auth {
            format!("  auth:\n    api_keys:\n      - key: {KEY}\n        name: logs-test\n")
        } else {
            String::new()
        };
        let router = RouterProcess::start(RouterOptions {
            extra,
            env: vec![
                ("ROUTER_LOG_FORMAT".into(), format.into()),
                ("ROUTER_LOG_LEVEL".into(), "info".into()),
            ],
            ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
        })
        .await;
        let wrong = format!("{KEY}-wrong");
        let requests = [
            (
                format!("/v1/chat/completions?token={QUERY}"),
                chat_body("auto", PROMPT),
                KEY,
            ),
            (
                "/api/chat".to_string(),
                serde_json::json!({"model": "auto", "stream": true,
                    "messages": [{"role": "user", "content": PROMPT}]}),
                KEY,
            ),
            (
                "/v1/chat/completions".to_string(),
                serde_json::json!({"model": "auto", "messages": PROMPT}),
                KEY,
            ),
            (
                format!("/v1/nope?token={QUERY}"),
                chat_body("auto", PROMPT),
                KEY,
            ),
            (
                "/v1/chat/completions".to_string(),
                chat_body("auto", PROMPT),
                wrong.as_str(),
            ),
        ];
        let mut statuses = Vec::new();
        for (path, body, key) in &requests {
            let response = client()
                .post(format!("{}{path}", router.url()))
                .bearer_auth(key)
                .header("cookie", format!("session={KEY}"))
                .json(body)
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
            response.text().await.unwrap();
        }
        let wrong_key = if auth { 401 } else { 200 };
        assert_eq!(statuses, [200, 200, 400, 404, wrong_key]);
        assert!(
            mock.state
                .requests()
                .iter()
                .any(|r| String::from_utf8_lossy(&r.body).contains(PROMPT)),
            "the prompts did reach the node"
        );
        // Every request has its access line before the log is read.
        assert!(
            eventually(5, || router.logs().matches("request").count() >= 5).await,
            "{}",
            router.logs()
        );
        let logs = router.logs();
        for secret in [PROMPT, KEY, QUERY, "Bearer", "session="] {
            let leaked: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
            assert!(
                leaked.is_empty(),
                "{format}: {secret} in the log:\n{leaked:#?}"
            );
        }
    }
}
