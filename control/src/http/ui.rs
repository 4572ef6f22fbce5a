//! The live status page at `/`: one HTML page, a script and a stylesheet, embedded in the
//! binary so the daemon serves it with no files to install and the browser loads nothing from
//! elsewhere (no CDN: operators' networks often have no Internet access). The page reads the
//! same JSON API as any client (`/health`, `/statistics`, `/calls`) and is read-only.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("ui/index.html");
const STATUS_JS: &str = include_str!("ui/status.js");
const STATUS_CSS: &str = include_str!("ui/status.css");

/// Only our own origin, no inline code, not framable.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 4] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // Assets change with the binary; revalidating costs nothing on loopback.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", STATUS_JS)
}

pub(super) async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STATUS_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_reference_only_our_own_origin() {
        for text in [INDEX_HTML, STATUS_JS, STATUS_CSS] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("//cdn"));
        }
        // The page loads exactly the two embedded assets, by relative URL.
        assert!(INDEX_HTML.contains("src=\"ui/status.js\""));
        assert!(INDEX_HTML.contains("href=\"ui/status.css\""));
        // No inline script or style attribute the CSP would block.
        assert_eq!(INDEX_HTML.matches("<script").count(), 1);
        assert!(!INDEX_HTML.contains("style=\""));
        // DOM text is set with textContent, never parsed as HTML.
        assert!(!STATUS_JS.contains("innerHTML"));
    }
}
