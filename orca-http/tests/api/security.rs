//! Regression tests of an outside security pass, each with the request that showed the finding,
//! on SQLite and PostgreSQL (PostgreSQL skips loudly when unreachable, unless
//! `ORCA_TEST_REQUIRE_ALL=1`):
//! - F4: open WebSockets follow revocation (grants, disabling, logout, API token revocation),
//!   and every subscribe re-checks the user;
//! - F5: an API token cannot create API tokens; tokens record which credential created them;
//! - F6: guessing the current password on a password change is throttled like login;
//! - F7: failed logins from one address do not lock the account out from another;
//! - F8: a WebSocket ticket needs the API token or session that minted it to be live;
//! - JWTs issued in the future or living longer than the configured TTL are refused;
//! - CSP and `X-Frame-Options` on API and docs answers;
//! - `/metrics` needs an admin's token off loopback, and labels systems by id.
//!
//! Setup: systems `web1` (tag web) and `db1` (tag db); `op1` (operator) and `view1` (viewer),
//! each granted only the tag `web`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orca_core::ids::UserId;
use orca_core::model::{
    AuditRecord, Health, HealthStatus, JobSpec, NewSystem, Principal, Role, Scope, SystemType,
    Targets,
};
use orca_core::{Clock, Store, SystemClock};
use orca_http::HttpConfig;
use poem::http::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{App, Backend, JWT_SECRET, PASSWORD, Socket, config, fresh_schema, pg_store};

/// How soon a socket must close after the change that ends it.
const CLOSE_BOUND: Duration = Duration::from_secs(2);

struct Fixture {
    app: App,
    admin: String,
    view1: UserId,
    web_job: String,
    db_job: String,
}

/// Systems `web1` (web) and `db1` (db), a finished job on each, `op1` and `view1` granted `web`.
async fn setup(app: App) -> Fixture {
    let admin = app.admin().await;
    let boot = Principal::system("t");
    for (name, tag) in [("web1", "web"), ("db1", "db")] {
        app.orca
            .add_system(
                &boot,
                NewSystem {
                    name: name.into(),
                    system_type: Some(SystemType::Local),
                    tags: vec![tag.into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let web = vec![Scope::Tag("web".into())];
    app.user("op1", Role::Operator, web.clone()).await;
    let view1 = app.user("view1", Role::Viewer, web).await;
    let mut jobs = Vec::new();
    for system in ["web1", "db1"] {
        let s = app
            .orca
            .submit(
                &boot,
                JobSpec {
                    name: None,
                    command: "echo out".into(),
                    targets: Targets {
                        systems: vec![system.into()],
                        tags: vec![],
                    },
                    options: Default::default(),
                },
            )
            .await
            .unwrap();
        app.orca.wait_job(&boot, s.job.id).await.unwrap();
        jobs.push(s.job.id.to_string());
    }
    Fixture {
        app,
        admin,
        view1,
        web_job: jobs[0].clone(),
        db_job: jobs[1].clone(),
    }
}

async fn fixture(backend: Backend, config: HttpConfig) -> Option<Fixture> {
    Some(setup(App::on(backend, config).await?).await)
}

/// A config whose account-wide login delays are short (so throttling tests stay fast).
fn quick_delays() -> HttpConfig {
    let mut c = config();
    c.rate_limit.login_account_delay_ms = 20;
    c.rate_limit.login_account_delay_max_ms = 200;
    c
}

/// Wait until the current one-minute rate-limit window has at least 20 s left, so a series of
/// attempts is counted in one window.
async fn fresh_window() {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if s >= 40 {
        tokio::time::sleep(Duration::from_secs(61 - s)).await;
    }
}

// WebSockets.

/// Subscribe to `job` and read until its subscription ends; fails on an error event.
async fn subscribe_ok(ws: &mut Socket, job: &str) {
    ws.send(Message::Text(
        json!({"type": "subscribe", "job_id": job})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("the subscription answered in time");
        let Some(Ok(Message::Text(t))) = msg else {
            panic!("unexpected {msg:?}")
        };
        let frame: Value = serde_json::from_str(&t).unwrap();
        for e in frame["events"].as_array().unwrap() {
            assert_ne!(e["type"], "error", "{e}");
            if e["type"] == "end" {
                return;
            }
        }
    }
}

/// Read until the server closes the socket; returns the close code and reason, and fails when
/// that takes `CLOSE_BOUND` or more after `since`.
async fn closed(ws: &mut Socket, since: Instant, what: &str) -> (u16, String) {
    loop {
        let left = CLOSE_BOUND.saturating_sub(since.elapsed());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{what}: the socket is still open after {CLOSE_BOUND:?}"));
        match msg {
            Some(Ok(Message::Close(Some(f)))) => {
                eprintln!("{what}: closed after {:?}: {}", since.elapsed(), f.reason);
                return (u16::from(f.code), f.reason.to_string());
            }
            Some(Ok(Message::Text(_))) => continue,
            other => panic!("{what}: expected a close frame with a reason, got {other:?}"),
        }
    }
}

/// Nothing arrives on the socket for a while.
async fn stays_open(ws: &mut Socket) {
    let r = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(r.is_err(), "the socket got {r:?}");
}

async fn connect_status(url: &str, ticket: &str) -> u16 {
    match tokio_tungstenite::connect_async(format!("{url}?ticket={ticket}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Ok(_) => 101,
        Err(e) => panic!("{e}"),
    }
}

async fn set_grants(fx: &Fixture, grants: Value) {
    let r = fx
        .app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/grants", fx.view1),
            Some(&fx.admin),
            Some(json!({ "grants": grants })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn set_active(fx: &Fixture, active: bool) {
    let r = fx
        .app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}", fx.view1),
            Some(&fx.admin),
            Some(json!({ "active": active })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A new API token of the holder of `access`: (id, secret).
async fn api_token(app: &App, access: &str, name: &str) -> (String, String) {
    let r = app
        .post("/api/v1/tokens", access, json!({ "name": name }))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["token"].as_str().unwrap().to_string(),
    )
}

async fn revoke(app: &App, access: &str, id: &str) {
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(access),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_open_sockets_close_when_grants_user_session_or_token_end() {
    for backend in Backend::ALL {
        let Some(fx) = fixture(backend, config()).await else {
            continue;
        };
        let app = &fx.app;
        let url = app.serve_ws().await;

        // Grants emptied: the open socket closes; REST answers 404 at once.
        let (view, _) = app.login("view1").await;
        let mut ws = app.ws_connect(&url, &view).await;
        subscribe_ok(&mut ws, &fx.web_job).await;
        set_grants(&fx, json!([])).await;
        let (code, reason) = closed(&mut ws, Instant::now(), "grants []").await;
        assert_eq!(code, 1008, "{backend:?}");
        assert!(reason.contains("grants"), "{reason}");
        let rest = app
            .get(&format!("/api/v1/jobs/{}", fx.web_job), &view)
            .await;
        assert_eq!(rest.status, 404, "{:?}", rest.body);
        set_grants(&fx, json!([{"kind": "tag", "value": "web"}])).await;

        // Disabled: a fresh socket closes.
        let mut ws = app.ws_connect(&url, &view).await;
        subscribe_ok(&mut ws, &fx.web_job).await;
        set_active(&fx, false).await;
        let (code, reason) = closed(&mut ws, Instant::now(), "disabled").await;
        assert_eq!(code, 1008);
        assert!(reason.contains("disabled"), "{reason}");
        set_active(&fx, true).await;

        // Logout of the session that got the ticket.
        let (view, _) = app.login("view1").await;
        let mut ws = app.ws_connect(&url, &view).await;
        subscribe_ok(&mut ws, &fx.web_job).await;
        let out = app
            .call(Method::POST, "/api/v1/auth/logout", Some(&view), None)
            .await;
        assert_eq!(out.status, 204, "{:?}", out.body);
        let (_, reason) = closed(&mut ws, Instant::now(), "logout").await;
        assert!(reason.contains("session"), "{reason}");

        // Revocation of the API token that got the ticket.
        let (view, _) = app.login("view1").await;
        let (id, secret) = api_token(app, &view, "ws").await;
        let mut ws = app.ws_connect(&url, &secret).await;
        subscribe_ok(&mut ws, &fx.web_job).await;
        revoke(app, &view, &id).await;
        let (_, reason) = closed(&mut ws, Instant::now(), "token revoked").await;
        assert!(reason.contains("API token"), "{reason}");

        // Another user's change leaves the socket alone.
        let mut ws = app.ws_connect(&url, &view).await;
        let (op, _) = app.login("op1").await;
        let out = app
            .call(Method::POST, "/api/v1/auth/logout", Some(&op), None)
            .await;
        assert_eq!(out.status, 204);
        stays_open(&mut ws).await;
        subscribe_ok(&mut ws, &fx.web_job).await;
    }
}

/// The app on `backend` and a second, plain handle on its database: writes through it are not
/// announced, as if made by another process.
async fn app_and_raw_store(backend: Backend) -> Option<(App, Arc<dyn Store>)> {
    match backend {
        Backend::Sqlite => {
            let app = App::with_config(config()).await;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let options =
                orca_store::sqlite::SqliteOptions::new(app._dir.path().join("orca.db")).client();
            let raw = orca_store::sqlite::SqliteStore::open(options, clock)
                .await
                .unwrap();
            Some((app, Arc::new(raw)))
        }
        Backend::Postgres => {
            let schema = fresh_schema();
            let owner = pg_store(&schema, true).await?;
            let raw = pg_store(&schema, false).await?;
            Some((
                App::over_postgres(owner, config(), true).await,
                Arc::new(raw),
            ))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_every_subscribe_rechecks_the_user() {
    for backend in Backend::ALL {
        let Some((app, raw)) = app_and_raw_store(backend).await else {
            continue;
        };
        let fx = setup(app).await;
        let app = &fx.app;
        let url = app.serve_ws().await;
        let (view, _) = app.login("view1").await;
        let mut ws = app.ws_connect(&url, &view).await;
        subscribe_ok(&mut ws, &fx.web_job).await;

        // Grants emptied behind the server's back: no event, so the socket stays open...
        let audit = AuditRecord::new(
            chrono::Utc::now(),
            &Principal::system("t"),
            "user",
            Some(fx.view1.to_string()),
            "set_grants",
            json!({}),
        );
        raw.set_grants(fx.view1, &[], &audit).await.unwrap();
        stays_open(&mut ws).await;
        // ...until the next subscribe reads the user afresh: it is not served with the old
        // grants, and the socket closes.
        ws.send(Message::Text(
            json!({"type": "subscribe", "job_id": fx.web_job})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let (code, reason) = closed(&mut ws, Instant::now(), "subscribe after grants []").await;
        assert_eq!(code, 1008, "{backend:?}");
        assert!(reason.contains("grants"), "{reason}");

        // And a user who never could see db1 still cannot.
        let (op, _) = app.login("op1").await;
        let mut ws = app.ws_connect(&url, &op).await;
        ws.send(Message::Text(
            json!({"type": "subscribe", "job_id": fx.db_job})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!()
        };
        let frame: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(frame["events"][0]["code"], "not_found", "{frame}");
        drop(fx);
        drop(raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_ws_tickets_need_their_parent_credential_live() {
    for backend in Backend::ALL {
        let Some(fx) = fixture(backend, config()).await else {
            continue;
        };
        let app = &fx.app;
        let url = app.serve_ws().await;
        let (view, _) = app.login("view1").await;

        // A ticket minted with an API token, which is then revoked: refused.
        let (id, secret) = api_token(app, &view, "ticket-parent").await;
        let ticket = app.ws_ticket(&secret).await;
        revoke(app, &view, &id).await;
        assert_eq!(connect_status(&url, &ticket).await, 401, "{backend:?}");

        // A ticket of a session that then logged out: refused.
        let (view2, _) = app.login("view1").await;
        let ticket = app.ws_ticket(&view2).await;
        let out = app
            .call(Method::POST, "/api/v1/auth/logout", Some(&view2), None)
            .await;
        assert_eq!(out.status, 204);
        assert_eq!(connect_status(&url, &ticket).await, 401);

        // A live API token's ticket works.
        let (_, live_token) = api_token(app, &view, "live").await;
        let mut ws = app.ws_connect(&url, &live_token).await;
        subscribe_ok(&mut ws, &fx.web_job).await;
    }
}

#[tokio::test]
async fn f5_api_tokens_cannot_create_api_tokens() {
    for backend in Backend::ALL {
        let Some(fx) = fixture(backend, config()).await else {
            continue;
        };
        let app = &fx.app;
        let (_, parent) = api_token(app, &fx.admin, "parent").await;
        let child = app
            .post("/api/v1/tokens", &parent, json!({"name": "child"}))
            .await;
        assert_eq!(child.status, 403, "{backend:?}: {:?}", child.body);
        assert_eq!(child.code(), "permission_denied");
        let msg = child.body["message"].as_str().unwrap();
        assert!(msg.contains("API token cannot create API tokens"), "{msg}");

        let list = app.get("/api/v1/tokens", &fx.admin).await;
        assert_eq!(list.status, 200);
        let items = list.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{items:?}");
        let via = items[0]["created_via"].as_str().unwrap();
        assert!(via.starts_with("session:"), "{via}");
        assert!(
            uuid::Uuid::parse_str(&via["session:".len()..]).is_ok(),
            "{via}"
        );
    }
}

#[tokio::test]
async fn f6_password_change_guesses_are_throttled() {
    for backend in Backend::ALL {
        let Some(fx) = fixture(backend, quick_delays()).await else {
            continue;
        };
        let app = &fx.app;
        let (view, _) = app.login("view1").await;
        fresh_window().await;
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for _ in 0..15 {
            let a = app
                .post(
                    "/api/v1/auth/password",
                    &view,
                    json!({"current_password": "wrong wrong wrong", "new_password": "a much better passphrase"}),
                )
                .await;
            if a.status == 429 {
                assert_eq!(a.code(), "rate_limited");
                retry_after = a
                    .headers
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            }
            statuses.push(a.status);
        }
        assert_eq!(statuses[0], 403, "{backend:?}: {statuses:?}");
        assert!(statuses.contains(&429), "{backend:?}: {statuses:?}");
        let r = retry_after.expect("Retry-After");
        assert!((1..=60).contains(&r), "{r}");
    }
}

#[tokio::test]
async fn f7_failed_logins_from_one_address_do_not_lock_the_admin_out() {
    let a: IpAddr = "203.0.113.7".parse().unwrap();
    let b: IpAddr = "198.51.100.9".parse().unwrap();
    for backend in Backend::ALL {
        let Some(fx) = fixture(backend, quick_delays()).await else {
            continue;
        };
        let app = &fx.app;
        let login = |from: IpAddr, password: &str| {
            let body = json!({"username": "admin", "password": password});
            async move {
                app.call_from(from, Method::POST, "/api/v1/auth/login", None, Some(body))
                    .await
            }
        };
        fresh_window().await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(login(a, "wrong wrong wrong").await.status);
        }
        assert_eq!(statuses[0], 401, "{backend:?}: {statuses:?}");
        assert_eq!(statuses[19], 429, "{backend:?}: {statuses:?}");

        // The right password from another address logs in: slowed down, not refused.
        let started = Instant::now();
        let ok = login(b, PASSWORD).await;
        assert_eq!(ok.status, 200, "{backend:?}: {:?}", ok.body);
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "attempts for the account from all addresses slow further ones down: {:?}",
            started.elapsed()
        );
        // The first address stays refused, right password or not.
        let refused = login(a, PASSWORD).await;
        assert_eq!(refused.status, 429, "{:?}", refused.body);
        assert!(refused.headers.contains_key("retry-after"));
    }
}

fn sign(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn jwts_from_the_future_or_living_too_long_are_refused() {
    let mut c = config();
    c.auth.access_ttl_seconds = 120;
    for backend in Backend::ALL {
        let Some(fx) = fixture(backend, c.clone()).await else {
            continue;
        };
        let app = &fx.app;
        let (real, _) = app.login("view1").await;
        let p = real.split('.').nth(1).unwrap();
        let base: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let with = |iat: u64, exp: u64| {
            let mut c = base.clone();
            c["iat"] = json!(iat);
            c["nbf"] = json!(now - 1);
            c["exp"] = json!(exp);
            sign(&c)
        };
        let me = |t: String| async move { app.get("/api/v1/auth/me", &t).await.status };
        assert_eq!(me(with(now, now + 100)).await, 200, "control");
        let ten_years = 10 * 365 * 24 * 3600;
        assert_eq!(
            me(with(now + ten_years, now + ten_years + 100)).await,
            401,
            "{backend:?}: iat and exp ten years ahead"
        );
        assert_eq!(me(with(now + 30, now + 130)).await, 200, "within the skew");
        assert_eq!(
            me(with(now, now + 300)).await,
            401,
            "a lifetime above the configured TTL (120 s) + 60 s"
        );
    }
}

fn script_hashes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<script") {
        rest = &rest[i..];
        let start = rest.find('>').unwrap() + 1;
        let end = rest.find("</script>").unwrap();
        out.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD
                .encode(Sha256::digest(&rest.as_bytes()[start..end]))
        ));
        rest = &rest[end..];
    }
    out
}

#[tokio::test]
async fn csp_and_frame_options_on_api_and_docs() {
    for backend in Backend::ALL {
        let Some(fx) = fixture(backend, config()).await else {
            continue;
        };
        let app = &fx.app;
        for (path, token) in [
            ("/api/v1/auth/me", Some(fx.admin.as_str())),
            ("/api/v1/auth/me", None),
            ("/api/openapi.json", None),
            ("/healthz", None),
        ] {
            let a = app.call(Method::GET, path, token, None).await;
            let csp = a.headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
            assert_eq!(a.headers["x-frame-options"], "DENY", "{path}");
        }
        for path in ["/api/docs", "/api/docs/oauth-receiver.html"] {
            let a = app.call(Method::GET, path, None, None).await;
            assert_eq!(a.status, 200, "{backend:?} {path}");
            let csp = a.headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert!(!csp.contains("unsafe-eval"), "{csp}");
            assert_eq!(a.headers["x-frame-options"], "DENY");
            // The page's own inline scripts (Swagger UI) may run, by hash.
            let html = String::from_utf8(a.raw.clone()).unwrap();
            let hashes = script_hashes(&html);
            assert!(!hashes.is_empty(), "{path}");
            for h in hashes {
                assert!(csp.contains(&h), "{path}: {h} not in {csp}");
            }
        }
    }
}

#[tokio::test]
async fn metrics_need_an_admin_token_off_loopback_and_label_systems_by_id() {
    for backend in Backend::ALL {
        let mut c = config();
        c.listen = "0.0.0.0:8080".parse().unwrap();
        let Some(fx) = fixture(backend, c).await else {
            continue;
        };
        let app = &fx.app;
        let web1 = app.orca.raw_store().find_system("web1").await.unwrap();
        app.orca
            .raw_store()
            .record_health(
                web1.id,
                &Health {
                    status: HealthStatus::Healthy,
                    checked_at: Some(chrono::Utc::now()),
                    latency_ms: Some(12),
                    reason: None,
                },
            )
            .await
            .unwrap();
        let anon = app.call(Method::GET, "/metrics", None, None).await;
        assert_eq!(anon.status, 401, "{backend:?}: {:?}", anon.body);
        let bogus = app.get("/metrics", "orca_at_bogus").await;
        assert_eq!(bogus.status, 401);
        let (view, _) = app.login("view1").await;
        assert_eq!(app.get("/metrics", &view).await.status, 403);
        let ok = app.get("/metrics", &fx.admin).await;
        assert_eq!(ok.status, 200, "{:?}", ok.body);
        let (_, api) = api_token(app, &fx.admin, "scraper").await;
        let ok2 = app.get("/metrics", &api).await;
        assert_eq!(ok2.status, 200);
        let text = String::from_utf8(ok.raw).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("orca_connector_probe_latency_seconds{"))
            .unwrap_or_else(|| panic!("no probe latency in {text}"));
        assert!(
            line.contains(&format!("system_id=\"{}\"", web1.id)),
            "{line}"
        );
        assert!(!text.contains("web1"), "system names are not labels");
    }
    // On loopback (the default) or when switched off, anyone may scrape.
    let mut c = config();
    c.listen = "0.0.0.0:8080".parse().unwrap();
    c.metrics.require_token = Some(false);
    let app = App::with_config(c).await;
    assert_eq!(
        app.call(Method::GET, "/metrics", None, None).await.status,
        200
    );
    let app = App::new().await;
    assert_eq!(
        app.call(Method::GET, "/metrics", None, None).await.status,
        200
    );
}
