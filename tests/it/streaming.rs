//! Streams pass through frame by frame; a client that leaves mid-stream frees the upstream.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::harness::*;

fn slow_mock_config(tokens: usize, interval_ms: u64) -> MockConfig {
    MockConfig {
        tokens,
        token_interval: Duration::from_millis(interval_ms),
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sse_first_frame_arrives_before_upstream_finishes() {
    let mock = mock(slow_mock_config(6, 200)).await;
    let router = RouterProcess::start_default(&mock).await;
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .json(
            &json!({"model": "auto", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "count"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(response.headers()["x-smarterrouter-model"], "llama3.2:1b");
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "), "{first:?}");
    assert_eq!(
        mock.state.streams_completed.load(Ordering::SeqCst),
        0,
        "the first frame reached the client while the upstream was still streaming"
    );
    let mut all = first.to_vec();
    while let Some(chunk) = stream.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(all).unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let usage: Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 6);
    assert_eq!(
        events.len(),
        6 + 1 + 1 + 1,
        "6 tokens, finish, usage, [DONE]"
    );
    assert_eq!(mock.state.streams_completed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_chat_streams_ndjson_by_default() {
    let mock = mock(slow_mock_config(4, 100)).await;
    let router = RouterProcess::start_default(&mock).await;
    let response = client()
        .post(format!("{}/api/chat", router.url()))
        .json(&chat_body("smarterrouter/main", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(mock.state.streams_completed.load(Ordering::SeqCst), 0);
    let mut all = first.to_vec();
    while let Some(chunk) = stream.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    let lines: Vec<Value> = String::from_utf8(all)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["done"], false);
    assert_eq!(lines[4]["done"], true);
    assert_eq!(lines[4]["eval_count"], 4);
    assert_eq!(
        mock.state.requests_to("/api/chat")[0].json()["model"],
        "llama3.2:1b"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_abort_mid_stream_frees_the_upstream_and_router_keeps_serving() {
    let mock = mock(slow_mock_config(40, 100)).await;
    let mut router = RouterProcess::start_default(&mock).await;
    {
        let response = client()
            .post(format!("{}/api/generate", router.url()))
            .json(&json!({"model": "llama3.2:1b", "prompt": "long story"}))
            .send()
            .await
            .unwrap();
        let mut stream = response.bytes_stream();
        let first = stream.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        // Dropping the stream and client closes the connection mid-answer.
    }
    let aborted = eventually(10, || {
        mock.state.streams_aborted.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(
        aborted,
        "upstream stream was not abandoned: {:?}",
        mock.state.streams()
    );
    assert_eq!(mock.state.streams_completed.load(Ordering::SeqCst), 0);
    assert!(router.alive());
    // The count drops when the request's last phase runs, just after the upstream is dropped.
    let mut health = Value::Null;
    for _ in 0..50 {
        let response = client()
            .get(format!("{}/health", router.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        health = response.json().await.unwrap();
        if health["nodes"][0]["in_flight"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        health["nodes"][0]["in_flight"], 0,
        "the aborted request is no longer counted"
    );
    let response = client()
        .post(format!("{}/api/generate", router.url()))
        .json(&json!({"model": "llama3.2:1b", "prompt": "again", "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
