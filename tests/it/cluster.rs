//! Cluster mode: two router instances and one real `redis-server` (Debian's package, started on an
//! ephemeral port and stopped by PID). One rate limit across the instances; a miss on one, a hit
//! on the other; Redis stopped mid-test: every request still answered and `/health` degraded;
//! Redis back on the same port: sharing resumes; a flood of answers writes at most the store's
//! cap of decisions to Redis.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::feedback::{chosen as poem, feedback, twins};
use crate::harness::*;

/// A `redis-server` of our own; killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port, with nothing saved: a restart loses the data.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server (Debian package redis-server; scripts/install-prereqs installs it)",
            );
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many keys match `pattern` (`redis-cli --scan`).
    fn keys(&self, pattern: &str) -> usize {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--scan", "--pattern", pattern])
            .output()
            .expect("redis-cli (Debian package redis-tools, installed with redis-server)");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    /// Waits (up to 10 s) until A's answer is in the shared tier: it is written off the request.
    async fn until_shared_answers(&self, at_least: usize) {
        for _ in 0..200 {
            if self.keys("it:cache:*") >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {at_least} answers reached the shared tier in 10 s");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Redis calls may take this long before the router counts Redis as down (the default, 50 ms,
/// suits a LAN; a loaded CI machine can exceed it and would look like an outage).
const CLUSTER_TIMEOUT: &str = "    timeout_ms: 2000\n";

async fn instance(mock: &MockOllama, redis: &Redis, extra: &str) -> RouterProcess {
    instance_as(mock, redis, extra, false).await
}

/// `daemon`: started with `-d`, as the systemd unit runs it (Redis is reached only after the
/// fork, from a background service).
async fn instance_as(mock: &MockOllama, redis: &Redis, extra: &str, daemon: bool) -> RouterProcess {
    RouterProcess::start(RouterOptions {
        daemon,
        extra: format!(
            "  default_model: llama3.2:1b\n  cluster:\n    redis_url: {}\n    key_prefix: it\n{CLUSTER_TIMEOUT}{extra}",
            redis.url()
        ),
        ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
    })
    .await
}

async fn health(router: &RouterProcess) -> Value {
    get_json(format!("{}/health", router.url())).await
}

/// Waits until `/health` reports Redis as `want` (`up` or `down`).
async fn until_redis(router: &RouterProcess, want: &str) -> Value {
    for _ in 0..100 {
        let h = health(router).await;
        if h["cluster"]["redis"] == want {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("redis never {want}: {}", health(router).await);
}

async fn chat(router: &RouterProcess, content: &str) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(&json!({"model": "auto", "temperature": 0,
                      "messages": [{"role": "user", "content": content}]}))
        .send()
        .await
        .unwrap()
}

fn cache_header(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-smarterrouter-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_rate_limit_across_instances() {
    let redis = Redis::start();
    let mock = default_mock().await;
    let limits = "  rate_limit:\n    enabled: true\n    requests_per_minute: 6\n";
    let a = instance(&mock, &redis, limits).await;
    let b = instance_as(&mock, &redis, limits, true).await;
    assert!(b.daemon_pid().is_some(), "B runs as a daemon");
    until_redis(&a, "up").await;
    until_redis(&b, "up").await;
    // Seven requests of one client spread over both instances: six allowed, exactly one 429.
    let mut statuses = Vec::new();
    for i in 0..7 {
        let router = if i % 2 == 0 { &a } else { &b };
        statuses.push(chat(router, &format!("hello {i}")).await.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        6,
        "{statuses:?}"
    );
    assert_eq!(statuses[6], 429, "{statuses:?}");
    let refused = chat(&b, "one more").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-ratelimit-limit"], "6");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    // 6 a minute: a token each 10 s, counted from the first request.
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(mock.state.count("/v1/chat/completions"), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_miss_on_one_instance_is_a_hit_on_the_other() {
    let redis = Redis::start();
    let mock = mock(MockConfig {
        number_answers: true,
        ..MockConfig::default()
    })
    .await;
    let a = instance(&mock, &redis, "").await;
    let b = instance(&mock, &redis, "").await;
    until_redis(&a, "up").await;
    until_redis(&b, "up").await;

    let first = chat(&a, "What is Rust?").await;
    assert_eq!(cache_header(&first), "MISS");
    let first_body: Value = first.json().await.unwrap();
    redis.until_shared_answers(1).await;
    let second = chat(&b, "What is Rust?").await;
    assert_eq!(cache_header(&second), "HIT");
    assert_eq!(second.headers()["x-smarterrouter-model"], "llama3.2:1b");
    let second_body: Value = second.json().await.unwrap();
    assert_eq!(first_body, second_body, "the stored answer, as served by A");
    let third = chat(&b, "What is Rust?").await;
    assert_eq!(cache_header(&third), "HIT", "now in B's own tier");
    assert_eq!(
        mock.state.count("/v1/chat/completions"),
        1,
        "only A's miss went upstream"
    );
    let metrics = get_text(format!("{}/metrics", b.admin_url())).await;
    assert!(
        metrics.contains("smarterrouter_cache_shared_fills_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("smarterrouter_cluster_up 1"));

    // Invalidation on A clears the shared tier and, within a ping, B's own copy.
    let cleared = client()
        .post(format!("{}/admin/cache/invalidate", a.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    let mut after = String::new();
    for _ in 0..50 {
        after = cache_header(&chat(&b, "What is Rust?").await);
        if after == "MISS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(after, "MISS", "B's own copy outlived the invalidation");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_fails_open_and_sharing_resumes_when_it_is_back() {
    let mut redis = Redis::start();
    let mock = mock(MockConfig {
        number_answers: true,
        ..MockConfig::default()
    })
    .await;
    let limits = "  rate_limit:\n    enabled: true\n    requests_per_minute: 1000\n";
    let a = instance(&mock, &redis, limits).await;
    let b = instance(&mock, &redis, limits).await;
    assert_eq!(until_redis(&a, "up").await["status"], "ok");
    until_redis(&b, "up").await;

    redis.stop();
    // Every request is answered while Redis is gone, the first ones included.
    for i in 0..20 {
        let router = if i % 2 == 0 { &a } else { &b };
        let response = chat(router, &format!("while down {i}")).await;
        assert_eq!(response.status(), 200, "request {i}");
    }
    let down = until_redis(&a, "down").await;
    assert_eq!(down["status"], "degraded");
    let metrics = get_text(format!("{}/metrics", a.admin_url())).await;
    assert!(metrics.contains("smarterrouter_cluster_up 0"), "{metrics}");
    // Each instance keeps its own cache meanwhile.
    assert_eq!(cache_header(&chat(&a, "while down 0").await), "HIT");
    assert_eq!(cache_header(&chat(&b, "while down 0").await), "MISS");
    let warnings = a.logs().matches("cluster: Redis is unreachable").count();
    assert_eq!(warnings, 1, "one WARN per outage: {}", a.logs());

    redis.restart();
    assert_eq!(until_redis(&a, "up").await["status"], "ok");
    until_redis(&b, "up").await;
    assert!(a.logs().contains("cluster: Redis is reachable"));
    let first = chat(&a, "after the outage").await;
    assert_eq!(cache_header(&first), "MISS");
    redis.until_shared_answers(1).await;
    let second = chat(&b, "after the outage").await;
    assert_eq!(cache_header(&second), "HIT", "sharing resumed");
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_to_one_instance_for_another_ones_response_moves_scoring_everywhere() {
    let redis = Redis::start();
    let mock = mock(twins()).await;
    let a = instance(&mock, &redis, "  cache:\n    enabled: false\n").await;
    let b = instance(&mock, &redis, "  cache:\n    enabled: false\n").await;
    until_redis(&a, "up").await;
    until_redis(&b, "up").await;
    assert_eq!(
        poem(&a, "cl-1").await,
        "alpha:7b",
        "equal models: the first by name"
    );
    // B never saw cl-1: it finds A's decision in Redis (written off the request, so ask again
    // while it is not there yet; an unknown id changes nothing).
    let (mut status, mut body) = (0, Value::Null);
    for _ in 0..50 {
        (status, body) = feedback(&b, json!({"response_id": "cl-1", "score": -1})).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    // One rating per response across the cluster.
    let (status, body) = feedback(&a, json!({"response_id": "cl-1", "score": -1})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already rated"));
    for _ in 0..3 {
        let (status, _) = feedback(&b, json!({"model_name": "alpha:7b", "score": -1})).await;
        assert_eq!(status, 200);
    }
    // A reads B's feedback with its next ping (every half second) and routes away from alpha.
    let mut chosen = String::new();
    for i in 0..30 {
        chosen = poem(&a, &format!("cl-2-{i}")).await;
        if chosen == "beta:7b" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(chosen, "beta:7b", "B's feedback moved A's scoring");
    let explain = get_json(format!(
        "{}/admin/explain?prompt=Write%20a%20poem%20about%20the%20sea",
        a.admin_url()
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
}

async fn profiled_models(router: &RouterProcess) -> Vec<String> {
    let profiles = get_json(format!("{}/admin/profiles", router.admin_url())).await;
    profiles["profiles"]
        .as_array()
        .map(|p| {
            p.iter()
                .map(|p| p["model"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_model_is_profiled_once_for_the_cluster() {
    let redis = Redis::start();
    let mock = mock(twins()).await;
    let start = || {
        RouterProcess::start(RouterOptions {
            extra: format!(
                "  cluster:\n    redis_url: {}\n    key_prefix: it\n{CLUSTER_TIMEOUT}",
                redis.url()
            ),
            auto_profile: true,
            ..RouterOptions::new(vec![node(&mock.url(), "ollama")])
        })
    };
    let a = start().await;
    let b = start().await;
    let want = vec!["alpha:7b".to_string(), "beta:7b".to_string()];
    let mut both = false;
    for _ in 0..300 {
        if profiled_models(&a).await == want && profiled_models(&b).await == want {
            both = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        both,
        "a: {:?}, b: {:?}",
        profiled_models(&a).await,
        profiled_models(&b).await
    );
    // One prompt per category (six) per model, from one instance or the other, not both.
    assert_eq!(mock.state.count("/v1/chat/completions"), 12);
    let logs = format!("{}{}", a.logs(), b.logs());
    assert!(
        logs.contains("profile measured by another instance of the cluster"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_admitting_models_on_one_node_stay_within_its_budget() {
    const GB: u64 = 1_000_000_000;
    let redis = Redis::start();
    // A 10 GB node (budget 9 GB) with nothing loaded; two 5 GB models fit one at a time.
    let mock = mock(MockConfig {
        models: vec![
            MockModel {
                size: 5 * GB,
                ..MockModel::chat("a:1b")
            },
            MockModel {
                size: 5 * GB,
                ..MockModel::chat("b:1b")
            },
        ],
        vram_sim: Some(Vec::new()),
        latency: Duration::from_millis(300),
        ..MockConfig::default()
    })
    .await;
    let start = || {
        RouterProcess::start(RouterOptions {
            extra: format!(
                "  default_model: a:1b\n  cluster:\n    redis_url: {}\n    key_prefix: it\n{CLUSTER_TIMEOUT}  pools:\n    - name: gpu\n      nodes:\n        - url: {}\n          vram_total_gb: 10\n",
                redis.url(),
                mock.url()
            ),
            env: vec![("ROUTER_VRAM_MONITOR_INTERVAL".into(), "1".into())],
            ..RouterOptions::new(Vec::new())
        })
    };
    let a = start().await;
    let b = start().await;
    until_redis(&a, "up").await;
    until_redis(&b, "up").await;
    for router in [&a, &b] {
        let mut sampled = false;
        for _ in 0..50 {
            let v = get_json(format!("{}/admin/vram", router.admin_url())).await;
            if v["models_loaded"].as_object().is_some_and(|m| m.is_empty()) {
                sampled = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(sampled, "no /api/ps reading yet");
    }
    let ask = |router: &RouterProcess, model: &str| {
        client()
            .post(format!("{}/api/chat", router.url()))
            .json(&json!({"model": model, "stream": false,
                          "messages": [{"role": "user", "content": "hello"}]}))
            .send()
    };
    // At the same moment: each instance alone would see an empty node and admit its model.
    let (first, second) = tokio::join!(ask(&a, "a:1b"), ask(&b, "b:1b"));
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 503], "one fits, the other is refused");
    let refused = if first.status() == 503 { first } else { second };
    let body: Value = refused.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("the cluster's instances hold 5.0 GB"),
        "{error}"
    );
    // The node never had both models at once.
    let sent = mock.state.requests_to("/api/chat");
    assert_eq!(sent.len(), 1, "only the admitted model reached the node");
}

/// Answers per second beyond the store's cap (cache hits, so fast) on A: A keeps them for feedback
/// but does not write each to Redis, so the cluster's Redis load stays bounded under a flood.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_answers_shares_at_most_the_stores_cap_of_decisions() {
    let redis = Redis::start();
    let mock = default_mock().await;
    let a = instance(&mock, &redis, "").await;
    until_redis(&a, "up").await;
    let started = std::time::Instant::now();
    let sent = futures_util::future::join_all((0..16).map(|w| {
        let url = format!("{}/v1/chat/completions", a.url());
        async move {
            let client = client();
            let mut ids = Vec::new();
            for i in 0..40 {
                let id = format!("flood-{w}-{i}");
                let response = client
                    .post(&url)
                    .header("x-request-id", &id)
                    .json(&json!({"model": "auto", "temperature": 0,
                                  "messages": [{"role": "user", "content": "What is Rust?"}]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                ids.push(id);
            }
            ids
        }
    }))
    .await;
    // The cap is per calendar second: a burst of d seconds spans at most ceil(d) + 1 of them.
    let seconds = started.elapsed().as_secs_f64().ceil() as u64 + 1;
    let ids: Vec<String> = sent.into_iter().flatten().collect();
    let over_the_cap = decisions_over_the_cap(&a.admin_url()).await as usize;
    assert!(
        over_the_cap > 0,
        "{} answers in {seconds} s never went over the store's cap",
        ids.len()
    );
    // Decisions reach Redis off the request: give the last batch a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shared = redis.keys("it:decision:*");
    assert!(
        shared <= 100 * seconds as usize && shared <= ids.len() - over_the_cap,
        "{shared} decisions in Redis for {} answers in {seconds} s, {over_the_cap} over the cap",
        ids.len()
    );
    assert!(shared > 0, "the decisions within the cap are shared");
    // Every answer can still be rated on the instance that gave it.
    for id in ids.iter().rev().take(40) {
        let (status, body) = feedback(&a, json!({"response_id": id, "score": 0.5})).await;
        assert_eq!(status, 200, "{id}: {body}");
    }
}
