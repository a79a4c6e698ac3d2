//! The web console, embedded in the binary (feature `ui`, on by default): `web/dist`, built
//! ahead of time and committed, is compiled in by `build.rs`.
//!
//! - `GET /` and every unknown path outside `/api/` answer `index.html` (the console routes in
//!   the browser, so `/jobs/<id>` survives a reload); `/api/*` never does;
//! - hashed files under `/assets/` are cached for a year (`immutable`), everything else is
//!   revalidated (`no-cache`); a missing `/assets/*` file is a 404, not the page;
//! - a precompressed copy (brotli, then gzip) is sent when `Accept-Encoding` allows it, with
//!   `Vary: Accept-Encoding`;
//! - a strict Content-Security-Policy (scripts from this origin only, nothing inline; styles may
//!   be inline, as the component library injects them), `frame-ancestors 'none'`,
//!   `Referrer-Policy: no-referrer`; the request pipeline adds `nosniff` and `X-Frame-Options`.

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};

/// One file of the console.
pub(crate) struct Asset {
    /// Path under `web/dist`, with `/`.
    pub path: &'static str,
    /// The file.
    pub body: &'static [u8],
    /// Its gzip copy, if built.
    pub gzip: Option<&'static [u8]>,
    /// Its brotli copy, if built.
    pub brotli: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// The console's Content-Security-Policy.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Whether the console is compiled in.
pub fn embedded() -> bool {
    ASSETS.iter().any(|a| a.path == "index.html")
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether `Accept-Encoding` accepts `coding` (present with a non-zero quality, or `*`).
fn accepts(header: &str, coding: &str) -> bool {
    header.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let zero = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case(coding) || name == "*") && !zero
    })
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The answer for `path` (GET or HEAD outside `/api/`).
fn serve(path: &str, accept_encoding: &str) -> Response {
    let rel = path.trim_start_matches('/');
    let asset = match find(if rel.is_empty() { "index.html" } else { rel }) {
        Some(a) => a,
        None if rel.starts_with("assets/") => {
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .content_type("text/plain; charset=utf-8")
                .body("not found");
        }
        None => match find("index.html") {
            Some(a) => a,
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let (body, encoding) = match (asset.brotli, asset.gzip) {
        (Some(b), _) if accepts(accept_encoding, "br") => (b, Some("br")),
        (_, Some(g)) if accepts(accept_encoding, "gzip") => (g, Some("gzip")),
        _ => (asset.body, None),
    };
    let cache = if asset.path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = Response::builder()
        .content_type(content_type(asset.path))
        .header("cache-control", cache)
        .header("content-security-policy", CSP)
        .header("referrer-policy", "no-referrer")
        .header("cross-origin-opener-policy", "same-origin")
        .body(body);
    let h = resp.headers_mut();
    if asset.gzip.is_some() || asset.brotli.is_some() {
        h.insert("vary", HeaderValue::from_static("Accept-Encoding"));
    }
    if let Some(e) = encoding {
        h.insert("content-encoding", HeaderValue::from_static(e));
    }
    resp
}

/// `ep` (the API) with the console in front of what it does not know: a GET or HEAD outside
/// `/api/` that `ep` answers 404 is answered by the console.
pub(crate) fn with_console<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.around(|ep, req: Request| async move {
        let path = req.uri().path().to_string();
        let page = (req.method() == Method::GET || req.method() == Method::HEAD)
            && !is_api(&path)
            && embedded();
        let accept_encoding = req.header("accept-encoding").unwrap_or("").to_string();
        match ep.call(req).await {
            Err(e) if page && e.status() == StatusCode::NOT_FOUND => {
                Ok(serve(&path, &accept_encoding))
            }
            other => other.map(IntoResponse::into_response),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_with_qualities() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("gzip;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(!accepts("identity", "gzip"));
        assert!(accepts("*", "br"));
        assert!(!accepts("", "gzip"));
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
