//! SQLite inline point reads (`SqliteOptions::inline_reads`), through the public API: a store
//! that reads inline answers exactly like one that reads through its pool, and sees what
//! another store on the same file committed.
#![cfg(feature = "sqlite")]

use std::collections::BTreeMap;
use std::sync::Arc;

use orca_core::ids::{ExecutionId, JobId, SystemId, UserId};
use orca_core::model::{
    AuditRecord, Execution, Grant, Health, HostKeyPolicy, Job, JobOptions, JobStatus, Principal,
    Role, Scope, System, SystemType, Targets, Timestamp, User, micros,
};
use orca_core::store::prelude::*;
use orca_core::{Clock, ManualClock, TokenKind, TokenRecord};
use orca_store::sqlite::{SqliteOptions, SqliteStore};

struct Pair {
    /// The engine, reading inline (the default).
    inline: Arc<SqliteStore>,
    /// A client on the same file that reads through its pool only.
    pooled: SqliteStore,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn pair() -> Pair {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("orca.db");
    let clock = Arc::new(ManualClock::starting_now());
    let inline = SqliteStore::open(SqliteOptions::new(&path), clock.clone())
        .await
        .expect("open the engine");
    assert!(inline.options().inline_reads, "on by default");
    let pooled = SqliteStore::open(
        SqliteOptions::new(&path).client().inline_reads(false),
        clock.clone(),
    )
    .await
    .expect("open a client");
    Pair {
        inline: Arc::new(inline),
        pooled,
        clock,
        _dir: dir,
    }
}

impl Pair {
    fn now(&self) -> Timestamp {
        micros(self.clock.now())
    }

    fn audit(&self) -> AuditRecord {
        AuditRecord::new(
            self.now(),
            &Principal::system("test"),
            "test",
            None,
            "create",
            serde_json::json!({}),
        )
    }
}

fn user(now: Timestamp, name: &str) -> User {
    User {
        id: UserId::new(),
        username: name.into(),
        role: Role::Viewer,
        password_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    }
}

/// Both stores give the same answer (value, or error kind and message). Arguments are
/// evaluated once per store: pass variables.
macro_rules! same {
    ($p:expr, $method:ident($($arg:expr),*)) => {{
        let a = $p.inline.$method($($arg),*).await;
        let b = $p.pooled.$method($($arg),*).await;
        match (&a, &b) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, stringify!($method)),
            (Err(x), Err(y)) => {
                assert_eq!(x.kind(), y.kind(), stringify!($method));
                assert_eq!(x.message(), y.message(), stringify!($method));
            }
            _ => panic!("{}: {a:?} vs {b:?}", stringify!($method)),
        }
        a
    }};
}

#[tokio::test]
async fn inline_and_pooled_reads_agree() {
    let p = pair().await;
    let now = p.now();
    let sys = System {
        id: SystemId::new(),
        name: "web-1".into(),
        hostname: "10.0.0.1".into(),
        port: 22,
        system_type: SystemType::Linux,
        username: "deploy".into(),
        credential: Some(orca_core::model::SealedSecret(
            "orca1:k1:gAAAAABopaque".into(),
        )),
        tags: vec!["web".into()],
        active: true,
        health: Health::default(),
        host_key_policy: HostKeyPolicy::Tofu,
        options: BTreeMap::from([("k".to_string(), "v".to_string())]),
        created_at: now,
        updated_at: now,
    };
    p.inline
        .create_system(&sys, &p.audit())
        .await
        .expect("system");
    let owner = user(now, "owner");
    p.inline
        .create_user(&owner, &p.audit())
        .await
        .expect("user");
    p.inline
        .set_grants(
            owner.id,
            &[Grant {
                user_id: owner.id,
                scope: Scope::System(sys.id),
            }],
            &p.audit(),
        )
        .await
        .expect("grants");
    let job = Job {
        id: JobId::new(),
        name: "uptime".into(),
        command: "uptime".into(),
        created_by: "owner".into(),
        created_by_id: Some(owner.id),
        targets: Targets {
            systems: vec!["web-1".into()],
            tags: vec![],
        },
        options: JobOptions::default(),
        status: JobStatus::Pending,
        created_at: now,
        updated_at: now,
    };
    let exec = Execution::pending(job.id, sys.id, now);
    p.inline
        .create_job(&job, std::slice::from_ref(&exec), &p.audit())
        .await
        .expect("job");
    let token = TokenRecord {
        id: uuid::Uuid::now_v7(),
        user_id: owner.id,
        kind: TokenKind::Api,
        family: None,
        hash: "0123abcd".into(),
        name: Some("ci".into()),
        scopes: vec!["read".into()],
        created_at: now,
        expires_at: None,
        used_at: None,
        revoked_at: None,
    };
    p.inline.create_token(&token, None).await.expect("token");

    assert_eq!(same!(p, get_system(sys.id)).expect("system"), sys);
    same!(p, find_system("web-1")).expect("found");
    same!(p, get_job(job.id)).expect("found");
    same!(p, job_counts(job.id)).expect("found");
    assert_eq!(same!(p, get_execution(exec.id)).expect("execution"), exec);
    assert_eq!(same!(p, get_user(owner.id)).expect("user"), owner);
    same!(p, find_user("owner")).expect("found");
    assert_eq!(same!(p, list_grants(owner.id)).expect("grants").len(), 1);
    assert_eq!(same!(p, find_token("0123abcd")).expect("token"), token);

    // Missing records: the same errors.
    let (sys_id, job_id, exec_id, user_id) = (
        SystemId::new(),
        JobId::new(),
        ExecutionId::new(),
        UserId::new(),
    );
    same!(p, get_system(sys_id)).expect_err("missing");
    same!(p, find_system("nope")).expect_err("missing");
    same!(p, get_job(job_id)).expect_err("missing");
    same!(p, job_counts(job_id)).expect_err("missing");
    same!(p, get_execution(exec_id)).expect_err("missing");
    same!(p, get_user(user_id)).expect_err("missing");
    same!(p, find_user("nobody")).expect_err("missing");
    same!(p, list_grants(user_id)).expect_err("missing");
    same!(p, find_token("ffff")).expect_err("missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inline_reads_see_what_was_committed_before_them() {
    let p = pair().await;
    let now = p.now();
    // Written by the client, read inline by the engine; and the other way round.
    let mut a = user(now, "a0");
    let mut b = user(now, "b0");
    p.pooled.create_user(&a, &p.audit()).await.expect("user");
    p.inline.create_user(&b, &p.audit()).await.expect("user");
    // Readers that hammer the inline connections meanwhile, so that some reads find them all
    // taken and go through the pool.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut noise = Vec::new();
    for _ in 0..8 {
        let (store, stop, id) = (p.inline.clone(), stop.clone(), b.id);
        noise.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.get_user(id).await.expect("noise read");
                n += 1;
                if n.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            n
        }));
    }
    for i in 1..300 {
        a.username = format!("a{i}");
        p.pooled.update_user(&a, &p.audit()).await.expect("update");
        assert_eq!(p.inline.get_user(a.id).await.expect("read"), a, "after {i}");
        assert_eq!(
            p.inline.find_user(&a.username).await.expect("find").id,
            a.id
        );
        b.username = format!("b{i}");
        p.inline.update_user(&b, &p.audit()).await.expect("update");
        assert_eq!(p.inline.get_user(b.id).await.expect("read"), b, "after {i}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for n in noise {
        assert!(n.await.expect("noise task") > 0);
    }
}
