//! A canary secret given as a credential, a password and a token never appears in any
//! response, log line or audit record.

use orca_core::model::Role;
use poem::http::Method;
use serde_json::json;

use crate::common::{App, logs};

#[tokio::test]
async fn canary_never_leaks() {
    let app = App::new().await;
    let admin = app.admin().await;
    let canary = format!("CANARY-{}", uuid::Uuid::now_v7().simple());
    let mut seen: Vec<Vec<u8>> = Vec::new();

    let a = app.post("/api/v1/systems", &admin, json!({"name": "box1", "type": "local", "username": "root", "credential": {"password": canary}})).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["has_credential"], true);
    seen.push(a.raw);
    let a = app.call(Method::PATCH, "/api/v1/systems/box1", Some(&admin), Some(json!({"credential": {"private_key": format!("-----BEGIN {canary}-----"), "passphrase": canary}}))).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    seen.push(a.raw);
    // A rejected credential update and a failing login with the canary as password.
    seen.push(
        app.call(
            Method::PATCH,
            "/api/v1/systems/box1",
            Some(&admin),
            Some(json!({"credential": {"password": canary, "private_key": canary}})),
        )
        .await
        .raw,
    );
    seen.push(
        app.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": canary})),
        )
        .await
        .raw,
    );
    // A user created with a password containing the canary, and a password reset.
    let u = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "cathy", "role": "viewer", "password": format!("pw-{canary}")}),
        )
        .await;
    assert_eq!(u.status, 201, "{:?}", u.body);
    let id = u.body["id"].as_str().unwrap().to_string();
    seen.push(u.raw);
    seen.push(
        app.post(
            &format!("/api/v1/users/{id}/password"),
            &admin,
            json!({"password": format!("new-{canary}")}),
        )
        .await
        .raw,
    );
    // The canary as a bearer token.
    seen.push(app.get("/api/v1/auth/me", &canary).await.raw);
    // A job environment value.
    app.orca
        .ensure_local_system(&orca_core::model::Principal::system("t"))
        .await
        .unwrap();
    let j = app.post("/api/v1/jobs", &admin, json!({"command": "true", "targets": {"systems": ["local"]}, "options": {"env": {"SECRET": canary}}})).await;
    assert_eq!(j.status, 201, "{:?}", j.body);
    seen.push(j.raw);
    let _ = app.user("other", Role::Viewer, vec![]).await;

    for path in [
        "/api/v1/systems",
        "/api/v1/systems/box1",
        "/api/v1/audit?limit=1000",
        "/api/v1/users",
        "/api/v1/jobs",
        "/api/openapi.json",
        "/metrics",
    ] {
        let a = app.get(path, &admin).await;
        assert_eq!(a.status, 200, "{path}");
        seen.push(a.raw);
    }
    for (i, body) in seen.iter().enumerate() {
        assert!(
            !String::from_utf8_lossy(body).contains(&canary),
            "response {i} leaks the canary"
        );
    }
    let audit = serde_json::to_string(&app.audit().await).unwrap();
    assert!(!audit.contains(&canary), "the audit log leaks the canary");
    let logs = String::from_utf8_lossy(&logs().lock().unwrap()).to_string();
    assert!(logs.contains("request"), "logs were captured");
    assert!(!logs.contains(&canary), "the logs leak the canary");
}
