//! Two nodes over one PostgreSQL schema, each with its own `PgEventBus` and the longest
//! credential-cache TTL: logout and disabling a user on one node take effect on the other's
//! next request once the `AuthChanged` notification arrived, well before the TTL would.
//!
//! The server is `ORCA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test works in a fresh schema, dropped afterwards. When the server cannot be reached the
//! tests say so loudly and skip, unless `ORCA_TEST_REQUIRE_ALL=1`, where they fail.

use std::time::{Duration, Instant};

use orca_core::model::Role;
use orca_http::config::MAX_CACHE_TTL_MS;
use orca_store::postgres::PostgresStore;
use poem::http::Method;
use serde_json::json;

use crate::common::{App, config, fresh_schema, pg_store as store, server_address};

/// How long the other node may take to see a change: far below the TTL (5 s), so a cache that
/// is only bounded by the TTL fails, and generous for a loaded machine.
const BOUND: Duration = Duration::from_secs(1);

#[test]
fn server_addresses_are_read_from_urls() {
    for (url, want) in [
        (
            "postgres://postgres@127.0.0.1:5432/test",
            Some("127.0.0.1:5432"),
        ),
        (
            "postgresql://u:p@db.internal/orca?sslmode=require",
            Some("db.internal:5432"),
        ),
        ("postgres://[::1]:6543/x", Some("[::1]:6543")),
        ("postgres://u@[::1]/x", Some("[::1]:5432")),
        ("postgres:///x?host=/run/postgresql", None),
        ("mysql://x", None),
    ] {
        assert_eq!(server_address(url).as_deref(), want, "{url}");
    }
}

/// A node: its own store handle (pool and LISTEN connection), `PgEventBus`, Orca (no engine:
/// it is not needed to authenticate) and HTTP app, with the longest cache TTL.
async fn node(store: PostgresStore) -> App {
    let mut c = config();
    c.auth.cache_ttl_ms = MAX_CACHE_TTL_MS;
    App::over_postgres(store, c, false).await
}

/// Nodes A and B on one fresh schema (A owns it: drop B first).
async fn two_nodes() -> Option<(App, App)> {
    let schema = fresh_schema();
    let a = store(&schema, true).await?;
    let b = store(&schema, false).await?;
    Some((node(a).await, node(b).await))
}

async fn me(app: &App, token: &str) -> u16 {
    app.get("/api/v1/auth/me", token).await.status
}

/// Node B answers 200 for `token` until it answers 401; fails if that takes `BOUND` or more.
async fn refused_within_bound(b: &App, token: &str, changed: Instant, what: &str) {
    loop {
        let status = me(b, token).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200, "{what}");
        assert!(
            changed.elapsed() < BOUND,
            "{what}: node B still accepted the token {:?} after node A's change (TTL {} ms)",
            changed.elapsed(),
            MAX_CACHE_TTL_MS
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(changed.elapsed() < BOUND, "{what}: {:?}", changed.elapsed());
    eprintln!(
        "{what}: node B refused {:?} after node A's change",
        changed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_on_one_node_is_seen_by_the_others_cache() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let admin = a.admin().await;
    let bob = a.user("bob", Role::Viewer, vec![]).await;

    // Node B caches bob's credential (the longest TTL).
    let (access, _) = b.login("bob").await;
    assert_eq!(me(&b, &access).await, 200);
    assert_eq!(me(&b, &access).await, 200);

    let off = a
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(&admin),
            Some(json!({"active": false})),
        )
        .await;
    let changed = Instant::now();
    assert_eq!(off.status, 200, "{:?}", off.body);
    refused_within_bound(&b, &access, changed, "disabling").await;

    // Re-enabled on node A, bob logs in on B again; a role change on A is seen on B as well.
    let on = a
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(&admin),
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(on.status, 200, "{:?}", on.body);
    let (access, _) = b.login("bob").await;
    assert_eq!(b.get("/api/v1/audit", &access).await.status, 403);
    let up = a
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(&admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    let changed = Instant::now();
    assert_eq!(up.status, 200, "{:?}", up.body);
    loop {
        let status = b.get("/api/v1/audit", &access).await.status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 403);
        assert!(
            changed.elapsed() < BOUND,
            "node B still used bob's old role {:?} after node A's change",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_node_is_seen_by_the_others_cache() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    a.user("carol", Role::Viewer, vec![]).await;

    // Carol logs in on B and uses the token there (cached), then logs out through node A.
    let (access, _) = b.login("carol").await;
    assert_eq!(me(&b, &access).await, 200);
    assert_eq!(me(&b, &access).await, 200);
    let out = a
        .call(Method::POST, "/api/v1/auth/logout", Some(&access), None)
        .await;
    let changed = Instant::now();
    assert_eq!(out.status, 204, "{:?}", out.body);
    refused_within_bound(&b, &access, changed, "logout").await;

    // An API token used on B and revoked through A.
    let (access, _) = b.login("carol").await;
    let created = b
        .post("/api/v1/tokens", &access, json!({"name": "ci"}))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.body["token"].as_str().unwrap().to_string();
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(me(&b, &secret).await, 200);
    assert_eq!(me(&b, &secret).await, 200);
    let del = a
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&access),
            None,
        )
        .await;
    let changed = Instant::now();
    assert_eq!(del.status, 204, "{:?}", del.body);
    refused_within_bound(&b, &secret, changed, "API token revocation").await;
    drop(b);
}

/// F4 across nodes: a user disabled through node A loses the WebSocket it holds on node B
/// (B hears the change on its `PgEventBus` and closes the socket with a reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_on_one_node_closes_its_socket_on_another() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let admin = a.admin().await;
    let dan = a
        .user(
            "dan",
            Role::Viewer,
            vec![orca_core::model::Scope::Tag("web".into())],
        )
        .await;
    let url = b.serve_ws().await;
    let (access, _) = b.login("dan").await;
    let ticket = b.ws_ticket(&access).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?ticket={ticket}"))
        .await
        .expect("the socket opens on node B");

    let off = a
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{dan}"),
            Some(&admin),
            Some(json!({"active": false})),
        )
        .await;
    let changed = Instant::now();
    assert_eq!(off.status, 200, "{:?}", off.body);
    let bound = Duration::from_secs(2);
    let msg = tokio::time::timeout(bound, ws.next())
        .await
        .unwrap_or_else(|_| {
            panic!("node B's socket is still open {bound:?} after node A's change")
        });
    match msg {
        Some(Ok(Message::Close(Some(f)))) => {
            assert_eq!(u16::from(f.code), 1008);
            assert!(f.reason.contains("disabled"), "{}", f.reason);
            eprintln!(
                "node B closed the socket {:?} after node A's change",
                changed.elapsed()
            );
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    drop(ws);
    drop(b);
}
