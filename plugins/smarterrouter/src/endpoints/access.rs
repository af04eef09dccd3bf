//! Who may use `/admin/*`: with `router.admin.api_key` set, a matching `Authorization: Bearer`
//! on either listener; without one, the admin listener only. The dashboard page itself (no
//! data in it) loads without the key where a key is set; its data requests need it.

use super::Listener;
use crate::error::RequestError;
use crate::RouterState;

/// `router.admin.api_key`, unless unset or blank.
fn admin_key(state: &RouterState) -> Option<&str> {
    state
        .config
        .admin
        .api_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
}

/// Whether `/admin/*` may be served: with `router.admin.api_key` set, a matching
/// `Authorization: Bearer` on either port; without one, only on the admin port.
pub fn check(
    state: &RouterState,
    headers: &http::HeaderMap,
    listener: Listener,
) -> Result<(), RequestError> {
    let on_admin_port = listener == Listener::Admin;
    match admin_key(state) {
        Some(key) => {
            let given = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if crate::auth::same_secret(given.as_bytes(), key.as_bytes()) {
                Ok(())
            } else {
                Err(RequestError::Unauthorized(
                    "admin endpoints need Authorization: Bearer <router.admin.api_key>".to_string(),
                ))
            }
        }
        None if on_admin_port => Ok(()),
        None => Err(RequestError::Forbidden(format!(
            "/admin/* is served on the admin port ({}) unless router.admin.api_key (ROUTER_ADMIN_API_KEY) is set",
            state.config.admin.listen
        ))),
    }
}

/// Whether the dashboard page may be served: with a key set, on either port (it asks for the
/// key and sends it with each data request); without one, on the admin port only, like `/admin/*`.
pub fn check_page(state: &RouterState, listener: Listener) -> Result<(), RequestError> {
    if admin_key(state).is_some() || listener == Listener::Admin {
        Ok(())
    } else {
        Err(RequestError::Forbidden(format!(
            "the dashboard (/admin/ui) is served on the admin port ({}) unless router.admin.api_key (ROUTER_ADMIN_API_KEY) is set",
            state.config.admin.listen
        )))
    }
}
