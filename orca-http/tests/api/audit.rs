//! Every mutating and every denied request leaves exactly one audit record, with the request id
//! and the client address.

use orca_core::model::{AuditOutcome, Role, Scope};
use poem::http::Method;
use serde_json::json;

use crate::common::{Answer, App};

async fn one(app: &App, a: &Answer) -> orca_core::model::AuditRecord {
    let recs = app.audit_for(&a.request_id()).await;
    assert_eq!(
        recs.len(),
        1,
        "one record for {} {:?}: {recs:#?}",
        a.status,
        a.body
    );
    let r = recs.into_iter().next().unwrap();
    assert!(r.details["client_address"].is_string(), "{r:?}");
    r
}

#[tokio::test]
async fn one_record_per_mutating_or_denied_request() {
    let app = App::new().await;
    let admin = app.admin().await;
    app.user("val", Role::Viewer, vec![Scope::Tag("web".into())])
        .await;
    let (viewer, _) = app.login("val").await;

    // Success of a mutation, audited by the facade in the same transaction.
    let a = app
        .post(
            "/api/v1/systems",
            &admin,
            json!({"name": "web1", "type": "local", "tags": ["web"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let r = one(&app, &a).await;
    assert_eq!(
        (
            r.actor.as_str(),
            r.resource_type.as_str(),
            r.action.as_str(),
            r.outcome
        ),
        ("admin", "system", "create", AuditOutcome::Success)
    );

    // Denied mutation (policy): one `denied` record.
    let a = app
        .post(
            "/api/v1/systems",
            &viewer,
            json!({"name": "web2", "type": "local"}),
        )
        .await;
    assert_eq!(a.status, 403);
    let r = one(&app, &a).await;
    assert_eq!((r.actor.as_str(), r.outcome), ("val", AuditOutcome::Denied));

    // Denied read.
    let a = app.get("/api/v1/audit", &viewer).await;
    assert_eq!(a.status, 403);
    assert_eq!(one(&app, &a).await.outcome, AuditOutcome::Denied);

    // Unauthenticated.
    let a = app.call(Method::GET, "/api/v1/systems", None, None).await;
    assert_eq!(a.status, 401);
    let r = one(&app, &a).await;
    assert_eq!(
        (r.actor.as_str(), r.outcome),
        ("anonymous", AuditOutcome::Denied)
    );

    // A mutation that fails validation.
    let a = app
        .post(
            "/api/v1/systems",
            &admin,
            json!({"name": "bad name", "type": "local"}),
        )
        .await;
    assert_eq!(a.status, 400);
    let r = one(&app, &a).await;
    assert_eq!(
        (r.outcome, r.details["status"].as_u64()),
        (AuditOutcome::Failure, Some(400))
    );

    // A parse error before any handler ran.
    let a = app
        .raw(
            Method::POST,
            "/api/v1/jobs",
            Some(&admin),
            "application/json",
            b"{".to_vec(),
        )
        .await;
    assert_eq!(a.status, 400);
    one(&app, &a).await;

    // Login: failure and success.
    let a = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "wrong wrong wrong"})),
        )
        .await;
    let r = one(&app, &a).await;
    assert_eq!(
        (r.action.as_str(), r.outcome),
        ("login", AuditOutcome::Failure)
    );
    let a = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": crate::common::PASSWORD})),
        )
        .await;
    let r = one(&app, &a).await;
    assert_eq!(
        (r.action.as_str(), r.outcome),
        ("login", AuditOutcome::Success)
    );

    // Reads that succeed are not audited.
    let a = app.get("/api/v1/systems", &viewer).await;
    assert_eq!(a.status, 200);
    assert!(app.audit_for(&a.request_id()).await.is_empty());

    // The audit API shows the records with their request ids, newest first, filtered.
    let list = app.get("/api/v1/audit?actor=val&limit=10", &admin).await;
    assert_eq!(list.status, 200);
    let items = list.body["items"].as_array().unwrap();
    assert!(items.len() >= 2 && items.iter().all(|i| i["actor"] == "val"));
    assert!(items.iter().all(|i| i["details"]["request_id"].is_string()));
}
