//! The cache of verified credentials (`http.auth.cache_ttl_ms`): changes made on this node take
//! effect on the next request even with the longest TTL; a change made by another node (another
//! Orca over the same database) takes effect within the TTL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_core::model::{NewSystem, Principal, Role, Scope, SystemType};
use orca_core::{Clock, Orca, Store, SystemClock, UserPatch};
use orca_http::config::MAX_CACHE_TTL_MS;
use orca_store::sqlite::{SqliteOptions, SqliteStore};
use poem::http::Method;
use serde_json::json;

use crate::common::{App, config};

/// An app whose cache keeps entries as long as allowed, so a missed invalidation would show.
async fn long_cache() -> App {
    let mut c = config();
    c.auth.cache_ttl_ms = MAX_CACHE_TTL_MS;
    App::with_config(c).await
}

async fn me(app: &App, token: &str) -> u16 {
    app.get("/api/v1/auth/me", token).await.status
}

#[tokio::test]
async fn logout_and_disable_take_effect_on_the_next_request_despite_the_cache() {
    let app = long_cache().await;
    let admin = app.admin().await;
    let bob = app.user("bob", Role::Viewer, vec![]).await;

    // Logout: the access token was just used (and cached); the next request is refused.
    let (access, _) = app.login("bob").await;
    assert_eq!(me(&app, &access).await, 200);
    assert_eq!(me(&app, &access).await, 200);
    let out = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(out.status, 204, "{:?}", out.body);
    assert_eq!(me(&app, &access).await, 401, "logout is seen at once");

    // Disabling over the API.
    let (access, _) = app.login("bob").await;
    assert_eq!(me(&app, &access).await, 200);
    let off = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(&admin),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    assert_eq!(me(&app, &access).await, 401, "disabling is seen at once");

    // Disabling through the facade in the same process (no HTTP request) too.
    let on = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(&admin),
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(on.status, 200, "{:?}", on.body);
    let (access, _) = app.login("bob").await;
    assert_eq!(me(&app, &access).await, 200);
    let boot = Principal::system("test");
    let patch = UserPatch {
        active: Some(false),
        ..Default::default()
    };
    app.orca.update_user(&boot, bob, patch).await.unwrap();
    assert_eq!(me(&app, &access).await, 401);
}

#[tokio::test]
async fn role_grants_password_and_token_changes_take_effect_at_once_despite_the_cache() {
    let app = long_cache().await;
    let admin = app.admin().await;
    let boot = Principal::system("test");
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
    let gina = app
        .user("gina", Role::Viewer, vec![Scope::Tag("web".into())])
        .await;
    let (access, _) = app.login("gina").await;

    // Role.
    assert_eq!(app.get("/api/v1/audit", &access).await.status, 403);
    let up = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{gina}"),
            Some(&admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    assert_eq!(app.get("/api/v1/audit", &access).await.status, 200);
    let down = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{gina}"),
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(down.status, 200, "{:?}", down.body);
    assert_eq!(app.get("/api/v1/audit", &access).await.status, 403);

    // Grants.
    let seen = |a: &crate::common::Answer| a.body["items"].as_array().map_or(0, Vec::len);
    let before = app.get("/api/v1/systems", &access).await;
    assert_eq!(seen(&before), 1, "{:?}", before.body);
    let g = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{gina}/grants"),
            Some(&admin),
            // (Both systems are of type `local`, which an `all` grant does not cover.)
            Some(json!({"grants": [{"kind": "tag", "value": "web"}, {"kind": "tag", "value": "db"}]})),
        )
        .await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    let after = app.get("/api/v1/systems", &access).await;
    assert_eq!(seen(&after), 2, "{:?}", after.body);

    // An API token, used (cached) then revoked.
    let created = app
        .post("/api/v1/tokens", &access, json!({"name": "ci"}))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.body["token"].as_str().unwrap().to_string();
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(me(&app, &secret).await, 200);
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(del.status, 204, "{:?}", del.body);
    assert_eq!(me(&app, &secret).await, 401, "revocation is seen at once");

    // A password reset by an admin ends the sessions.
    assert_eq!(me(&app, &access).await, 200);
    let reset = app
        .post(
            &format!("/api/v1/users/{gina}/password"),
            &admin,
            json!({"password": "another long passphrase"}),
        )
        .await;
    assert_eq!(reset.status, 204, "{:?}", reset.body);
    assert_eq!(me(&app, &access).await, 401);
}

#[tokio::test]
async fn another_nodes_change_takes_effect_within_the_ttl() {
    let ttl = Duration::from_millis(300);
    let mut c = config();
    c.auth.cache_ttl_ms = ttl.as_millis() as u64;
    let app = App::with_config(c).await;
    let bob = app.user("bob", Role::Viewer, vec![]).await;
    let (access, _) = app.login("bob").await;
    assert_eq!(me(&app, &access).await, 200);

    // "Another node": its own Orca over the same database (a client of it: this app runs the
    // engine), without this app's audit layer.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            SqliteOptions::new(app._dir.path().join("orca.db")).client(),
            clock.clone(),
        )
        .await
        .unwrap(),
    );
    let other = Orca::builder().store(store).clock(clock).build().unwrap();
    let patch = UserPatch {
        active: Some(false),
        ..Default::default()
    };
    other
        .update_user(&Principal::system("other-node"), bob, patch)
        .await
        .unwrap();
    let changed = Instant::now();
    // Generous slack for a loaded machine; a cache that never expired would stay at 200.
    let deadline = ttl + Duration::from_secs(5);
    loop {
        let status = me(&app, &access).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            changed.elapsed() < deadline,
            "still accepted {:?} after another node disabled the user",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(changed.elapsed() < deadline);
}
