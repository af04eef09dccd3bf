//! The response cache: hits answered without the upstream, misses and bypasses that reach it,
//! keys that see every field that changes an answer, answers that are never stored, bounds,
//! the cache lock and the admin endpoints. Each test counts what the mock received.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::harness::*;

/// What a client saw.
struct Answer {
    status: u16,
    cache: String,
    request_id: String,
    model: String,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The answer's text, whatever the endpoint and framing.
    fn text(&self) -> String {
        let mut text = String::new();
        for line in self.body.lines() {
            let line = line.trim_start_matches("data: ").trim();
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            for piece in [
                &v["choices"][0]["message"]["content"],
                &v["choices"][0]["delta"]["content"],
                &v["message"]["content"],
                &v["response"],
            ] {
                if let Some(s) = piece.as_str() {
                    text.push_str(s);
                }
            }
        }
        text
    }
}

async fn send(url: String, body: &Value, headers: &[(&str, &str)]) -> Answer {
    let mut request = client().post(url).json(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (status, cache, request_id, model, content_type) = (
        response.status().as_u16(),
        header("x-smarterrouter-cache"),
        header("x-request-id"),
        header("x-smarterrouter-model"),
        header("content-type"),
    );
    let body = response.text().await.unwrap_or_default();
    Answer {
        status,
        cache,
        request_id,
        model,
        content_type,
        body,
    }
}

fn numbered_mock() -> MockConfig {
    MockConfig {
        number_answers: true,
        ..MockConfig::default()
    }
}

/// A numbering mock that offers `llama3.2:1b` and `other`.
async fn two_model_mock(other: MockModel) -> MockOllama {
    mock(MockConfig {
        models: vec![MockModel::chat("llama3.2:1b"), other],
        ..numbered_mock()
    })
    .await
}

/// A deterministic chat request (temperature 0), so the default policy caches it.
fn chat(content: &str) -> Value {
    json!({"model": "auto", "temperature": 0,
           "messages": [{"role": "user", "content": content}]})
}

fn ollama_chat(content: &str, stream: bool) -> Value {
    json!({"model": "llama3.2:1b", "stream": stream, "options": {"temperature": 0},
           "messages": [{"role": "user", "content": content}]})
}

async fn start(mock: &MockOllama, extra: &str) -> RouterProcess {
    RouterProcess::start(RouterOptions {
        extra: format!("  default_model: llama3.2:1b\n{extra}"),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await
}

async fn stats(router: &RouterProcess) -> Value {
    get_json(format!("{}/admin/cache/stats", router.admin_url())).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_is_answered_from_cache_without_the_upstream() {
    let mock = mock(numbered_mock()).await;
    let router = start(&mock, "").await;
    let url = format!("{}/v1/chat/completions", router.url());
    let first = send(url.clone(), &chat("What is Rust?"), &[]).await;
    let second = send(url.clone(), &chat("What is Rust?"), &[]).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.cache, "MISS");
    assert_eq!(second.cache, "HIT");
    assert_eq!(mock.state.count("/v1/chat/completions"), 1);
    assert!(first.text().contains("[answer 1]"), "{}", first.body);
    assert_eq!(
        first.json(),
        second.json(),
        "the stored answer, byte for byte"
    );
    assert_eq!(second.model, "llama3.2:1b");
    assert_eq!(second.json()["model"], "llama3.2:1b");
    assert!(!second.request_id.is_empty());
    assert_ne!(first.request_id, second.request_id, "a new id per request");

    // Counted in `logging`, which may run just after the client has its answer.
    let stats = stats_until(&router, |s| s["hits"] == 1 && s["misses"] == 1).await;
    assert_eq!(stats["entries"], 1);
    assert_eq!(stats["hits"], 1);
    assert_eq!(stats["misses"], 1);
    assert_eq!(stats["hit_rate"], 0.5);
    assert_eq!(stats["kinds"]["exact"]["hits"], 1);
    assert!(stats["bytes"].as_u64().unwrap() >= first.body.len() as u64);

    let metrics = get_text(format!("{}/metrics", router.url())).await;
    for line in [
        "smarterrouter_cache_hits_total{kind=\"exact\"} 1",
        "smarterrouter_cache_misses_total{kind=\"exact\"} 1",
        "smarterrouter_cache_hit_rate 0.5",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("smarterrouter_cache_bytes "), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_control_and_random_sampling_go_past_the_cache() {
    let mock = mock(numbered_mock()).await;
    let router = start(&mock, "").await;
    let url = format!("{}/v1/chat/completions", router.url());
    for header in ["no-cache", "no-store", "max-age=0, No-Store"] {
        let a = send(
            url.clone(),
            &chat("fresh please"),
            &[("cache-control", header)],
        )
        .await;
        assert_eq!((a.status, a.cache.as_str()), (200, "BYPASS"), "{header}");
    }
    assert_eq!(mock.state.count("/v1/chat/completions"), 3);

    // No temperature means the model's default: a new sample each time ("regenerate").
    let random = json!({"model": "auto", "messages": [{"role": "user", "content": "a poem"}]});
    let a = send(url.clone(), &random, &[]).await;
    let b = send(url.clone(), &random, &[]).await;
    assert_eq!((a.cache.as_str(), b.cache.as_str()), ("BYPASS", "BYPASS"));
    assert_ne!(a.text(), b.text());
    let hot = json!({"model": "auto", "temperature": 0.9,
                     "messages": [{"role": "user", "content": "a poem"}]});
    assert_eq!(send(url.clone(), &hot, &[]).await.cache, "BYPASS");
    // A seed makes the sample repeatable, so it is cached.
    let seeded = json!({"model": "auto", "temperature": 0.9, "seed": 7,
                        "messages": [{"role": "user", "content": "a poem"}]});
    assert_eq!(send(url.clone(), &seeded, &[]).await.cache, "MISS");
    assert_eq!(send(url.clone(), &seeded, &[]).await.cache, "HIT");
    // A negative seed means "pick one at random" to Ollama and llama.cpp.
    let random_seed = json!({"model": "auto", "temperature": 0.9, "seed": -1,
                             "messages": [{"role": "user", "content": "a poem"}]});
    assert_eq!(send(url.clone(), &random_seed, &[]).await.cache, "BYPASS");
    assert_eq!(mock.state.count("/v1/chat/completions"), 3 + 3 + 1 + 1);
    let logs = router.logs();
    assert!(
        logs.contains("random_sampling"),
        "the access log says why: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn random_sampling_is_cached_when_the_switch_is_off() {
    let mock = mock(numbered_mock()).await;
    let router = start(&mock, "  cache:\n    skip_random_sampling: false\n").await;
    let url = format!("{}/v1/chat/completions", router.url());
    let random = json!({"model": "auto", "messages": [{"role": "user", "content": "a poem"}]});
    assert_eq!(send(url.clone(), &random, &[]).await.cache, "MISS");
    assert_eq!(send(url.clone(), &random, &[]).await.cache, "HIT");
    assert_eq!(mock.state.count("/v1/chat/completions"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_can_be_turned_off() {
    let mock = mock(numbered_mock()).await;
    let router = RouterProcess::start(RouterOptions {
        env: vec![("ROUTER_CACHE_ENABLED".into(), "false".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let url = format!("{}/v1/chat/completions", router.url());
    let a = send(url.clone(), &chat("same"), &[]).await;
    let b = send(url.clone(), &chat("same"), &[]).await;
    assert_eq!((a.cache.as_str(), b.cache.as_str()), ("BYPASS", "BYPASS"));
    assert_eq!(mock.state.count("/v1/chat/completions"), 2);
    assert_eq!(stats(&router).await["enabled"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_is_the_whole_conversation_and_every_parameter() {
    let mock = mock(numbered_mock()).await;
    let router = start(&mock, "").await;
    let url = format!("{}/api/chat", router.url());

    // Same last line, different history: two calls, two answers.
    let history = |earlier: &str| {
        json!({"model": "llama3.2:1b", "stream": false, "options": {"temperature": 0},
               "messages": [{"role": "user", "content": earlier},
                            {"role": "assistant", "content": "ok"},
                            {"role": "user", "content": "and in French?"}]})
    };
    let a = send(url.clone(), &history("say hello"), &[]).await;
    let b = send(url.clone(), &history("say goodbye"), &[]).await;
    assert_eq!((a.cache.as_str(), b.cache.as_str()), ("MISS", "MISS"));
    assert_ne!(a.text(), b.text());
    assert_eq!(mock.state.count("/api/chat"), 2);

    let base = json!({"model": "llama3.2:1b", "stream": false,
                      "options": {"temperature": 0, "num_ctx": 2048, "seed": 1},
                      "messages": [{"role": "user", "content": "params"}]});
    assert_eq!(send(url.clone(), &base, &[]).await.cache, "MISS");
    // Key order, number spelling, keep_alive and user do not change the answer.
    let same = r#"{"messages":[{"content":"params","role":"user"}],"keep_alive":"1h",
        "options":{"seed":1,"num_ctx":2048.0,"temperature":0.0},"user":"u-1",
        "stream":false,"model":"llama3.2:1b"}"#;
    let response = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(same)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-smarterrouter-cache"], "HIT");
    assert_eq!(mock.state.count("/api/chat"), 3);

    // Any option that can change the answer is part of the key.
    let mut other_ctx = base.clone();
    other_ctx["options"]["num_ctx"] = json!(4096);
    let mut other_seed = base.clone();
    other_seed["options"]["seed"] = json!(2);
    let mut with_format = base.clone();
    with_format["format"] = json!("json");
    let mut with_system = base.clone();
    with_system["messages"] = json!([{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "params"}]);
    for (why, body) in [
        ("num_ctx", &other_ctx),
        ("seed", &other_seed),
        ("format", &with_format),
        ("system", &with_system),
    ] {
        assert_eq!(send(url.clone(), body, &[]).await.cache, "MISS", "{why}");
    }
    assert_eq!(mock.state.count("/api/chat"), 3 + 4);

    // What reached the upstream is the request as sent (options intact).
    let last = mock.state.requests_to("/api/chat").last().unwrap().json();
    assert_eq!(last["options"]["num_ctx"], 2048);
    assert_eq!(last["messages"][0]["content"], "be brief");

    // The Authorization header is forwarded (a node may check it): each key has its own entries.
    let alice = send(url.clone(), &base, &[("authorization", "Bearer alice")]).await;
    let bob = send(url.clone(), &base, &[("authorization", "Bearer bob")]).await;
    let alice_again = send(url.clone(), &base, &[("authorization", "Bearer alice")]).await;
    assert_eq!(
        (
            alice.cache.as_str(),
            bob.cache.as_str(),
            alice_again.cache.as_str()
        ),
        ("MISS", "MISS", "HIT")
    );
    assert_eq!(mock.state.count("/api/chat"), 3 + 4 + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_answer_replays_as_a_valid_stream_in_both_dialects() {
    let mock = mock(MockConfig {
        number_answers: true,
        tokens: 4,
        ..MockConfig::default()
    })
    .await;
    let router = start(&mock, "").await;

    let url = format!("{}/v1/chat/completions", router.url());
    let mut sse = chat("stream it");
    sse["stream"] = json!(true);
    let first = send(url.clone(), &sse, &[]).await;
    let second = send(url.clone(), &sse, &[]).await;
    assert_eq!(
        (first.cache.as_str(), second.cache.as_str()),
        ("MISS", "HIT")
    );
    assert!(second.content_type.starts_with("text/event-stream"));
    assert_eq!(first.body, second.body);
    assert!(
        second.body.trim_end().ends_with("data: [DONE]"),
        "{}",
        second.body
    );
    assert!(second.text().contains("[answer 1]"));
    // The same request without `stream` never gets the stream.
    let plain = send(url.clone(), &chat("stream it"), &[]).await;
    assert_eq!(plain.cache, "MISS");
    assert_eq!(plain.json()["object"], "chat.completion");
    assert_eq!(mock.state.count("/v1/chat/completions"), 2);

    let url = format!("{}/api/chat", router.url());
    let first = send(url.clone(), &ollama_chat("stream it", true), &[]).await;
    let second = send(url.clone(), &ollama_chat("stream it", true), &[]).await;
    assert_eq!(
        (first.cache.as_str(), second.cache.as_str()),
        ("MISS", "HIT")
    );
    assert_eq!(second.content_type, "application/x-ndjson");
    assert_eq!(first.body, second.body);
    let last: Value = serde_json::from_str(second.body.lines().last().unwrap()).unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["model"], "llama3.2:1b");
    let plain = send(url.clone(), &ollama_chat("stream it", false), &[]).await;
    assert_eq!(plain.cache, "MISS");
    assert_eq!(plain.json()["done"], true);
    assert_eq!(mock.state.count("/api/chat"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_and_cut_short_answers_are_never_stored() {
    let mock = mock(numbered_mock()).await;
    let router = start(&mock, "").await;
    let url = format!("{}/api/chat", router.url());
    let cases = [
        (
            ollama_chat(&format!("boom {}", mock_ollama::FAIL_500), false),
            "a 500",
        ),
        (
            ollama_chat(&format!("cut {}", mock_ollama::CUT_STREAM), true),
            "a cut stream",
        ),
        (
            ollama_chat(&format!("bad {}", mock_ollama::ERROR_LINE), true),
            "an error line",
        ),
    ];
    for (body, why) in cases {
        let before = mock.state.count("/api/chat");
        let first = send(url.clone(), &body, &[]).await;
        let after_first = mock.state.count("/api/chat");
        assert!(after_first > before, "{why}: reached the upstream");
        let second = send(url.clone(), &body, &[]).await;
        assert_ne!(second.cache, "HIT", "{why}: {}", second.body);
        assert!(
            mock.state.count("/api/chat") > after_first,
            "{why}: the repeat went upstream again"
        );
        assert_eq!(first.status, second.status, "{why}");
    }
    assert_eq!(stats(&router).await["entries"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_mid_stream_leaves_nothing_stored() {
    let mock = mock(MockConfig {
        number_answers: true,
        tokens: 30,
        token_interval: Duration::from_millis(50),
        ..MockConfig::default()
    })
    .await;
    let router = start(&mock, "").await;
    let url = format!("{}/api/chat", router.url());
    let body = ollama_chat("a long story", true);
    let response = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.headers()["x-smarterrouter-cache"], "MISS");
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(stream);
    let (_, completed, aborted) = (
        0,
        &mock.state.streams_completed,
        &mock.state.streams_aborted,
    );
    assert!(
        eventually(10, || completed.load(Ordering::SeqCst)
            + aborted.load(Ordering::SeqCst)
            >= 1)
        .await,
        "the upstream stream ended"
    );
    assert_eq!(mock.state.count("/api/chat"), 1);
    let again = send(url.clone(), &body, &[]).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        again.cache, "MISS",
        "nothing was stored from the abandoned stream"
    );
    assert_eq!(mock.state.count("/api/chat"), 2);
    assert!(again.text().contains("[answer 2]"));
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_concurrent_misses_make_one_upstream_call() {
    let mock = mock(MockConfig {
        number_answers: true,
        latency: Duration::from_millis(400),
        ..MockConfig::default()
    })
    .await;
    let router = start(&mock, "").await;
    let url = format!("{}/v1/chat/completions", router.url());
    let body = chat("everyone asks this");
    let answers =
        futures_util::future::join_all((0..8).map(|_| send(url.clone(), &body, &[]))).await;
    assert_eq!(
        mock.state.count("/v1/chat/completions"),
        1,
        "one upstream call"
    );
    let texts: Vec<String> = answers.iter().map(Answer::text).collect();
    assert!(
        texts
            .iter()
            .all(|t| t == &texts[0] && t.contains("[answer 1]")),
        "{texts:?}"
    );
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(answers.iter().filter(|a| a.cache == "MISS").count(), 1);
    assert_eq!(answers.iter().filter(|a| a.cache == "HIT").count(), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_expire_after_the_ttl() {
    let mock = mock(numbered_mock()).await;
    let router = RouterProcess::start(RouterOptions {
        env: vec![("ROUTER_CACHE_TTL_SECONDS".into(), "1".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let url = format!("{}/v1/chat/completions", router.url());
    assert_eq!(send(url.clone(), &chat("ttl"), &[]).await.cache, "MISS");
    assert_eq!(send(url.clone(), &chat("ttl"), &[]).await.cache, "HIT");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let late = send(url.clone(), &chat("ttl"), &[]).await;
    assert_eq!(late.cache, "MISS");
    assert!(
        late.text().contains("[answer 2]"),
        "a new answer: {}",
        late.body
    );
    assert_eq!(mock.state.count("/v1/chat/completions"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_entry_limit_evicts_the_least_recently_used() {
    let mock = mock(numbered_mock()).await;
    let router = start(&mock, "  cache:\n    max_entries: 2\n").await;
    let url = format!("{}/v1/chat/completions", router.url());
    for prompt in ["one", "two", "three"] {
        assert_eq!(send(url.clone(), &chat(prompt), &[]).await.cache, "MISS");
    }
    let s = stats_until(&router, |s| s["entries"] == 2 && s["evictions"] == 1).await;
    assert_eq!(
        (s["entries"].as_u64(), s["evictions"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    assert_eq!(send(url.clone(), &chat("three"), &[]).await.cache, "HIT");
    assert_eq!(
        send(url.clone(), &chat("one"), &[]).await.cache,
        "MISS",
        "evicted"
    );
    assert_eq!(mock.state.count("/v1/chat/completions"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_byte_budget_bounds_what_is_kept() {
    let mock = mock(MockConfig {
        number_answers: true,
        scripted: vec![mock_ollama::Script {
            model: "llama3.2:1b".into(),
            prompt_contains: "a long one".into(),
            reply: "word ".repeat(300),
        }],
        ..MockConfig::default()
    })
    .await;
    // Each answer is about 320 bytes: room for two.
    let router = start(
        &mock,
        "  cache:\n    max_bytes: 700\n    max_response_bytes: 600\n",
    )
    .await;
    let url = format!("{}/v1/chat/completions", router.url());
    let mut sizes = Vec::new();
    for prompt in ["alpha", "beta", "gamma", "delta"] {
        let a = send(url.clone(), &chat(prompt), &[]).await;
        assert_eq!(a.cache, "MISS");
        sizes.push(a.body.len());
    }
    assert!(sizes.iter().all(|s| (300..350).contains(s)), "{sizes:?}");
    let within = |s: &Value| {
        s["bytes"].as_u64().unwrap_or(u64::MAX) <= 700 && s["evictions"].as_u64().unwrap_or(0) >= 2
    };
    let s = stats_until(&router, within).await;
    assert!(within(&s), "{s}");
    assert_eq!(send(url.clone(), &chat("delta"), &[]).await.cache, "HIT");
    assert_eq!(send(url.clone(), &chat("alpha"), &[]).await.cache, "MISS");

    // An answer over max_response_bytes is served but not kept.
    let a = send(url.clone(), &chat("a long one"), &[]).await;
    let b = send(url.clone(), &chat("a long one"), &[]).await;
    assert_eq!((a.status, b.status), (200, 200));
    assert!(a.body.len() > 600, "{}", a.body.len());
    assert_eq!(b.cache, "MISS");
}

/// Polls `/admin/cache/stats` until `check` holds (evictions are purged in the background).
async fn stats_until(router: &RouterProcess, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats(router).await;
        if check(&s) || std::time::Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalidate_drops_all_or_one_models_answers() {
    let mock = two_model_mock(MockModel::chat("qwen2.5:0.5b")).await;
    let router = RouterProcess::start(RouterOptions {
        env: vec![("ROUTER_ADMIN_API_KEY".into(), "s3cret-admin-key".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    let url = format!("{}/api/chat", router.url());
    let for_model = |model: &str| {
        json!({"model": model, "stream": false, "options": {"temperature": 0},
               "messages": [{"role": "user", "content": "hello"}]})
    };
    for model in ["llama3.2:1b", "qwen2.5:0.5b"] {
        assert_eq!(
            send(url.clone(), &for_model(model), &[]).await.cache,
            "MISS"
        );
        assert_eq!(send(url.clone(), &for_model(model), &[]).await.cache, "HIT");
    }
    let admin = |path: &str| format!("{}{path}", router.admin_url());
    let anonymous = client()
        .post(admin("/admin/cache/invalidate"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "admin-protected");
    let anonymous = client()
        .get(admin("/admin/cache/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "admin-protected");

    let as_admin = |method: reqwest::Method, path: &str| {
        let request = client()
            .request(method, admin(path))
            .bearer_auth("s3cret-admin-key");
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let stats = || as_admin(reqwest::Method::GET, "/admin/cache/stats");
    assert_eq!(stats().await["entries"], 2);
    let one = as_admin(
        reqwest::Method::POST,
        "/admin/cache/invalidate?model=qwen2.5:0.5b",
    )
    .await;
    assert_eq!(one["invalidated"], 1);
    assert_eq!(one["entries"], 1);
    assert_eq!(
        send(url.clone(), &for_model("llama3.2:1b"), &[])
            .await
            .cache,
        "HIT"
    );
    assert_eq!(
        send(url.clone(), &for_model("qwen2.5:0.5b"), &[])
            .await
            .cache,
        "MISS"
    );
    let all = as_admin(reqwest::Method::POST, "/admin/cache/invalidate").await;
    assert_eq!(all["invalidated"], 2);
    assert_eq!(stats().await["entries"], 0);
    assert_eq!(
        send(url.clone(), &for_model("llama3.2:1b"), &[])
            .await
            .cache,
        "MISS"
    );
    assert_eq!(mock.state.count("/api/chat"), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_and_generate_are_cached_show_is_not() {
    let mock = two_model_mock(MockModel::embedding("nomic-embed-text")).await;
    let router = start(&mock, "").await;
    let embed = json!({"model": "nomic-embed-text", "input": ["a", "b"]});
    for path in ["/api/embed", "/v1/embeddings"] {
        let url = format!("{}{path}", router.url());
        assert_eq!(send(url.clone(), &embed, &[]).await.cache, "MISS", "{path}");
        let hit = send(url.clone(), &embed, &[]).await;
        assert_eq!(hit.cache, "HIT", "{path}");
        assert_eq!(mock.state.count(path), 1, "{path}");
    }
    let url = format!("{}/api/generate", router.url());
    let generate = json!({"model": "llama3.2:1b", "prompt": "hi", "stream": false,
                          "options": {"temperature": 0}});
    assert_eq!(send(url.clone(), &generate, &[]).await.cache, "MISS");
    assert_eq!(send(url.clone(), &generate, &[]).await.cache, "HIT");
    assert_eq!(mock.state.count("/api/generate"), 1);
    let url = format!("{}/api/show", router.url());
    let show = json!({"model": "llama3.2:1b"});
    let before = mock.state.count("/api/show");
    assert_eq!(send(url.clone(), &show, &[]).await.cache, "BYPASS");
    assert_eq!(send(url.clone(), &show, &[]).await.cache, "BYPASS");
    assert!(mock.state.count("/api/show") >= before + 2);
}

fn word_embedding_mock() -> MockConfig {
    MockConfig {
        word_embeddings: true,
        ..numbered_mock()
    }
}

/// The embedding wait for the semantic tests: the default (300 ms) suits a GPU node; a debug
/// build on a loaded CI machine can exceed it, and one slow embedding pauses the semantic tier.
const SEMANTIC_TIMEOUT: &str = "  cache:\n    semantic:\n      timeout_ms: 5000\n";

async fn start_semantic(nodes: Vec<(String, String)>) -> RouterProcess {
    RouterProcess::start(RouterOptions {
        extra: SEMANTIC_TIMEOUT.into(),
        env: vec![
            ("ROUTER_EMBED_MODEL".into(), "all-minilm".into()),
            ("ROUTER_LOG_FORMAT".into(), "json".into()),
        ],
        ..RouterOptions::new(nodes)
    })
    .await
}

fn with_system(content: &str, system: &str) -> Value {
    json!({"model": "auto", "temperature": 0,
           "messages": [{"role": "system", "content": system},
                        {"role": "user", "content": content}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reworded_last_turn_is_a_semantic_hit_and_a_near_miss_is_not() {
    let mock = mock(word_embedding_mock()).await;
    let router = start_semantic(vec![node(&mock.url(), "ollama")]).await;
    let url = format!("{}/v1/chat/completions", router.url());
    let asked = "Please tell me in detail what the capital city of France is today";
    let first = send(url.clone(), &chat(asked), &[]).await;
    assert_eq!(first.cache, "MISS");
    assert_eq!(
        mock.state.count("/api/embed"),
        1,
        "the last turn was embedded"
    );
    let embedded = mock.state.requests_to("/api/embed")[0].json();
    assert_eq!(embedded["input"], asked);
    assert_eq!(embedded["model"], "all-minilm:latest");

    // An exact repeat needs no embedding.
    assert_eq!(send(url.clone(), &chat(asked), &[]).await.cache, "HIT");
    assert_eq!(mock.state.count("/api/embed"), 1);

    // The same words, other case and punctuation: the bag-of-words mock says cosine 1.
    let reworded = send(
        url.clone(),
        &chat("please tell me, in detail, what the capital city of france is today?"),
        &[],
    )
    .await;
    assert_eq!(reworded.cache, "HIT", "{}", reworded.body);
    assert_eq!(reworded.text(), first.text(), "the stored answer");
    assert_eq!(mock.state.count("/v1/chat/completions"), 1);
    let response = client()
        .post(&url)
        .json(&chat(
            "Please tell me in detail what the capital city of FRANCE is today",
        ))
        .send()
        .await
        .unwrap();
    let similarity: f64 = response.headers()["x-smarterrouter-cache-similarity"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(similarity > 0.99, "{similarity}");

    // One word in thirteen differs (cosine 0.92, over the 0.85 threshold), but it is a name:
    // the guard refuses, and the request gets its own answer.
    let spain = send(
        url.clone(),
        &chat("Please tell me in detail what the capital city of Spain is today"),
        &[],
    )
    .await;
    assert_eq!(spain.cache, "MISS");
    assert!(spain.text().contains("[answer 2]"), "{}", spain.body);
    let numbers = send(
        url.clone(),
        &chat("Please tell me in detail what 17 times 23 is today"),
        &[],
    )
    .await;
    let other_numbers = send(
        url.clone(),
        &chat("Please tell me in detail what 17 times 24 is today"),
        &[],
    )
    .await;
    assert_eq!(
        (numbers.cache.as_str(), other_numbers.cache.as_str()),
        ("MISS", "MISS")
    );
    // Another system prompt is another context: never matched.
    let other_context = send(url.clone(), &with_system(asked, "answer in French"), &[]).await;
    assert_eq!(other_context.cache, "MISS");
    assert_eq!(mock.state.count("/v1/chat/completions"), 5);

    let settled =
        |s: &Value| s["kinds"]["semantic"]["hits"] == 2 && s["kinds"]["semantic"]["indexed"] == 5;
    let stats = stats_until(&router, settled).await;
    assert!(settled(&stats), "{stats}");
    let semantic_lines = || {
        router
            .logs()
            .lines()
            .filter(|l| l.contains("\"cache\":\"semantic\"") && l.contains("\"cache_hit\":true"))
            .count()
    };
    assert!(
        eventually(5, || semantic_lines() == 2).await,
        "{}",
        router.logs()
    );
    let metrics = get_text(format!("{}/metrics", router.url())).await;
    assert!(
        metrics.contains("smarterrouter_cache_hits_total{kind=\"semantic\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_embedder_that_is_down_leaves_exact_caching_working() {
    let chat_mock = mock(MockConfig {
        models: vec![MockModel::chat("llama3.2:1b")],
        ..numbered_mock()
    })
    .await;
    let embed_mock = mock(MockConfig {
        models: vec![MockModel::embedding("all-minilm:latest")],
        ..word_embedding_mock()
    })
    .await;
    let router = start_semantic(vec![
        node(&chat_mock.url(), "ollama"),
        node(&embed_mock.url(), "ollama"),
    ])
    .await;
    embed_mock.stop();
    let url = format!("{}/v1/chat/completions", router.url());
    let started = std::time::Instant::now();
    let first = send(
        url.clone(),
        &chat("what is the capital city of France"),
        &[],
    )
    .await;
    let second = send(
        url.clone(),
        &chat("what is the capital city of France"),
        &[],
    )
    .await;
    let reworded = send(
        url.clone(),
        &chat("What is the capital city of France?"),
        &[],
    )
    .await;
    assert_eq!(
        (first.status, second.status, reworded.status),
        (200, 200, 200)
    );
    assert_eq!(
        (first.cache.as_str(), second.cache.as_str()),
        ("MISS", "HIT")
    );
    assert_eq!(reworded.cache, "MISS", "no embedding, no semantic hit");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(chat_mock.state.count("/v1/chat/completions"), 2);
    let logs = router.logs();
    let warnings = logs
        .lines()
        .filter(|l| l.contains("cannot embed with router.cache.semantic.embed_model"))
        .count();
    assert_eq!(warnings, 1, "one warning per outage: {logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_works_in_daemon_mode_as_the_unit_runs_it() {
    let mock = mock(word_embedding_mock()).await;
    let router = RouterProcess::start(RouterOptions {
        daemon: true,
        extra: SEMANTIC_TIMEOUT.into(),
        env: vec![("ROUTER_EMBED_MODEL".into(), "all-minilm".into())],
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await;
    assert!(router.daemon_pid().is_some());
    let url = format!("{}/api/chat", router.url());
    let ask = |text: &str| {
        json!({"model": "llama3.2:1b", "stream": true, "options": {"seed": 3},
               "messages": [{"role": "user", "content": text}]})
    };
    let first = send(
        url.clone(),
        &ask("what is the capital city of France today"),
        &[],
    )
    .await;
    let repeat = send(
        url.clone(),
        &ask("what is the capital city of France today"),
        &[],
    )
    .await;
    let reworded = send(
        url.clone(),
        &ask("What is the capital city of France, today?"),
        &[],
    )
    .await;
    assert_eq!(
        (
            first.cache.as_str(),
            repeat.cache.as_str(),
            reworded.cache.as_str()
        ),
        ("MISS", "HIT", "HIT")
    );
    assert_eq!(repeat.body, first.body);
    assert_eq!(reworded.body, first.body);
    assert_eq!(mock.state.count("/api/chat"), 1);
    let settled =
        |s: &Value| s["kinds"]["exact"]["hits"] == 1 && s["kinds"]["semantic"]["hits"] == 1;
    let s = stats_until(&router, settled).await;
    assert!(settled(&s), "{s}");
}
