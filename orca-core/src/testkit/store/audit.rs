//! Audit records: written with their mutation, listed newest first ([`crate::AuditStore`]).

use super::StoreFactory;
use super::fixtures::{assert_kind, ctx, page, secs};
use crate::ErrorKind;
use crate::ids::UserId;
use crate::model::{AuditFilter, AuditOutcome, AuditRecord, Grant, Principal, Role, Scope, User};

/// A successful mutation leaves exactly its audit record; a failing one leaves none.
pub async fn audit_atomic_with_mutation(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.new_system("audited");
    let ok = c.audit("system", "create");
    c.store.create_system(&s, &ok).await.expect("create");
    let all = c
        .store
        .list_audit(&AuditFilter::default(), page(0, 100))
        .await
        .expect("list");
    assert_eq!(all, vec![ok.clone()], "exactly the given record");

    let dup = c.audit("system", "create");
    assert_kind(
        c.store.create_system(&c.new_system("audited"), &dup).await,
        ErrorKind::AlreadyExists,
        "duplicate",
    );
    assert_eq!(
        c.audit_count(dup.id).await,
        0,
        "a failed create writes no audit"
    );

    let upd = c.audit("system", "update");
    assert_kind(
        c.store.update_system(&c.new_system("nobody"), &upd).await,
        ErrorKind::NotFound,
        "update missing",
    );
    assert_eq!(c.audit_count(upd.id).await, 0);

    let grants = c.audit("user", "grant");
    let ghost = UserId::new();
    assert_kind(
        c.store
            .set_grants(
                ghost,
                &[Grant {
                    user_id: ghost,
                    scope: Scope::All,
                }],
                &grants,
            )
            .await,
        ErrorKind::NotFound,
        "grants of a missing user",
    );
    assert_eq!(c.audit_count(grants.id).await, 0);

    let now = c.now();
    let user = User {
        id: UserId::new(),
        username: "alice".into(),
        role: Role::Operator,
        password_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    let mk = c.audit("user", "create");
    c.store.create_user(&user, &mk).await.expect("create user");
    let mut clash = user.clone();
    clash.id = UserId::new();
    let mk2 = c.audit("user", "create");
    assert_kind(
        c.store.create_user(&clash, &mk2).await,
        ErrorKind::AlreadyExists,
        "duplicate user",
    );
    assert_eq!(c.audit_count(mk.id).await, 1);
    assert_eq!(c.audit_count(mk2.id).await, 0);
    let all = c
        .store
        .list_audit(&AuditFilter::default(), page(0, 100))
        .await
        .expect("list");
    assert_eq!(all.len(), 2, "only the two successful mutations: {all:?}");
}

/// Filters by actor, resource, action and time; newest first; pages.
pub async fn audit_list_filters_and_pages(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let alice = Principal::system("alice");
    let bob = Principal::system("bob");
    let start = c.now();
    let mut all = Vec::new();
    for i in 0..30u32 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        let (rt, action) = match i % 3 {
            0 => ("system", "create"),
            1 => ("job", "submit"),
            _ => ("job", "cancel"),
        };
        let mut r = AuditRecord::new(
            c.now(),
            who,
            rt,
            Some(format!("res-{}", i % 5)),
            action,
            serde_json::json!({ "i": i, "nested": { "list": [1, 2, 3] } }),
        );
        if i % 7 == 0 {
            r = r.with_outcome(AuditOutcome::Denied);
        }
        c.store.append_audit(&r).await.expect("append");
        all.push(r);
        c.advance(secs(1));
    }
    let newest_first: Vec<AuditRecord> = all.iter().rev().cloned().collect();
    let list = |filter: AuditFilter, p| {
        let store = c.store.clone();
        async move { store.list_audit(&filter, p).await.expect("list") }
    };
    assert_eq!(
        list(AuditFilter::default(), page(0, 100)).await,
        newest_first
    );
    let mut paged = Vec::new();
    for p in 0..4 {
        paged.extend(list(AuditFilter::default(), page(p * 8, 8)).await);
    }
    assert_eq!(paged, newest_first);

    let check = |filter: AuditFilter| {
        let want: Vec<AuditRecord> = newest_first
            .iter()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        (filter, want)
    };
    let cases = [
        AuditFilter {
            actor: Some("bob".into()),
            ..Default::default()
        },
        AuditFilter {
            resource_type: Some("job".into()),
            ..Default::default()
        },
        AuditFilter {
            resource_type: Some("job".into()),
            action: Some("cancel".into()),
            ..Default::default()
        },
        AuditFilter {
            resource_id: Some("res-3".into()),
            ..Default::default()
        },
        AuditFilter {
            since: Some(start + chrono::TimeDelta::seconds(10)),
            until: Some(start + chrono::TimeDelta::seconds(20)),
            ..Default::default()
        },
        AuditFilter {
            actor: Some("alice".into()),
            action: Some("create".into()),
            since: Some(start + chrono::TimeDelta::seconds(5)),
            ..Default::default()
        },
        AuditFilter {
            actor: Some("carol".into()),
            ..Default::default()
        },
    ];
    for filter in cases {
        let (filter, want) = check(filter);
        let got = list(filter.clone(), page(0, 100)).await;
        assert_eq!(got, want, "filter {filter:?}");
    }
    // `since` is inclusive, `until` exclusive.
    let got = list(
        AuditFilter {
            since: Some(all[3].at),
            until: Some(all[5].at),
            ..Default::default()
        },
        page(0, 100),
    )
    .await;
    assert_eq!(got, vec![all[4].clone(), all[3].clone()]);
}
