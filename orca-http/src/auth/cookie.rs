//! Cookies of the web console's sign-in (`/api/v1/auth/console/*`).
//!
//! A browser keeps no token where script can read it across reloads: the access token lives in
//! the page's memory; the refresh token travels in the `orca_refresh` cookie, which is
//! `HttpOnly`, `SameSite=Strict`, sent only to `/api/v1/auth/console` and `Secure` when the
//! request came over HTTPS. Requests that the cookie authenticates (refresh, logout) must also
//! carry the `X-CSRF-Token` header with the value of the `orca_csrf` cookie (double submit): a
//! page of another origin can make the browser send cookies but can neither read this one nor
//! set the header.

use poem::http::header::SET_COOKIE;
use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};

use crate::error::ApiError;

/// The refresh token's cookie.
pub(crate) const REFRESH_COOKIE: &str = "orca_refresh";
/// The CSRF token's cookie (readable by the console's script).
pub(crate) const CSRF_COOKIE: &str = "orca_csrf";
/// Where the refresh cookie is sent.
pub(crate) const REFRESH_PATH: &str = "/api/v1/auth/console";

/// Whether the request reached us over HTTPS (directly or, as a proxy says, in front of us).
pub(crate) fn is_https(req: &Request) -> bool {
    req.uri().scheme_str() == Some("https")
        || req
            .header("x-forwarded-proto")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn read(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

fn attributes(path: &str, http_only: bool, secure: bool, max_age: Option<u64>) -> String {
    let mut s = format!("; Path={path}; SameSite=Strict");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    if http_only {
        s.push_str("; HttpOnly");
    }
    if secure {
        s.push_str("; Secure");
    }
    s
}

/// `Set-Cookie` for the refresh token.
pub(crate) fn refresh_cookie(token: &str, secure: bool, max_age: u64) -> String {
    format!(
        "{REFRESH_COOKIE}={token}{}",
        attributes(REFRESH_PATH, true, secure, Some(max_age))
    )
}

/// `Set-Cookie` that removes the refresh token.
pub(crate) fn clear_refresh_cookie(secure: bool) -> String {
    format!(
        "{REFRESH_COOKIE}={}",
        attributes(REFRESH_PATH, true, secure, Some(0))
    )
}

fn csrf_cookie(value: &str, secure: bool, max_age: u64) -> String {
    format!(
        "{CSRF_COOKIE}={value}{}",
        attributes("/", false, secure, Some(max_age))
    )
}

/// Compare two secrets in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Check the double submit: the `X-CSRF-Token` header equals the `orca_csrf` cookie.
pub(crate) fn check_csrf(req: &Request, header: &str) -> Result<(), ApiError> {
    match read(req, CSRF_COOKIE) {
        Some(cookie) if same(&cookie, header.trim()) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "the X-CSRF-Token header must repeat the orca_csrf cookie",
        )),
    }
}

/// Operation transform of the console login: a successful answer also sets a fresh
/// `orca_csrf` cookie (a second `Set-Cookie`, which an operation's declared headers cannot
/// carry).
pub(crate) fn issue_csrf<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.around(|ep, req: Request| async move {
        let secure = is_https(&req);
        let mut resp = ep.call(req).await?.into_response();
        if resp.status().is_success() {
            let value = hex::encode(orca_core::auth::random_bytes::<32>());
            // The CSRF token lives as long as a session may (the refresh cookie's lifetime is
            // the server's; 400 days is the longest a browser keeps a cookie).
            let v = csrf_cookie(&value, secure, 400 * 24 * 3600);
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().append(SET_COOKIE, v);
            }
        }
        Ok(resp)
    })
}

/// Operation transform of the console logout: also remove the `orca_csrf` cookie.
pub(crate) fn clear_csrf<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.around(|ep, req: Request| async move {
        let secure = is_https(&req);
        let mut resp = ep.call(req).await?.into_response();
        if resp.status().is_success()
            && let Ok(v) = HeaderValue::from_str(&csrf_cookie("", secure, 0))
        {
            resp.headers_mut().append(SET_COOKIE, v);
        }
        Ok(resp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cookies: &str) -> Request {
        Request::builder().header("cookie", cookies).finish()
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let r = req("a=1; orca_csrf_x=2; orca_csrf=abc; orca_refresh=\"r\"");
        assert_eq!(read(&r, CSRF_COOKIE).as_deref(), Some("abc"));
        assert_eq!(read(&r, REFRESH_COOKIE).as_deref(), Some("r"));
        assert_eq!(read(&r, "b"), None);
        assert_eq!(read(&req("orca_csrf="), CSRF_COOKIE), None);
    }

    #[test]
    fn the_refresh_cookie_is_http_only_strict_and_scoped() {
        let c = refresh_cookie("tok", false, 60);
        assert_eq!(
            c,
            "orca_refresh=tok; Path=/api/v1/auth/console; SameSite=Strict; Max-Age=60; HttpOnly"
        );
        assert!(refresh_cookie("tok", true, 60).ends_with("; Secure"));
        assert!(clear_refresh_cookie(false).contains("Max-Age=0"));
        assert!(!csrf_cookie("x", false, 1).contains("HttpOnly"));
    }

    #[test]
    fn csrf_needs_the_header_to_repeat_the_cookie() {
        let r = req("orca_csrf=abc");
        assert!(check_csrf(&r, "abc").is_ok());
        assert!(check_csrf(&r, "abd").is_err());
        assert!(check_csrf(&r, "").is_err());
        assert!(check_csrf(&req("x=1"), "").is_err());
        assert!(check_csrf(&req("x=1"), "abc").is_err());
    }

    #[test]
    fn https_is_seen_directly_or_through_a_proxy() {
        let plain = Request::builder().finish();
        assert!(!is_https(&plain));
        let proxied = Request::builder()
            .header("x-forwarded-proto", "https")
            .finish();
        assert!(is_https(&proxied));
    }
}
