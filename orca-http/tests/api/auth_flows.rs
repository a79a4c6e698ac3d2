//! Login, refresh rotation and reuse detection, logout, disabling, API tokens, login throttling.

use orca_core::model::Role;
use poem::http::Method;
use serde_json::json;

use crate::common::{App, PASSWORD, config};

#[tokio::test]
async fn login_me_and_uniform_failures() {
    let app = App::new().await;
    let admin = app.admin().await;
    let me = app.get("/api/v1/auth/me", &admin).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["username"], "admin");
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["auth"], "session");

    let wrong = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "not the password"})),
        )
        .await;
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "not the password"})),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body["message"], unknown.body["message"]);
    assert_eq!(wrong.code(), "unauthenticated");
    let tokens = app.login("admin").await;
    assert!(tokens.1.starts_with("orca_rt_"));
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = App::new().await;
    app.user("alice", Role::Viewer, vec![]).await;
    let (access1, refresh1) = app.login("alice").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh1})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let access2 = r.body["access_token"].as_str().unwrap().to_string();
    let refresh2 = r.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh1, refresh2);
    assert!(r.body["expires_in"].as_u64().unwrap() <= 900);
    assert_eq!(app.get("/api/v1/auth/me", &access2).await.status, 200);
    assert_eq!(
        app.get("/api/v1/auth/me", &access1).await.status,
        200,
        "old access tokens live until expiry"
    );

    // The old refresh token again: reuse. The whole session dies.
    let again = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh1})),
        )
        .await;
    assert_eq!(again.status, 401);
    assert!(
        again.body["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{:?}",
        again.body
    );
    let next = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh2})),
        )
        .await;
    assert_eq!(
        next.status, 401,
        "the newest refresh token of the family is revoked too"
    );
    assert_eq!(
        app.get("/api/v1/auth/me", &access2).await.status,
        401,
        "and its access tokens"
    );
    let audit = app.audit().await;
    assert!(audit.iter().any(
        |r| r.action == "refresh_reuse" && r.outcome == orca_core::model::AuditOutcome::Denied
    ));

    // Another session of the same user is unaffected.
    let (other, _) = app.login("alice").await;
    assert_eq!(app.get("/api/v1/auth/me", &other).await.status, 200);
}

#[tokio::test]
async fn logout_and_disable_take_effect_on_the_next_request() {
    let app = App::new().await;
    let admin = app.admin().await;
    let bob = app.user("bob", Role::Viewer, vec![]).await;
    let (access, refresh) = app.login("bob").await;
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/logout", Some(&access), None)
            .await
            .status,
        204
    );
    assert_eq!(app.get("/api/v1/auth/me", &access).await.status, 401);
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(r.status, 401);

    let (access, _) = app.login("bob").await;
    assert_eq!(app.get("/api/v1/audit", &access).await.status, 403);
    // Promotion is seen at once (authorisation is read per request).
    let up = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(&admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    assert_eq!(app.get("/api/v1/audit", &access).await.status, 200);
    // Disabling too.
    let off = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(&admin),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(off.status, 200);
    assert_eq!(app.get("/api/v1/auth/me", &access).await.status, 401);
    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "bob", "password": PASSWORD})),
        )
        .await;
    assert_eq!(login.status, 401);
}

#[tokio::test]
async fn api_tokens_are_shown_once_capped_and_revocable() {
    let app = App::new().await;
    let admin = app.admin().await;
    let created = app
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "ci", "role": "viewer", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.body["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("orca_at_"));
    let id = created.body["id"].as_str().unwrap().to_string();

    let list = app.get("/api/v1/tokens", &admin).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(
        !String::from_utf8_lossy(&list.raw).contains(&secret),
        "the secret is shown once"
    );
    assert_eq!(list.body["items"][0]["role"], "viewer");

    let me = app.get("/api/v1/auth/me", &secret).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.body["role"], "viewer",
        "capped below the owner's admin role"
    );
    assert_eq!(me.body["auth"], "api_token");
    assert_eq!(app.get("/api/v1/audit", &secret).await.status, 403);

    // A viewer cannot mint an operator token.
    app.user("vic", Role::Viewer, vec![]).await;
    let (vic, _) = app.login("vic").await;
    let r = app
        .post(
            "/api/v1/tokens",
            &vic,
            json!({"name": "x", "role": "operator"}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);

    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&admin),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(app.get("/api/v1/auth/me", &secret).await.status, 401);
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&vic),
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn login_is_throttled_per_account_known_or_not() {
    let mut c = config();
    c.rate_limit.login_per_account_per_minute = 3;
    let app = App::with_config(c).await;
    app.user("carol", Role::Viewer, vec![]).await;
    for name in ["carol", "ghost"] {
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for _ in 0..5 {
            let a = app
                .call(
                    Method::POST,
                    "/api/v1/auth/login",
                    None,
                    Some(json!({"username": name, "password": "wrong wrong wrong"})),
                )
                .await;
            if a.status == 429 {
                retry_after = a
                    .headers
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                assert_eq!(a.code(), "rate_limited");
            }
            statuses.push(a.status);
        }
        // Windows are per minute: a window boundary may reset the count once.
        assert!(
            statuses.iter().filter(|s| **s == 429).count() >= 1,
            "{name}: {statuses:?}"
        );
        let r = retry_after.unwrap();
        assert!((1..=60).contains(&r), "{r}");
    }
}

#[tokio::test]
async fn password_change_needs_the_current_one_and_policy() {
    let app = App::new().await;
    app.user("dave", Role::Viewer, vec![]).await;
    let (t, _) = app.login("dave").await;
    let weak = app
        .post(
            "/api/v1/auth/password",
            &t,
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(weak.status, 400, "{:?}", weak.body);
    let wrong = app.post("/api/v1/auth/password", &t, json!({"current_password": "nope nope nope", "new_password": "a much better passphrase"})).await;
    assert_eq!(wrong.status, 403);
    let ok = app
        .post(
            "/api/v1/auth/password",
            &t,
            json!({"current_password": PASSWORD, "new_password": "a much better passphrase"}),
        )
        .await;
    assert_eq!(ok.status, 204, "{:?}", ok.body);
    assert_eq!(
        app.get("/api/v1/auth/me", &t).await.status,
        401,
        "sessions end on a password change"
    );
    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "dave", "password": "a much better passphrase"})),
        )
        .await;
    assert_eq!(login.status, 200);
}

#[tokio::test]
async fn liveness_probe_is_never_throttled_but_other_requests_are() {
    let mut c = config();
    c.rate_limit.per_address_per_minute = 3;
    let app = App::with_config(c).await;
    for i in 0..10 {
        let a = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(a.status, 200, "healthz #{i}: {:?}", a.body);
    }
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.call(Method::GET, "/readyz", None, None).await.status);
    }
    // Windows are per minute: a window boundary may reset the count once.
    assert!(statuses.contains(&429), "{statuses:?}");
}
