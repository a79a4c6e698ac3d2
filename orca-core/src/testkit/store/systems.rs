//! Systems, health, sealed credentials and host keys ([`crate::SystemStore`]).

use super::StoreFactory;
use super::fixtures::{assert_kind, ctx, opts, page, secs};
use crate::ErrorKind;
use crate::StoreExt;
use crate::ids::SystemId;
use crate::model::{Finish, Health, HealthStatus, HostKey, SealedSecret, SystemFilter, SystemType};

/// Create, get by id and by name; the stored system equals what was given.
pub async fn system_crud(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.new_system("web-1");
    c.store
        .create_system(&s, &c.audit("system", "create"))
        .await
        .expect("create_system");
    assert_eq!(c.store.get_system(s.id).await.expect("get"), s);
    assert_eq!(c.store.find_system("web-1").await.expect("find"), s);
    let all = c
        .store
        .list_systems(&SystemFilter::default(), page(0, 100))
        .await
        .expect("list");
    assert_eq!(all, vec![s.clone()]);

    // A system without a credential, with other fields, round-trips too.
    let mut w = c.new_system("win-1");
    w.system_type = SystemType::Windows;
    w.port = 5986;
    w.credential = None;
    w.tags = vec![];
    w.options.clear();
    w.active = false;
    c.store
        .create_system(&w, &c.audit("system", "create"))
        .await
        .expect("create second");
    assert_eq!(c.store.get_system(w.id).await.expect("get"), w);
}

/// A second system with the same name (or id) answers `AlreadyExists` and changes nothing.
pub async fn system_name_unique(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("db-1").await;
    let mut dup = c.new_system("db-1");
    dup.hostname = "other".into();
    assert_kind(
        c.store
            .create_system(&dup, &c.audit("system", "create"))
            .await,
        ErrorKind::AlreadyExists,
        "duplicate system name",
    );
    let mut same_id = c.new_system("db-2");
    same_id.id = s.id;
    assert_kind(
        c.store
            .create_system(&same_id, &c.audit("system", "create"))
            .await,
        ErrorKind::AlreadyExists,
        "duplicate system id",
    );
    assert_eq!(c.store.find_system("db-1").await.expect("find"), s);
    assert_kind(
        c.store.find_system("db-2").await,
        ErrorKind::NotFound,
        "system of a failed create",
    );
    // Renaming another system onto a taken name is refused as well.
    let mut other = c.system("db-3").await;
    let before = other.clone();
    other.name = "db-1".into();
    assert_kind(
        c.store
            .update_system(&other, &c.audit("system", "update"))
            .await,
        ErrorKind::AlreadyExists,
        "rename onto a taken name",
    );
    assert_eq!(c.store.get_system(other.id).await.expect("get"), before);
}

/// Missing systems answer `NotFound` everywhere.
pub async fn system_not_found(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let ghost = c.new_system("ghost");
    assert_kind(
        c.store.get_system(ghost.id).await,
        ErrorKind::NotFound,
        "get",
    );
    assert_kind(
        c.store.find_system("ghost").await,
        ErrorKind::NotFound,
        "find",
    );
    assert_kind(
        c.store
            .update_system(&ghost, &c.audit("system", "update"))
            .await,
        ErrorKind::NotFound,
        "update",
    );
    assert_kind(
        c.store
            .delete_system(ghost.id, &c.audit("system", "delete"))
            .await,
        ErrorKind::NotFound,
        "delete",
    );
    assert_kind(
        c.store.record_health(ghost.id, &Health::default()).await,
        ErrorKind::NotFound,
        "record_health",
    );
    assert_kind(
        c.store
            .pin_host_key_if_none(&c.host_key(ghost.id, "x"), &c.audit("host_key", "pin"))
            .await,
        ErrorKind::NotFound,
        "pin_host_key_if_none",
    );
    assert!(
        c.store
            .list_systems(&SystemFilter::default(), page(0, 10))
            .await
            .expect("list")
            .is_empty()
    );
}

/// Tag, type, health, active and name filters; results ordered by name.
pub async fn system_filters(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut a = c.new_system("alpha");
    a.tags = vec!["web".into(), "eu".into()];
    let mut b = c.new_system("bravo");
    b.tags = vec!["db".into()];
    b.system_type = SystemType::Windows;
    b.active = false;
    let mut l = c.new_system("local-charlie");
    l.tags = vec!["eu".into()];
    l.system_type = SystemType::Local;
    // Insert out of name order.
    for s in [&l, &b, &a] {
        c.store
            .create_system(s, &c.audit("system", "create"))
            .await
            .expect("create");
    }
    let healthy = Health {
        status: HealthStatus::Healthy,
        checked_at: Some(c.now()),
        latency_ms: Some(3),
        reason: None,
    };
    c.store.record_health(a.id, &healthy).await.expect("health");

    let names = |v: Vec<crate::model::System>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
    let list = |filter: SystemFilter| {
        let store = c.store.clone();
        async move {
            names(
                store
                    .list_systems(&filter, page(0, 100))
                    .await
                    .expect("list"),
            )
        }
    };
    assert_eq!(
        list(SystemFilter::default()).await,
        ["alpha", "bravo", "local-charlie"]
    );
    assert_eq!(
        list(SystemFilter {
            tags: vec!["eu".into()],
            ..Default::default()
        })
        .await,
        ["alpha", "local-charlie"]
    );
    assert_eq!(
        list(SystemFilter {
            tags: vec!["db".into(), "web".into()],
            ..Default::default()
        })
        .await,
        ["alpha", "bravo"],
        "tags match any"
    );
    assert_eq!(
        list(SystemFilter {
            system_type: Some(SystemType::Windows),
            ..Default::default()
        })
        .await,
        ["bravo"]
    );
    assert_eq!(
        list(SystemFilter {
            health: Some(HealthStatus::Healthy),
            ..Default::default()
        })
        .await,
        ["alpha"]
    );
    assert_eq!(
        list(SystemFilter {
            health: Some(HealthStatus::Unknown),
            ..Default::default()
        })
        .await,
        ["bravo", "local-charlie"]
    );
    assert_eq!(
        list(SystemFilter {
            active: Some(false),
            ..Default::default()
        })
        .await,
        ["bravo"]
    );
    assert_eq!(
        list(SystemFilter {
            active: Some(true),
            tags: vec!["eu".into()],
            name_contains: Some("char".into()),
            ..Default::default()
        })
        .await,
        ["local-charlie"]
    );
    assert!(
        list(SystemFilter {
            name_contains: Some("zulu".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
}

/// Offset/limit pages over systems ordered by name.
pub async fn system_pagination(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    for i in (0..25).rev() {
        c.system(&format!("node-{i:02}")).await;
    }
    let mut seen = Vec::new();
    for p in 0..3 {
        let got = c
            .store
            .list_systems(&SystemFilter::default(), page(p * 10, 10))
            .await
            .expect("list");
        assert_eq!(got.len(), if p < 2 { 10 } else { 5 }, "page {p}");
        seen.extend(got.into_iter().map(|s| s.name));
    }
    let want: Vec<String> = (0..25).map(|i| format!("node-{i:02}")).collect();
    assert_eq!(seen, want);
    assert!(
        c.store
            .list_systems(&SystemFilter::default(), page(25, 10))
            .await
            .expect("list")
            .is_empty()
    );
}

/// `update_system` replaces every field, including the name.
pub async fn system_update(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut s = c.system("old-name").await;
    c.advance(secs(5));
    s.name = "new-name".into();
    s.hostname = "10.0.0.9".into();
    s.port = 2222;
    s.username = "root".into();
    s.tags = vec!["x".into(), "y".into()];
    s.active = false;
    s.credential = Some(SealedSecret("orca1:k2:other".into()));
    s.host_key_policy = crate::model::HostKeyPolicy::Tofu;
    s.options.insert("transport".into(), "ntlm".into());
    s.updated_at = c.now();
    c.store
        .update_system(&s, &c.audit("system", "update"))
        .await
        .expect("update");
    assert_eq!(c.store.get_system(s.id).await.expect("get"), s);
    assert_eq!(c.store.find_system("new-name").await.expect("find"), s);
    assert_kind(
        c.store.find_system("old-name").await,
        ErrorKind::NotFound,
        "old name",
    );
}

/// `delete_system` removes the system and its host keys.
pub async fn system_delete(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("doomed").await;
    let keep = c.system("kept").await;
    c.store
        .pin_host_key_if_none(&c.host_key(s.id, "aaa"), &c.audit("host_key", "pin"))
        .await
        .expect("pin");
    c.store
        .delete_system(s.id, &c.audit("system", "delete"))
        .await
        .expect("delete");
    assert_kind(
        c.store.get_system(s.id).await,
        ErrorKind::NotFound,
        "deleted",
    );
    assert!(
        c.store
            .list_host_keys(s.id)
            .await
            .map(|k| k.is_empty())
            .unwrap_or(true),
        "host keys of a deleted system must be gone"
    );
    assert_eq!(c.store.get_system(keep.id).await.expect("kept"), keep);
    // The name is free again.
    c.system("doomed").await;
}

/// Delete is refused with `Conflict` while a system has pending or running executions;
/// once they ended it succeeds and past executions keep the system id.
pub async fn system_delete_refused_while_busy(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("busy").await;
    let (_job, execs) = c.job(&[&s], opts()).await;
    let del = c.audit("system", "delete");
    assert_kind(
        c.store.delete_system(s.id, &del).await,
        ErrorKind::Conflict,
        "delete with a pending execution",
    );
    assert_eq!(
        c.audit_count(del.id).await,
        0,
        "no audit for a refused delete"
    );
    let claims = c.claim("w1", 10).await;
    assert_eq!(claims.len(), 1);
    assert_kind(
        c.store
            .delete_system(s.id, &c.audit("system", "delete"))
            .await,
        ErrorKind::Conflict,
        "delete with a running execution",
    );
    c.store
        .finish_one(&claims[0].lease, &Finish::exited(0))
        .await
        .expect("finish");
    c.store
        .delete_system(s.id, &del)
        .await
        .expect("delete after the execution ended");
    assert_eq!(c.audit_count(del.id).await, 1);
    let e = c
        .store
        .get_execution(execs[0].id)
        .await
        .expect("execution kept");
    assert_eq!(e.system_id, s.id);
}

/// `record_health` stores the probe result.
pub async fn system_record_health(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("probe-me").await;
    let bad = Health {
        status: HealthStatus::Unhealthy,
        checked_at: Some(c.now()),
        latency_ms: None,
        reason: Some("connection refused".into()),
    };
    c.store.record_health(s.id, &bad).await.expect("record");
    let got = c.store.get_system(s.id).await.expect("get");
    assert_eq!(got.health, bad);
    assert_eq!(got.name, s.name);
    assert_eq!(got.credential, s.credential);
    c.advance(secs(60));
    let good = Health {
        status: HealthStatus::Healthy,
        checked_at: Some(c.now()),
        latency_ms: Some(12),
        reason: None,
    };
    c.store.record_health(s.id, &good).await.expect("record");
    assert_eq!(c.store.get_system(s.id).await.expect("get").health, good);
}

/// `list_sealed_not_under` finds credentials sealed under other keys; `reseal` is a CAS.
pub async fn system_reseal(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut s = c.new_system(&format!("sealed-{i}"));
        s.credential = Some(SealedSecret(format!(
            "orca1:{}:tok{i}",
            if i % 2 == 0 { "old" } else { "new" }
        )));
        c.store
            .create_system(&s, &c.audit("system", "create"))
            .await
            .expect("create");
        ids.push(s.id);
    }
    let mut none = c.new_system("no-credential");
    none.credential = None;
    c.store
        .create_system(&none, &c.audit("system", "create"))
        .await
        .expect("create");

    let mut stale = c
        .store
        .list_sealed_not_under("new", 100)
        .await
        .expect("list");
    stale.sort_by_key(|(id, _)| *id);
    let want: Vec<(SystemId, SealedSecret)> = [0, 2, 4]
        .iter()
        .map(|i| (ids[*i], SealedSecret(format!("orca1:old:tok{i}"))))
        .collect();
    assert_eq!(stale, want);
    assert_eq!(
        c.store
            .list_sealed_not_under("new", 2)
            .await
            .expect("list")
            .len(),
        2,
        "limit"
    );

    let (id, old) = stale[0].clone();
    let new = SealedSecret("orca1:new:resealed".into());
    assert!(c.store.reseal(id, &old, &new).await.expect("reseal"));
    assert_eq!(
        c.store.get_system(id).await.expect("get").credential,
        Some(new.clone())
    );
    // The old value no longer matches: a second CAS with it does nothing.
    let other = SealedSecret("orca1:new:other".into());
    assert!(!c.store.reseal(id, &old, &other).await.expect("reseal"));
    assert_eq!(
        c.store.get_system(id).await.expect("get").credential,
        Some(new)
    );
    assert_eq!(
        c.store
            .list_sealed_not_under("new", 100)
            .await
            .expect("list")
            .len(),
        2
    );
}

/// Ten concurrent `pin_host_key_if_none` calls: exactly one key is pinned and every caller
/// sees the same one; only the winner's audit record is written.
pub async fn host_keys_pin_if_none_race(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("tofu-host").await;
    let mut tasks = Vec::new();
    let mut audits = Vec::new();
    for i in 0..10 {
        let store = c.store.clone();
        let key = c.host_key(s.id, &format!("key{i}"));
        let audit = c.audit("host_key", "pin");
        audits.push(audit.id);
        tasks.push(tokio::spawn(async move {
            store.pin_host_key_if_none(&key, &audit).await
        }));
    }
    let mut results: Vec<Vec<HostKey>> = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task").expect("pin"));
    }
    let pinned = c.store.list_host_keys(s.id).await.expect("list");
    assert_eq!(pinned.len(), 1, "exactly one key pinned: {pinned:?}");
    for r in &results {
        assert_eq!(r, &pinned, "every racer sees the winner");
    }
    let mut written = 0;
    for id in audits {
        written += c.audit_count(id).await;
    }
    assert_eq!(written, 1, "only the winner writes an audit record");

    // Once pinned, another pin does nothing.
    let again = c
        .store
        .pin_host_key_if_none(&c.host_key(s.id, "late"), &c.audit("host_key", "pin"))
        .await
        .expect("pin");
    assert_eq!(again, pinned);
}

/// `replace_host_keys` swaps the whole set, per system.
pub async fn host_keys_replace(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("rotated").await;
    let other = c.system("untouched").await;
    let first = c.host_key(s.id, "one");
    c.store
        .pin_host_key_if_none(&first, &c.audit("host_key", "pin"))
        .await
        .expect("pin");
    let other_key = c.host_key(other.id, "other");
    c.store
        .pin_host_key_if_none(&other_key, &c.audit("host_key", "pin"))
        .await
        .expect("pin other");
    assert_eq!(
        c.store.list_host_keys(s.id).await.expect("list"),
        vec![first]
    );

    let mut new = vec![c.host_key(s.id, "two"), c.host_key(s.id, "three")];
    new[1].algorithm = "ecdsa-sha2-nistp256".into();
    let audit = c.audit("host_key", "replace");
    c.store
        .replace_host_keys(s.id, &new, &audit)
        .await
        .expect("replace");
    assert_eq!(c.audit_count(audit.id).await, 1);
    let mut got = c.store.list_host_keys(s.id).await.expect("list");
    got.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    new.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    assert_eq!(got, new);
    assert_eq!(
        c.store.list_host_keys(other.id).await.expect("list"),
        vec![other_key]
    );

    c.store
        .replace_host_keys(s.id, &[], &c.audit("host_key", "replace"))
        .await
        .expect("clear");
    assert!(c.store.list_host_keys(s.id).await.expect("list").is_empty());
    // With no key pinned, pinning works again.
    let k = c.host_key(s.id, "four");
    assert_eq!(
        c.store
            .pin_host_key_if_none(&k, &c.audit("host_key", "pin"))
            .await
            .expect("pin"),
        vec![k]
    );
}
