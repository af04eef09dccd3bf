//! Rate limits on the proxy port: a client over its rate gets 429 in its dialect with
//! `Retry-After` and `x-ratelimit-*`, other clients go on, and the client is let back in as soon
//! as its bucket refills; `X-Forwarded-For` counts only from a trusted proxy.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

async fn chat(
    router: &RouterProcess,
    path: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .post(format!("{}{path}", router.url()))
        .json(&chat_body("llama3.2:1b", "hi"));
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_over_its_rate_gets_429_and_is_let_back_in_when_it_slows_down() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        extra: "  default_model: llama3.2:1b\n  rate_limit:\n    trusted_proxies: [127.0.0.1]\n"
            .into(),
        env: vec![
            ("ROUTER_RATE_LIMIT_ENABLED".into(), "true".into()),
            ("ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE".into(), "120".into()),
        ],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    // 120 a minute: a burst of 120, then one every half second (so a slow machine sees a
    // token back for each half second the burst takes).
    let started = std::time::Instant::now();
    let mut allowed = 0;
    let refused = loop {
        let response = chat(&router, "/v1/chat/completions", Some("203.0.113.1")).await;
        if response.status() == 429 {
            break response;
        }
        assert_eq!(response.status(), 200, "{allowed}");
        allowed += 1;
        assert!(allowed <= 400, "never limited");
    };
    let refilled = (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    assert!(
        (120..=120 + refilled).contains(&allowed),
        "{allowed} allowed in {:?}",
        started.elapsed()
    );
    let header = |name: &str| refused.headers()[name].to_str().unwrap().to_string();
    assert_eq!(header("retry-after"), "1");
    assert_eq!(header("x-ratelimit-limit"), "120");
    assert_eq!(header("x-ratelimit-remaining"), "0");
    assert!(header("x-ratelimit-reset").parse::<u64>().unwrap() >= 1);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    // The bucket refills continuously, so a token may come back between the refusal above and
    // this request (at most one per half second): keep asking until the Ollama dialect is refused.
    let mut ollama_allowed = 0;
    let ollama = loop {
        let response = chat(&router, "/api/chat", Some("203.0.113.1")).await;
        if response.status() == 429 {
            break response;
        }
        assert_eq!(response.status(), 200);
        ollama_allowed += 1;
        assert!(ollama_allowed <= 5, "the Ollama dialect was never limited");
    };
    let body: Value = ollama.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many requests"),
        "{body}"
    );
    assert_eq!(
        mock.state.count("/v1/chat/completions"),
        allowed,
        "refused requests never reach a node"
    );
    assert_eq!(mock.state.count("/api/chat"), ollama_allowed);

    // Another client behind the same (trusted) proxy has its own bucket.
    assert_eq!(
        chat(&router, "/v1/chat/completions", Some("203.0.113.2"))
            .await
            .status(),
        200
    );
    // Health and metrics are never limited (load balancers and Prometheus poll them).
    assert_eq!(
        client()
            .get(format!("{}/health", router.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Back in once the bucket refills a token (half a second at 120 a minute).
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        chat(&router, "/v1/chat/completions", Some("203.0.113.1"))
            .await
            .status(),
        200
    );
    let metrics = get_text(format!("{}/metrics", router.url())).await;
    assert!(
        metrics.contains("smarterrouter_rate_limited_total 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        env: vec![
            ("ROUTER_RATE_LIMIT_ENABLED".into(), "true".into()),
            ("ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE".into(), "2".into()),
        ],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    assert_eq!(
        chat(&router, "/v1/chat/completions", Some("198.51.100.1"))
            .await
            .status(),
        200
    );
    assert_eq!(
        chat(&router, "/v1/chat/completions", Some("198.51.100.2"))
            .await
            .status(),
        200
    );
    // No trusted proxies: every request counts for 127.0.0.1, whatever it claims.
    assert_eq!(
        chat(&router, "/v1/chat/completions", Some("198.51.100.3"))
            .await
            .status(),
        429
    );
}

/// The body limit holds under concurrent load: oversized uploads mixed with normal requests,
/// all at once, each get their own answer, and only the normal ones reach the node.
#[tokio::test(flavor = "multi_thread")]
async fn body_limits_hold_under_concurrent_load() {
    let mock = default_mock().await;
    let router = RouterProcess::start(RouterOptions {
        extra: "  max_body_bytes: 65536\n".into(),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let big = chat_body("llama3.2:1b", &"x".repeat(200_000));
    let small = chat_body("llama3.2:1b", "hi");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let body = if i % 2 == 0 {
            big.clone()
        } else {
            small.clone()
        };
        let url = format!("{}/v1/chat/completions", router.url());
        tasks.push(tokio::spawn(async move {
            let r = client().post(url).json(&body).send().await.unwrap();
            (i, r.status().as_u16())
        }));
    }
    for task in tasks {
        let (i, status) = task.await.unwrap();
        assert_eq!(status, if i % 2 == 0 { 413 } else { 200 }, "request {i}");
    }
    assert_eq!(mock.state.count("/v1/chat/completions"), 32);
}
