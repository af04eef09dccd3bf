//! `/metrics` after known traffic: every series the README lists, with the values that traffic
//! must give, on both listeners, and `promtool check metrics` accepts the text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;

use crate::harness::*;

/// One sample line: name, labels, value.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            Some((name.to_string(), labels, value.parse().ok()?))
        })
        .collect()
}

/// The value of the series `name` whose labels include `labels`, summed over the others.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// A series, the labels it must have, and its value.
type Expected<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

fn promtool() -> PathBuf {
    if let Ok(path) = std::env::var("PROMTOOL") {
        return path.into();
    }
    let cache = std::env::var("SMARTERROUTER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/smarterrouter")
        });
    let unpacked = cache.join("promtool/usr/bin/promtool");
    if unpacked.exists() {
        return unpacked;
    }
    PathBuf::from("promtool")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_series_has_the_value_known_traffic_gives_and_promtool_accepts_it() {
    let main_node = default_mock().await;
    let doomed = mock(mock_ollama::MockConfig {
        models: vec![mock_ollama::MockModel::chat("phi3:mini")],
        ..Default::default()
    })
    .await;
    let router = RouterProcess::start(RouterOptions {
        extra: "  rate_limit:\n    enabled: true\n    requests_per_minute: 1\n    chat_requests_per_minute: 1000\n".into(),
        // No rediscovery mid-test: the stopped node must be met by the proxy (a connect error),
        // not marked down by a discovery pass first.
        discovery_secs: 600,
        ..RouterOptions::new(vec![
            node(&main_node.url(), "ollama"),
            node(&doomed.url(), "ollama"),
        ])
    })
    .await;
    let post = |path: &str, body: serde_json::Value| {
        client()
            .post(format!("{}{path}", router.url()))
            .json(&body)
            .send()
    };
    // Two streamed coding prompts the router routes, with usage in the stream.
    let mut chosen_model = String::new();
    for _ in 0..2 {
        let r = post(
            "/v1/chat/completions",
            json!({"model": "auto", "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "write a python function that parses a csv file"}]}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        chosen_model = r.headers()["x-smarterrouter-model"]
            .to_str()
            .unwrap()
            .to_string();
        r.text().await.unwrap();
    }
    // One named Ollama chat of the other model: Ollama's own counts (5 tokens in 0.2 s, says
    // the mock).
    let named = if chosen_model == "llama3.2:1b" {
        "qwen2.5:7b"
    } else {
        "llama3.2:1b"
    };
    let r = post(
        "/api/chat",
        json!({"model": named, "stream": false,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // A model nobody has: 404 model_not_found.
    let r = post("/v1/chat/completions", chat_body("nope:1b", "hi"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Embeddings count against requests_per_minute (1): the second is refused.
    for expected in [200, 429] {
        let r = post(
            "/api/embed",
            json!({"model": "all-minilm:latest", "input": "x"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), expected);
    }
    // A node that goes away after discovery: a refused connection, counted against it.
    doomed.stop();
    let r = post("/api/chat", chat_body("phi3:mini", "hi"))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    // Pingora's logging phase, which counts a request, runs after the response is on its way:
    // wait (bounded) until the last one, the 503, is counted.
    let mut text = get_text(format!("{}/metrics", router.url())).await;
    for _ in 0..40 {
        let counted = [("endpoint", "/api/chat"), ("status", "503")];
        if value(&text, "smarterrouter_requests_total", &counted) >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        text = get_text(format!("{}/metrics", router.url())).await;
    }
    let admin = get_text(format!("{}/metrics", router.admin_url())).await;
    for name in [
        "smarterrouter_request_duration_seconds_count",
        "smarterrouter_errors_total",
    ] {
        assert!(admin.contains(name), "the admin listener serves {name} too");
    }
    let chosen = value(
        &text,
        "smarterrouter_model_selections_total",
        &[("category", "coding")],
    );
    assert_eq!(chosen, 2.0, "{text}");
    let chat = [("endpoint", "/v1/chat/completions")];
    let doomed_url = doomed.url();
    let checks: Vec<Expected> = vec![
        (
            "smarterrouter_requests_total",
            vec![("endpoint", "/v1/chat/completions"), ("status", "200")],
            2.0,
        ),
        (
            "smarterrouter_requests_total",
            vec![("endpoint", "/v1/chat/completions"), ("status", "404")],
            1.0,
        ),
        (
            "smarterrouter_request_duration_seconds_count",
            chat.to_vec(),
            3.0,
        ),
        ("smarterrouter_overhead_seconds_count", chat.to_vec(), 3.0),
        (
            "smarterrouter_errors_total",
            vec![
                ("endpoint", "/v1/chat/completions"),
                ("type", "model_not_found"),
            ],
            1.0,
        ),
        (
            "smarterrouter_errors_total",
            vec![("endpoint", "/api/embed"), ("type", "rate_limit_exceeded")],
            1.0,
        ),
        (
            "smarterrouter_errors_total",
            vec![("endpoint", "/api/chat"), ("type", "no_healthy_node")],
            1.0,
        ),
        ("smarterrouter_rate_limited_total", vec![], 1.0),
        (
            "smarterrouter_upstream_errors_total",
            vec![("node", doomed_url.as_str()), ("kind", "connect")],
            1.0,
        ),
        (
            "smarterrouter_time_to_first_token_seconds_count",
            vec![],
            2.0,
        ),
        (
            "smarterrouter_tokens_total",
            vec![("model", named), ("type", "output")],
            5.0,
        ),
        (
            "smarterrouter_tokens_total",
            vec![("model", chosen_model.as_str()), ("type", "output")],
            10.0,
        ),
        (
            "smarterrouter_output_tokens_per_second_count",
            vec![("model", named)],
            1.0,
        ),
        (
            "smarterrouter_output_tokens_per_second_sum",
            vec![("model", named)],
            25.0,
        ),
        (
            "smarterrouter_time_to_first_token_seconds_count",
            vec![("model", chosen_model.as_str())],
            2.0,
        ),
        ("smarterrouter_cache_hit_rate", vec![], 0.0),
    ];
    for (name, labels, expected) in &checks {
        let got = value(&text, name, labels);
        assert!(
            (got - expected).abs() < 1e-6,
            "{name}{labels:?}: {got}, expected {expected}\n{text}"
        );
    }
    assert!(value(&text, "smarterrouter_tokens_total", &[("type", "input")]) > 0.0);
    assert!(
        text.contains("smarterrouter_vram_utilization_pct "),
        "{text}"
    );
    // Labels are templates and discovered names: no raw path, no unknown model.
    assert!(!text.contains("nope:1b"), "{text}");

    let file = router.dir().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let tool = promtool();
    let checked = std::process::Command::new(&tool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} cannot run ({e}): run scripts/install-prereqs, which unpacks promtool",
                tool.display()
            )
        });
    assert!(
        checked.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
