//! The web console: its sign-in (refresh token in an `HttpOnly` cookie, CSRF double submit)
//! and how the embedded files are served (headers, compression, fallbacks).

use orca_core::model::Role;
use poem::http::Method;
use serde_json::{Value, json};

use crate::common::{App, PASSWORD};

/// `name=value` of every `Set-Cookie` of an answer, with the whole header.
fn set_cookies(resp: &poem::Response) -> Vec<(String, String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let s = v.to_str().unwrap().to_string();
            let (pair, _) = s.split_once(';').unwrap_or((&s, ""));
            let (k, val) = pair.split_once('=').unwrap();
            (k.to_string(), val.to_string(), s.clone())
        })
        .collect()
}

async fn json_of(resp: poem::Response) -> Value {
    serde_json::from_slice(&resp.into_body().into_vec().await.unwrap()).unwrap_or(Value::Null)
}

async fn console_login(app: &App, user: &str) -> (String, String, String) {
    let resp = app
        .client
        .post("/api/v1/auth/console/login")
        .body_json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .0;
    assert_eq!(resp.status(), 200);
    let cookies = set_cookies(&resp);
    let body = json_of(resp).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    let refresh = cookies.iter().find(|c| c.0 == "orca_refresh").unwrap();
    let csrf = cookies.iter().find(|c| c.0 == "orca_csrf").unwrap();
    assert!(refresh.2.contains("HttpOnly"), "{}", refresh.2);
    assert!(refresh.2.contains("SameSite=Strict"), "{}", refresh.2);
    assert!(
        refresh.2.contains("Path=/api/v1/auth/console"),
        "{}",
        refresh.2
    );
    assert!(!refresh.2.contains("Secure"), "plain HTTP: {}", refresh.2);
    assert!(!csrf.2.contains("HttpOnly"), "{}", csrf.2);
    assert!(csrf.2.contains("SameSite=Strict"), "{}", csrf.2);
    (
        body["access_token"].as_str().unwrap().to_string(),
        refresh.1.clone(),
        csrf.1.clone(),
    )
}

async fn console_post(app: &App, path: &str, cookies: &str, csrf: Option<&str>) -> poem::Response {
    let mut rb = app
        .client
        .post(path.to_string())
        .header("cookie", cookies.to_string());
    if let Some(c) = csrf {
        rb = rb.header("x-csrf-token", c.to_string());
    }
    rb.send().await.0
}

#[tokio::test]
async fn console_sign_in_keeps_the_refresh_token_in_a_cookie_and_rotates_it() {
    let app = App::new().await;
    app.user("ana", Role::Operator, vec![]).await;
    let (access, refresh, csrf) = console_login(&app, "ana").await;
    assert_eq!(app.get("/api/v1/auth/me", &access).await.status, 200);

    let jar = format!("orca_refresh={refresh}; orca_csrf={csrf}");
    // Without the CSRF header, or with another value, the cookie alone does nothing.
    let r = console_post(&app, "/api/v1/auth/console/refresh", &jar, None).await;
    assert_eq!(r.status(), 400);
    let r = console_post(&app, "/api/v1/auth/console/refresh", &jar, Some("forged")).await;
    assert_eq!(r.status(), 403);
    let r = console_post(
        &app,
        "/api/v1/auth/console/refresh",
        &format!("orca_refresh={refresh}"),
        Some(&csrf),
    )
    .await;
    assert_eq!(r.status(), 403, "no CSRF cookie");

    let r = console_post(&app, "/api/v1/auth/console/refresh", &jar, Some(&csrf)).await;
    assert_eq!(r.status(), 200);
    let rotated = set_cookies(&r)
        .into_iter()
        .find(|c| c.0 == "orca_refresh")
        .unwrap()
        .1;
    assert_ne!(rotated, refresh);
    let access2 = json_of(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get("/api/v1/auth/me", &access2).await.status, 200);

    // Logout through the cookie ends the session (its access tokens too) and clears the cookies.
    let jar2 = format!("orca_refresh={rotated}; orca_csrf={csrf}");
    let r = console_post(&app, "/api/v1/auth/console/logout", &jar2, Some(&csrf)).await;
    assert_eq!(r.status(), 204);
    let cleared = set_cookies(&r);
    assert!(
        cleared
            .iter()
            .any(|c| c.0 == "orca_refresh" && c.1.is_empty() && c.2.contains("Max-Age=0"))
    );
    assert!(cleared.iter().any(|c| c.0 == "orca_csrf" && c.1.is_empty()));
    assert_eq!(app.get("/api/v1/auth/me", &access2).await.status, 401);
    let r = console_post(&app, "/api/v1/auth/console/refresh", &jar2, Some(&csrf)).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn console_login_answers_like_login_and_marks_cookies_secure_behind_https() {
    let app = App::new().await;
    app.user("bo", Role::Viewer, vec![]).await;
    let bad = app
        .call(
            Method::POST,
            "/api/v1/auth/console/login",
            None,
            Some(json!({"username": "bo", "password": "wrong password"})),
        )
        .await;
    assert_eq!(bad.status, 401);
    assert!(bad.headers.get("set-cookie").is_none());
    let resp = app
        .client
        .post("/api/v1/auth/console/login")
        .header("x-forwarded-proto", "https")
        .body_json(&json!({"username": "bo", "password": PASSWORD}))
        .send()
        .await
        .0;
    assert_eq!(resp.status(), 200);
    for (_, _, whole) in set_cookies(&resp) {
        assert!(whole.ends_with("; Secure"), "{whole}");
    }
}

#[tokio::test]
async fn the_console_is_served_with_strict_headers_and_api_paths_never_fall_back() {
    let app = App::new().await;
    if !orca_http::console_embedded() {
        assert!(
            !crate::common::require_all(),
            "the console is not embedded: build orca-http/web (npm ci && npm run build)"
        );
        eprintln!("*** SKIPPED: the console is not embedded (orca-http/web/dist is missing) ***");
        return;
    }
    for path in [
        "/",
        "/jobs/0b0f6c1e-2f43-4f0e-9b7e-6d1d2d6f0a11",
        "/systems/web1",
    ] {
        let r = app.client.get(path).send().await.0;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{path}");
        assert_eq!(h["cache-control"], "no-cache");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let html = String::from_utf8(r.into_body().into_vec().await.unwrap()).unwrap();
        assert!(html.contains("<div id=\"root\">"), "{html}");
        // No inline script: every script has a src.
        assert!(!html.contains("<script>"), "{html}");
    }
    // The hashed entry script: cached for good, compressed as the client allows.
    let html = String::from_utf8(
        app.client
            .get("/")
            .send()
            .await
            .0
            .into_body()
            .into_vec()
            .await
            .unwrap(),
    )
    .unwrap();
    let start = html.find("/assets/").unwrap();
    let end = start + html[start..].find('"').unwrap();
    let asset = &html[start..end];
    let plain = app.client.get(asset).send().await.0;
    assert_eq!(plain.status(), 200);
    assert_eq!(
        plain.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        plain.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(plain.headers()["vary"], "Accept-Encoding");
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_len = plain.into_body().into_vec().await.unwrap().len();
    for (accept, want) in [
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip", "gzip"),
    ] {
        let r = app
            .client
            .get(asset)
            .header("accept-encoding", accept)
            .send()
            .await
            .0;
        assert_eq!(r.headers()["content-encoding"], want, "{accept}");
        assert_eq!(r.headers()["vary"], "Accept-Encoding");
        assert!(r.into_body().into_vec().await.unwrap().len() < plain_len);
    }
    // A missing asset is a 404, not the page; /api/* never falls back to the page.
    assert_eq!(
        app.client
            .get("/assets/missing-0000.js")
            .send()
            .await
            .0
            .status(),
        404
    );
    for path in ["/api/v1/nothing-here", "/api/nope", "/api"] {
        let r = app.client.get(path).send().await.0;
        assert_eq!(r.status(), 404, "{path}");
        assert!(
            !r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
    // Writes to a page path are not the console's.
    assert_ne!(app.client.post("/jobs").send().await.0.status(), 200);
    // The API keeps its own headers.
    let r = app.client.get("/api/openapi.json").send().await.0;
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    );
}

#[tokio::test]
async fn a_refresh_whose_answer_was_lost_can_be_presented_again_briefly() {
    let app = App::new().await;
    app.user("cy", Role::Viewer, vec![]).await;
    let (_, refresh, csrf) = console_login(&app, "cy").await;
    let jar = format!("orca_refresh={refresh}; orca_csrf={csrf}");
    // The browser sent the refresh, then reloaded before the answer arrived: it still holds the
    // spent token and presents it again.
    let first = console_post(&app, "/api/v1/auth/console/refresh", &jar, Some(&csrf)).await;
    assert_eq!(first.status(), 200);
    let first_cookie = set_cookies(&first)[0].1.clone();
    let again = console_post(&app, "/api/v1/auth/console/refresh", &jar, Some(&csrf)).await;
    assert_eq!(again.status(), 200, "the session survives a lost answer");
    assert_eq!(set_cookies(&again)[0].1, first_cookie);
    let access = json_of(again).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get("/api/v1/auth/me", &access).await.status, 200);
    // The renewed token goes on working.
    let jar2 = format!("orca_refresh={first_cookie}; orca_csrf={csrf}");
    let next = console_post(&app, "/api/v1/auth/console/refresh", &jar2, Some(&csrf)).await;
    assert_eq!(next.status(), 200);
    // Once the session has ended, the spent token answers nothing.
    let next_cookie = set_cookies(&next)[0].1.clone();
    let jar3 = format!("orca_refresh={next_cookie}; orca_csrf={csrf}");
    let out = console_post(&app, "/api/v1/auth/console/logout", &jar3, Some(&csrf)).await;
    assert_eq!(out.status(), 204);
    let replay = console_post(&app, "/api/v1/auth/console/refresh", &jar, Some(&csrf)).await;
    assert_eq!(replay.status(), 401);
}
