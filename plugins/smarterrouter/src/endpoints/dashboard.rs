//! `GET /admin/ui` (and `/` on the admin listener, for a browser): the dashboard, one
//! self-contained page built into the binary from `dashboard/` (HTML, CSS and script; no build
//! step, no CDN, no library: the charts are SVG drawn by the script). The page carries no data:
//! it polls the documented admin endpoints (`/health`, `/admin/vram`, `/admin/decisions`,
//! `/admin/activity`, `/admin/profiles`) with the admin key kept in the tab's session storage.
//! Its Content-Security-Policy allows only its own inline script and style (by hash) and
//! requests to this origin.

use std::sync::LazyLock;

use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{Listener, LocalResponse};

const TEMPLATE: &str = include_str!("dashboard/index.html");
const STYLE: &str = include_str!("dashboard/dashboard.css");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");

struct Page {
    html: Bytes,
    csp: String,
}

fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    Page {
    html: Bytes::from(
        TEMPLATE
            .replacen("/*STYLE*/", STYLE, 1)
            .replacen("/*SCRIPT*/", SCRIPT, 1),
    ),
    csp: format!(
        "default-src 'none'; connect-src 'self'; img-src 'self' data:; style-src {}; script-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    ),
}
});

/// Whether `/` is asked for by a browser on the admin listener (elsewhere `/` stays the JSON root).
pub fn wanted(listener: Listener, headers: &http::HeaderMap) -> bool {
    listener == Listener::Admin
        && headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

pub fn page() -> LocalResponse {
    LocalResponse::text("text/html; charset=utf-8", PAGE.html.clone()).with_headers(vec![
        ("content-security-policy", PAGE.csp.clone()),
        ("x-content-type-options", "nosniff".to_string()),
        ("referrer-policy", "no-referrer".to_string()),
        ("cache-control", "no-store".to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_whole_and_its_policy_names_exactly_its_script_and_style() {
        let html = std::str::from_utf8(&PAGE.html).unwrap();
        assert!(!html.contains("/*STYLE*/") && !html.contains("/*SCRIPT*/"));
        let between = |open: &str, close: &str| {
            let start = html.find(open).unwrap() + open.len();
            let end = start + html[start..].find(close).unwrap();
            html[start..end].to_string()
        };
        assert_eq!(between("<style>", "</style>"), STYLE);
        assert_eq!(between("<script>", "</script>"), SCRIPT);
        assert!(PAGE
            .csp
            .contains(&format!("script-src {}", csp_hash(SCRIPT))));
        assert!(PAGE.csp.contains(&format!("style-src {}", csp_hash(STYLE))));
        // One inline script and one style element, nothing the policy would block.
        assert_eq!(html.matches("<script").count(), 1);
        assert_eq!(html.matches("<style").count(), 1);
        assert!(!html.contains(" style=") && !html.contains(" onclick="));
        // Nothing outside the page: no URL to another origin.
        for needle in ["http://", "https://", "//cdn"] {
            let outside = html.matches(needle).count();
            let svg_ns = html.matches("http://www.w3.org/2000/svg").count();
            assert_eq!(
                outside - if needle == "http://" { svg_ns } else { 0 },
                0,
                "{needle}"
            );
        }
        // A known SHA-256 (RFC 6234's "abc"), so the hash is the one browsers compute.
        assert_eq!(
            csp_hash("abc"),
            "'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='"
        );
    }
}
