//! Phase `fail_to_proxy`: a failure while proxying becomes an error in the client's dialect
//! (through the one error map, [`crate::error`]), unless the client itself went away or the
//! response had already started.

use pingora::prelude::*;
use pingora::proxy::{FailToProxy, Session};

use super::ctx::RequestCtx;
use crate::endpoints::{self, LocalResponse};
use crate::error::RequestError;
use crate::RouterState;

/// Reads the attempts (why no node, the last node); writes the error response.
pub async fn respond(
    state: &RouterState,
    session: &mut Session,
    e: &Error,
    ctx: &mut RequestCtx,
) -> FailToProxy {
    let error = RequestError::from_proxy_failure(
        e,
        ctx.attempts.no_node(),
        ctx.attempts.node_url().unwrap_or("(none)"),
        state.config.upstream.read_timeout_secs,
    );
    let Some(error) = error else {
        return FailToProxy {
            error_code: 0,
            can_reuse_downstream: false,
        };
    };
    ctx.request.error_code = Some(error.code());
    if session.response_written().is_none() {
        let response = LocalResponse::error(&error, ctx.request.dialect);
        let written =
            endpoints::write(session.as_downstream_mut(), response, Some(&ctx.request.id)).await;
        if let Err(write_error) = written {
            tracing::debug!(request_id = %ctx.request.id, error = %write_error, "could not send the error response");
        }
    }
    FailToProxy {
        error_code: error.status(),
        can_reuse_downstream: false,
    }
}
