//! The admin side service (`router.admin.listen`, default `127.0.0.1:11437`): `/health`,
//! `/metrics`, the listings and `/admin/*`, kept off the public port so it can be firewalled
//! separately. A thin shell over [`crate::endpoints`], which serves the same endpoints on the
//! proxy port; this listener does not proxy.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;

use crate::api::{self, Endpoint};
use crate::endpoints::{self, Listener, LocalResponse};
use crate::error::RequestError;
use crate::RouterState;

pub struct AdminApp {
    pub state: Arc<RouterState>,
}

#[async_trait]
impl HttpServerApp for AdminApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "admin: the request could not be read");
                return None;
            }
        }
        session.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        let response = self.answer(&mut session).await;
        if let Err(e) = endpoints::write(&mut session, response, None).await {
            tracing::debug!(error = %e, "admin: the response could not be written");
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(stream) => stream.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)),
            Err(_) => None,
        }
    }
}

impl AdminApp {
    async fn answer(&self, session: &mut ServerSession) -> LocalResponse {
        let method = session.req_header().method.as_str().to_string();
        let path = session.req_header().uri.path().to_string();
        let dialect = api::dialect_of_path(&path);
        match api::route(&method, &path) {
            Ok(Endpoint::Local(local)) => {
                endpoints::answer(&self.state, session, local, Listener::Admin, None).await
            }
            Ok(Endpoint::Forwarded(_)) => LocalResponse::error(
                &RequestError::UnknownPath(format!(
                    "{path} on the admin port (send model requests to the proxy port {})",
                    self.state.config.port
                )),
                dialect,
            ),
            Err(miss) => {
                LocalResponse::error(&endpoints::route_miss(miss, &method, &path), dialect)
            }
        }
    }
}
