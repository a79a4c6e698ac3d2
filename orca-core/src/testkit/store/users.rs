//! Users, grants, tokens, rate limits, timestamp precision ([`crate::UserStore`]).

use std::sync::Arc;

use chrono::TimeZone;
use uuid::Uuid;

use super::StoreFactory;
use super::fixtures::{Ctx, assert_kind, ctx, opts, page, secs};
use crate::clock::add;
use crate::ids::{SystemId, UserId};
use crate::model::{
    AuditFilter, AuditRecord, Execution, Grant, OutputChunk, Principal, Role, Scope, Stream,
    Timestamp, User,
};
use crate::{ErrorKind, RevokeTokens, StoreExt, TokenKind, TokenRecord};

fn user(c: &Ctx, name: &str, role: Role) -> User {
    User {
        id: UserId::new(),
        username: name.into(),
        role,
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}")),
        active: true,
        created_at: c.now(),
        updated_at: c.now(),
    }
}

async fn create_user(c: &Ctx, name: &str, role: Role) -> User {
    let u = user(c, name, role);
    c.store
        .create_user(&u, &c.audit("user", "create"))
        .await
        .expect("create_user");
    u
}

fn token(c: &Ctx, user: UserId, kind: TokenKind, family: Option<Uuid>) -> TokenRecord {
    let id = Uuid::now_v7();
    TokenRecord {
        id,
        user_id: user,
        kind,
        family,
        hash: format!("{:064x}", id.as_u128()),
        name: (kind == TokenKind::Api).then(|| "ci".to_string()),
        scopes: vec!["jobs:run".into(), "systems:read".into()],
        created_at: c.now(),
        expires_at: Some(add(c.now(), secs(3600))),
        used_at: None,
        revoked_at: None,
    }
}

/// Users: create, get/find, list by name, update, uniqueness, not found.
pub async fn user_crud(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let carol = create_user(&c, "carol", Role::Viewer).await;
    let alice = create_user(&c, "alice", Role::Admin).await;
    let mut bob = user(&c, "bob", Role::Operator);
    bob.password_hash = None;
    c.store
        .create_user(&bob, &c.audit("user", "create"))
        .await
        .expect("create");
    assert_eq!(c.store.get_user(alice.id).await.expect("get"), alice);
    assert_eq!(c.store.find_user("bob").await.expect("find"), bob);
    let names: Vec<String> = c
        .store
        .list_users(page(0, 100))
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let second: Vec<String> = c
        .store
        .list_users(page(1, 1))
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(second, ["bob"]);

    let mut dup = user(&c, "alice", Role::Viewer);
    assert_kind(
        c.store.create_user(&dup, &c.audit("user", "create")).await,
        ErrorKind::AlreadyExists,
        "duplicate username",
    );
    let upper = user(&c, "Alice", Role::Viewer);
    assert_kind(
        c.store
            .create_user(&upper, &c.audit("user", "create"))
            .await,
        ErrorKind::AlreadyExists,
        "user names are unique without regard to case",
    );
    dup.id = carol.id;
    dup.username = "dave".into();
    assert_kind(
        c.store.create_user(&dup, &c.audit("user", "create")).await,
        ErrorKind::AlreadyExists,
        "duplicate id",
    );

    c.advance(secs(5));
    let mut carol2 = carol.clone();
    carol2.username = "caroline".into();
    carol2.role = Role::Operator;
    carol2.active = false;
    carol2.password_hash = Some("$argon2id$new".into());
    carol2.updated_at = c.now();
    c.store
        .update_user(&carol2, &c.audit("user", "update"))
        .await
        .expect("update");
    assert_eq!(c.store.get_user(carol.id).await.expect("get"), carol2);
    assert_eq!(c.store.find_user("caroline").await.expect("find"), carol2);
    assert_kind(
        c.store.find_user("carol").await,
        ErrorKind::NotFound,
        "old name",
    );
    let mut clash = carol2.clone();
    clash.username = "alice".into();
    assert_kind(
        c.store
            .update_user(&clash, &c.audit("user", "update"))
            .await,
        ErrorKind::AlreadyExists,
        "rename onto a taken name",
    );
    assert_kind(
        c.store.get_user(UserId::new()).await,
        ErrorKind::NotFound,
        "get",
    );
    assert_kind(c.store.find_user("zed").await, ErrorKind::NotFound, "find");
    assert_kind(
        c.store
            .update_user(&user(&c, "zed", Role::Viewer), &c.audit("user", "update"))
            .await,
        ErrorKind::NotFound,
        "update",
    );
}

fn sorted(mut g: Vec<Grant>) -> Vec<Grant> {
    g.sort_by_key(|g| serde_json::to_string(&g.scope).unwrap_or_default());
    g
}

/// `set_grants` replaces a user's grants and only that user's.
pub async fn user_grants_replace(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let u = create_user(&c, "op", Role::Operator).await;
    let v = create_user(&c, "viewer", Role::Viewer).await;
    assert!(c.store.list_grants(u.id).await.expect("list").is_empty());
    let g = |user: &User, scope| Grant {
        user_id: user.id,
        scope,
    };
    let sys = SystemId::new();
    let first = vec![
        g(&u, Scope::Tag("web".into())),
        g(&u, Scope::System(sys)),
        g(&u, Scope::Tag("db".into())),
    ];
    let audit = c.audit("user", "grant");
    c.store.set_grants(u.id, &first, &audit).await.expect("set");
    assert_eq!(c.audit_count(audit.id).await, 1);
    let vg = vec![g(&v, Scope::All)];
    c.store
        .set_grants(v.id, &vg, &c.audit("user", "grant"))
        .await
        .expect("set");
    assert_eq!(
        sorted(c.store.list_grants(u.id).await.expect("list")),
        sorted(first)
    );
    let second = vec![g(&u, Scope::Tag("eu".into()))];
    c.store
        .set_grants(u.id, &second, &c.audit("user", "grant"))
        .await
        .expect("replace");
    assert_eq!(c.store.list_grants(u.id).await.expect("list"), second);
    assert_eq!(c.store.list_grants(v.id).await.expect("list"), vg);
    c.store
        .set_grants(u.id, &[], &c.audit("user", "grant"))
        .await
        .expect("clear");
    assert!(c.store.list_grants(u.id).await.expect("list").is_empty());
    assert_eq!(c.store.list_grants(v.id).await.expect("list"), vg);
}

/// Tokens: create, find by hash, single use, revoke one.
pub async fn token_lifecycle(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let u = create_user(&c, "t", Role::Operator).await;
    let family = Uuid::now_v7();
    let refresh = token(&c, u.id, TokenKind::Refresh, Some(family));
    let audit = c.audit("token", "create");
    c.store
        .create_token(&refresh, Some(&audit))
        .await
        .expect("create");
    assert_eq!(c.audit_count(audit.id).await, 1);
    let mut api = token(&c, u.id, TokenKind::Api, None);
    api.expires_at = None;
    c.store.create_token(&api, None).await.expect("create api");
    assert_eq!(
        c.store.find_token(&refresh.hash).await.expect("find"),
        refresh
    );
    assert_eq!(c.store.find_token(&api.hash).await.expect("find"), api);
    assert_kind(
        c.store.find_token("0000").await,
        ErrorKind::NotFound,
        "unknown hash",
    );
    let mut dup = token(&c, u.id, TokenKind::Refresh, Some(family));
    dup.hash = refresh.hash.clone();
    assert_kind(
        c.store.create_token(&dup, None).await,
        ErrorKind::AlreadyExists,
        "duplicate hash",
    );
    assert_kind(
        c.store
            .create_token(&token(&c, UserId::new(), TokenKind::Api, None), None)
            .await,
        ErrorKind::NotFound,
        "token of a missing user",
    );
    let mut listed = c.store.list_tokens(u.id).await.expect("list");
    listed.sort_by_key(|t| t.id);
    let mut want = vec![refresh.clone(), api.clone()];
    want.sort_by_key(|t| t.id);
    assert_eq!(listed, want);

    c.advance(secs(1));
    assert!(
        c.store.use_token(refresh.id).await.expect("use"),
        "first use"
    );
    assert!(
        !c.store.use_token(refresh.id).await.expect("use"),
        "second use"
    );
    let used = c.store.find_token(&refresh.hash).await.expect("find");
    assert_eq!(used.used_at, Some(c.now()));
    assert_eq!(used.revoked_at, None);

    c.advance(secs(1));
    let audit = c.audit("token", "revoke");
    assert_eq!(
        c.store
            .revoke_tokens(RevokeTokens::Id(api.id), Some(&audit))
            .await
            .expect("revoke"),
        1
    );
    assert_eq!(c.audit_count(audit.id).await, 1);
    assert_eq!(
        c.store
            .revoke_tokens(RevokeTokens::Id(api.id), None)
            .await
            .expect("revoke again"),
        0
    );
    let revoked = c.store.find_token(&api.hash).await.expect("find");
    assert_eq!(revoked.revoked_at, Some(c.now()));
    assert!(!c.store.use_token(api.id).await.expect("use"), "revoked");
}

/// Revoking a family or a user's tokens counts only newly revoked ones.
pub async fn token_revoke_family_and_user(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let u = create_user(&c, "u", Role::Operator).await;
    let other = create_user(&c, "other", Role::Operator).await;
    let fam = Uuid::now_v7();
    let fam2 = Uuid::now_v7();
    let t1 = token(&c, u.id, TokenKind::Refresh, Some(fam));
    let t2 = token(&c, u.id, TokenKind::Refresh, Some(fam));
    let t3 = token(&c, u.id, TokenKind::Refresh, Some(fam2));
    let t4 = token(&c, u.id, TokenKind::Api, None);
    let t5 = token(&c, other.id, TokenKind::Api, None);
    for t in [&t1, &t2, &t3, &t4, &t5] {
        c.store.create_token(t, None).await.expect("create");
    }
    assert_eq!(
        c.store
            .revoke_tokens(RevokeTokens::Family(fam), None)
            .await
            .expect("revoke"),
        2
    );
    assert_eq!(
        c.store
            .revoke_tokens(RevokeTokens::Family(fam), None)
            .await
            .expect("revoke"),
        0
    );
    assert_eq!(
        c.store
            .revoke_tokens(RevokeTokens::User(u.id), Some(&c.audit("token", "revoke")))
            .await
            .expect("revoke"),
        2
    );
    for t in [&t1, &t2, &t3, &t4] {
        assert!(
            c.store
                .find_token(&t.hash)
                .await
                .expect("find")
                .revoked_at
                .is_some(),
            "revoked"
        );
        assert!(!c.store.use_token(t.id).await.expect("use"));
    }
    assert_eq!(
        c.store.find_token(&t5.hash).await.expect("find").revoked_at,
        None,
        "another user's token is untouched"
    );
    assert!(c.store.use_token(t5.id).await.expect("use"));
}

/// `rate_limit_hit` counts per key and window, atomically.
pub async fn rate_limit_windows(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let w0 = c.now();
    let w1 = add(w0, secs(60));
    for n in 1..=3 {
        assert_eq!(
            c.store
                .rate_limit_hit("login:alice", w0)
                .await
                .expect("hit"),
            n
        );
    }
    assert_eq!(
        c.store
            .rate_limit_hit("login:alice", w1)
            .await
            .expect("hit"),
        1
    );
    assert_eq!(
        c.store.rate_limit_hit("login:bob", w0).await.expect("hit"),
        1
    );
    assert_eq!(
        c.store
            .rate_limit_hit("login:alice", w0)
            .await
            .expect("hit"),
        4
    );

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = Arc::clone(&c.store);
        tasks.push(tokio::spawn(async move {
            store.rate_limit_hit("burst", w0).await.expect("hit")
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.expect("task"));
    }
    counts.sort();
    assert_eq!(
        counts,
        (1..=20).collect::<Vec<u64>>(),
        "every hit counted once"
    );
}

/// Timestamps round-trip at microsecond precision, far from now too.
pub async fn timestamps_round_trip_micros(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let t = |y, micros: i64| -> Timestamp {
        chrono::Utc
            .with_ymd_and_hms(y, 2, 28, 23, 59, 59)
            .single()
            .expect("date")
            + chrono::TimeDelta::microseconds(micros)
    };
    let times = [t(2001, 1), t(2099, 999_999), t(2031, 500_001), c.now()];
    let mut s = c.new_system("precise");
    s.created_at = times[0];
    s.updated_at = times[1];
    s.health.checked_at = Some(times[2]);
    c.store
        .create_system(&s, &c.audit("system", "create"))
        .await
        .expect("create");
    assert_eq!(c.store.get_system(s.id).await.expect("get"), s);

    let mut job = c.new_job(opts());
    job.created_at = times[0];
    job.updated_at = times[0];
    let mut e = Execution::pending(job.id, s.id, times[0]);
    e.not_before = times[2];
    c.store
        .create_job(&job, std::slice::from_ref(&e), &c.audit("job", "create"))
        .await
        .expect("create job");
    let got = c.store.get_job(job.id).await.expect("get");
    assert_eq!(got.created_at, job.created_at);
    assert_eq!(c.store.get_execution(e.id).await.expect("get"), e);

    let mut u = User {
        id: UserId::new(),
        username: "time".into(),
        role: Role::Viewer,
        password_hash: None,
        active: true,
        created_at: times[1],
        updated_at: times[2],
    };
    c.store
        .create_user(&u, &c.audit("user", "create"))
        .await
        .expect("user");
    assert_eq!(c.store.get_user(u.id).await.expect("get"), u);
    u.updated_at = times[3];
    c.store
        .update_user(&u, &c.audit("user", "update"))
        .await
        .expect("update");
    assert_eq!(c.store.get_user(u.id).await.expect("get"), u);

    let mut tok = token(&c, u.id, TokenKind::Refresh, Some(Uuid::now_v7()));
    tok.created_at = times[0];
    tok.expires_at = Some(times[1]);
    c.store.create_token(&tok, None).await.expect("token");
    assert_eq!(c.store.find_token(&tok.hash).await.expect("find"), tok);

    let r = AuditRecord::new(
        times[1],
        &Principal::system("clock"),
        "test",
        None,
        "tick",
        serde_json::Value::Null,
    );
    c.store.append_audit(&r).await.expect("audit");
    let got = c
        .store
        .list_audit(
            &AuditFilter {
                actor: Some("clock".into()),
                ..Default::default()
            },
            page(0, 10),
        )
        .await
        .expect("list");
    assert_eq!(got, vec![r]);

    let mut hk = c.host_key(s.id, "precise");
    hk.created_at = times[1];
    c.store
        .pin_host_key_if_none(&hk, &c.audit("host_key", "pin"))
        .await
        .expect("pin");
    assert_eq!(c.store.list_host_keys(s.id).await.expect("list"), vec![hk]);

    let cl = c.claim("w", 1).await.remove(0);
    assert_eq!(cl.lease.expires_at, add(c.now(), secs(30)));
    let ch = OutputChunk {
        execution_id: cl.execution.id,
        seq: 0,
        stream: Stream::Stdout,
        data: bytes::Bytes::from_static(b"t"),
        at: times[1],
    };
    c.store
        .append_output_one(&cl.lease, vec![ch.clone()])
        .await
        .expect("append");
    assert_eq!(
        c.store
            .read_output(cl.execution.id, 0, 1)
            .await
            .expect("read"),
        vec![ch]
    );
    let got = c.store.get_execution(cl.execution.id).await.expect("get");
    assert_eq!(got.lease, Some(cl.lease.clone()));
    assert_eq!(got.started_at, Some(c.now()));
}
