//! The one request-body reader, for both listeners. On the proxy it runs in `request_filter`,
//! before Pingora has picked a peer, so the router can route on `model`. Pingora forwards only what its 64 KiB retry buffer holds, so the
//! body is read without buffering until at most 64 KiB remain and then with buffering: the buffer
//! holds just the tail, and `request_body_filter` swaps in the whole rewritten body
//! (pingora-proxy 0.9.1 `proxy_h1.rs` sends the body upstream only from that buffer). A chunked
//! body has no known end, so past 64 KiB it cannot be replayed and gets 413.

use bytes::{Bytes, BytesMut};
use pingora::protocols::http::ServerSession as Session;

use crate::error::RequestError;

/// Pingora's retry-buffer size (`BODY_BUF_LIMIT` in pingora-core 0.9.1).
pub const RETRY_BUFFER_LIMIT: usize = 64 * 1024;

pub async fn read_whole(session: &mut Session, max: usize) -> Result<Bytes, RequestError> {
    let content_length = declared_length(session)?;
    if let Some(length) = content_length {
        if length > max {
            return Err(RequestError::BodyTooLarge {
                size: length,
                limit: max,
            });
        }
    }
    // Clients such as curl wait for `100 Continue` before sending a large body; Pingora relays
    // only a node's 100, and the router reads the body before it picks a node.
    let expects_continue = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        session
            .write_continue_response()
            .await
            .map_err(|e| RequestError::InvalidField {
                field: "Expect",
                why: format!("the 100 Continue answer could not be sent: {e}"),
            })?;
    }
    let mut buffering = false;
    // Grows as data arrives; never trust a declared length for a large allocation.
    let mut body = BytesMut::with_capacity(content_length.unwrap_or(8 * 1024).min(1 << 20));
    loop {
        let remaining = content_length.map_or(0, |len| len.saturating_sub(body.len()));
        if !buffering && (content_length.is_none() || remaining <= RETRY_BUFFER_LIMIT) {
            session.enable_retry_buffering();
            buffering = true;
        }
        let chunk = session
            .read_request_body()
            .await
            .map_err(|e| RequestError::InvalidField {
                field: "body",
                why: format!("could not be read completely: {e}"),
            })?;
        match chunk {
            Some(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > max {
                    return Err(RequestError::BodyTooLarge {
                        size: body.len(),
                        limit: max,
                    });
                }
                if content_length.is_none() && body.len() > RETRY_BUFFER_LIMIT {
                    return Err(RequestError::ChunkedTooLarge);
                }
            }
            None => break,
        }
    }
    if !body.is_empty() && session.get_retry_buffer().is_none() {
        return Err(RequestError::ChunkedTooLarge);
    }
    Ok(body.freeze())
}

fn declared_length(session: &Session) -> Result<Option<usize>, RequestError> {
    let Some(value) = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
    else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(Some)
        .ok_or_else(|| RequestError::InvalidField {
            field: "Content-Length",
            why: "header is not a number".to_string(),
        })
}

/// Reads and drops what is left of a request body that is being rejected, so the client gets the
/// error response instead of a connection reset while it is still sending. Bounded in bytes and
/// time; past either, the connection is closed anyway.
pub async fn discard_rest(session: &mut Session, max_bytes: usize, within: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut discarded = 0usize;
    while discarded <= max_bytes {
        match tokio::time::timeout_at(deadline, session.read_request_body()).await {
            Ok(Ok(Some(chunk))) => discarded += chunk.len(),
            _ => break,
        }
    }
}
