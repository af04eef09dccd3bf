//! Bodies around Pingora's 64 KiB retry buffer reach the node whole, with the model rewritten.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::harness::*;

const KIB: usize = 1024;

/// A chat body of exactly `size` bytes (the padding is in the message content).
fn body_of_size(size: usize) -> Vec<u8> {
    let skeleton =
        json!({"model": "auto", "messages": [{"role": "user", "content": ""}]}).to_string();
    let padding = size - skeleton.len();
    let body =
        json!({"model": "auto", "messages": [{"role": "user", "content": "x".repeat(padding)}]})
            .to_string()
            .into_bytes();
    assert_eq!(body.len(), size);
    body
}

async fn send_and_check(router: &RouterProcess, mock: &MockOllama, size: usize) {
    let before = mock.state.count("/v1/chat/completions");
    let body = body_of_size(size);
    let response = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let chosen = response.headers()["x-smarterrouter-model"]
        .to_str()
        .unwrap()
        .to_string();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "size {size}: {text}");
    assert_eq!(mock.state.count("/v1/chat/completions"), before + 1);
    let seen = mock
        .state
        .requests_to("/v1/chat/completions")
        .pop()
        .unwrap();
    let mut expected: Value = serde_json::from_slice(&body).unwrap();
    assert_ne!(chosen, "auto");
    expected["model"] = json!(chosen);
    let expected = serde_json::to_vec(&expected).unwrap();
    assert_eq!(
        seen.body.len(),
        expected.len(),
        "size {size}: full body upstream"
    );
    assert_eq!(seen.headers["content-length"], expected.len().to_string());
    assert!(seen.body == expected, "size {size}: body differs");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_around_64_kib_and_2_mib_arrive_whole() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    for size in [
        64 * KIB - 1,
        64 * KIB,
        64 * KIB + 1,
        200 * KIB,
        2 * KIB * KIB,
    ] {
        send_and_check(&router, &mock, size).await;
    }
}

fn chunked(body: Vec<u8>) -> reqwest::Body {
    let pieces: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(16 * KIB)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(pieces))
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_uploads_small_pass_large_get_413() {
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let small = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .header("content-type", "application/json")
        .body(chunked(body_of_size(40 * KIB)))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    let chosen = small.headers()["x-smarterrouter-model"]
        .to_str()
        .unwrap()
        .to_string();
    let seen = mock
        .state
        .requests_to("/v1/chat/completions")
        .pop()
        .unwrap();
    assert_eq!(seen.json()["model"], chosen.as_str());
    assert_ne!(chosen, "auto");
    assert_eq!(seen.headers["content-length"], seen.body.len().to_string());
    assert!(!seen.headers.contains_key("transfer-encoding"));

    let large = client()
        .post(format!("{}/v1/chat/completions", router.url()))
        .header("content-type", "application/json")
        .body(chunked(body_of_size(300 * KIB)))
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 413);
    let answer: Value = large.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "chunked_body_too_large");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Content-Length"));
    assert_eq!(
        mock.state.count("/v1/chat/completions"),
        1,
        "large chunked body never forwarded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_100_continue_is_answered_before_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = default_mock().await;
    let router = RouterProcess::start_default(&mock).await;
    let body = body_of_size(100 * KIB);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", router.port))
        .await
        .unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut first))
        .await
        .expect("the router answers the Expect header without waiting for the body")
        .unwrap();
    let interim = String::from_utf8_lossy(&first[..n]).to_string();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    stream.write_all(&body).await.unwrap();
    let mut rest = Vec::new();
    let mut buf = vec![0u8; 16 * KIB];
    while !String::from_utf8_lossy(&rest).contains("\"chat.completion\"") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&rest)
        );
        rest.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&rest).contains("200 OK"));
    let seen = mock
        .state
        .requests_to("/v1/chat/completions")
        .pop()
        .unwrap();
    assert!(
        !seen.headers.contains_key("expect"),
        "the node is not asked to continue again"
    );
    assert_eq!(seen.body.len().to_string(), seen.headers["content-length"]);
}
