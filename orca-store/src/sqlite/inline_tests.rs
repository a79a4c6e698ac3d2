//! The inline point reads against the pooled path: the same rows, the same errors, and every
//! read sees the writes that returned before it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use orca_core::ids::{ExecutionId, JobId, SystemId, UserId};
use orca_core::model::{
    AuditRecord, Credential, Execution, ExecutionStatus, Finish, Grant, Health, HealthStatus,
    HostKeyPolicy, Job, JobOptions, JobStatus, Principal, Role, Scope, StatusCounts, System,
    SystemType, Targets, Timestamp, User, micros,
};
use orca_core::store::prelude::*;
use orca_core::{
    ClaimRequest, Clock, ErrorKind, KeyRing, ManualClock, RevokeTokens, TokenKind, TokenRecord,
};
use uuid::Uuid;

use super::inline::{self, Miss};
use super::rows::FromRecord;
use super::{SqliteOptions, SqliteStore, jobs, systems, users};

struct Fixture {
    store: SqliteStore,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::starting_now());
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("orca.db")),
        clock.clone(),
    )
    .await
    .expect("open");
    assert_eq!(store.inline.len(), 4, "inline reads are on by default");
    Fixture {
        store,
        clock,
        _dir: dir,
    }
}

impl Fixture {
    fn now(&self) -> Timestamp {
        micros(self.clock.now())
    }

    fn audit(&self, what: &str) -> AuditRecord {
        AuditRecord::new(
            self.now(),
            &Principal::system("test"),
            what,
            None,
            "create",
            serde_json::json!({}),
        )
    }

    /// The row `sql` finds for `key` on both paths: they must agree, and the inline path must
    /// have answered (not fallen back).
    async fn both<T, K>(&self, sql: &'static str, key: K) -> Option<T>
    where
        T: FromRecord + PartialEq + std::fmt::Debug + Send,
        K: inline::Key + Clone,
    {
        let fast = self
            .store
            .inline
            .run(|r| r.one::<T>(sql, &key))
            .expect("an idle inline connection answers")
            .expect("inline read");
        let pooled = inline::pooled_one::<T, K>(&self.store.reader, sql, key)
            .await
            .expect("pooled read");
        assert_eq!(fast, pooled, "{sql}");
        fast
    }
}

fn system(now: Timestamp, name: &str) -> System {
    System {
        id: SystemId::new(),
        name: name.into(),
        hostname: "localhost".into(),
        port: 0,
        system_type: SystemType::Local,
        username: String::new(),
        credential: None,
        tags: vec![],
        active: true,
        health: Health::default(),
        host_key_policy: HostKeyPolicy::Strict,
        options: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    }
}

fn job(now: Timestamp, created_by_id: Option<UserId>) -> Job {
    Job {
        id: JobId::new(),
        name: "echo".into(),
        command: "echo 'hi' \"there\"".into(),
        created_by: "test".into(),
        created_by_id,
        targets: Targets {
            systems: vec!["ssh-1".into()],
            tags: vec!["web".into()],
        },
        options: JobOptions {
            concurrency: Some(3),
            timeout_seconds: Some(60),
            retries: 2,
            ..JobOptions::default()
        },
        status: JobStatus::Pending,
        created_at: now,
        updated_at: now,
    }
}

fn user(now: Timestamp, name: &str, password_hash: Option<&str>, active: bool) -> User {
    User {
        id: UserId::new(),
        username: name.into(),
        role: Role::Operator,
        password_hash: password_hash.map(str::to_string),
        active,
        created_at: now,
        updated_at: now,
    }
}

fn token(now: Timestamp, user: UserId, kind: TokenKind, hash: &str) -> TokenRecord {
    TokenRecord {
        id: Uuid::now_v7(),
        user_id: user,
        kind,
        family: None,
        hash: hash.into(),
        name: None,
        scopes: vec![],
        created_at: now,
        expires_at: None,
        used_at: None,
        revoked_at: None,
    }
}

#[tokio::test]
async fn systems_read_the_same_on_both_paths() {
    let f = fixture().await;
    let now = f.now();
    let bare = system(now, "bare");
    let mut full = system(now, "full ünïcode 'name'");
    full.system_type = SystemType::Linux;
    full.hostname = "10.0.0.7".into();
    full.port = 2222;
    full.username = "deploy".into();
    full.credential = Some(
        KeyRing::ephemeral()
            .seal("full", &Credential::None)
            .expect("seal"),
    );
    full.tags = vec!["web".into(), "eu".into()];
    full.active = false;
    full.health = Health {
        status: HealthStatus::Unhealthy,
        checked_at: Some(now),
        latency_ms: Some(17),
        reason: Some("connection refused".into()),
    };
    full.host_key_policy = HostKeyPolicy::Tofu;
    full.options = BTreeMap::from([("shell".to_string(), "bash".to_string())]);
    for s in [&bare, &full] {
        f.store
            .create_system(s, &f.audit("system"))
            .await
            .expect("create system");
        let by_id: Option<System> = f.both(systems::GET_SYSTEM, s.id.0).await;
        assert_eq!(by_id.as_ref(), Some(s));
        let by_name: Option<System> = f.both(systems::FIND_SYSTEM, s.name.clone()).await;
        assert_eq!(by_name.as_ref(), Some(s));
        assert_eq!(&f.store.get_system(s.id).await.expect("get"), s);
        assert_eq!(&f.store.find_system(&s.name).await.expect("find"), s);
    }
    let none: Option<System> = f.both(systems::GET_SYSTEM, SystemId::new().0).await;
    assert_eq!(none, None);
    let err = f
        .store
        .get_system(SystemId::new())
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = f.store.find_system("nope").await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn jobs_executions_and_counts_read_the_same_on_both_paths() {
    let f = fixture().await;
    let now = f.now();
    let sys = system(now, "s");
    f.store
        .create_system(&sys, &f.audit("system"))
        .await
        .expect("create system");
    let owner = user(now, "owner", None, true);
    f.store
        .create_user(&owner, &f.audit("user"))
        .await
        .expect("create user");
    let anonymous = job(now, None);
    let owned = job(now, Some(owner.id));
    let execs: Vec<Execution> = (0..4)
        .map(|_| Execution::pending(owned.id, sys.id, now))
        .collect();
    f.store
        .create_job(&anonymous, &[], &f.audit("job"))
        .await
        .expect("create job");
    f.store
        .create_job(&owned, &execs, &f.audit("job"))
        .await
        .expect("create job");
    // One pending, one running (a lease), one completed (exit code), one failed (a reason).
    let claims = f
        .store
        .claim(&ClaimRequest {
            worker: "w1".into(),
            limit: 3,
            lease_for: Duration::from_secs(30),
            per_system: None,
        })
        .await
        .expect("claim");
    assert_eq!(claims.len(), 3);
    f.store
        .finish_one(&claims[1].lease, &Finish::exited(0))
        .await
        .expect("finish");
    f.store
        .finish_one(&claims[2].lease, &Finish::failed("no such host"))
        .await
        .expect("finish");

    for j in [&anonymous, &owned] {
        let read: Job = f.both(jobs::GET_JOB, j.id.0).await.expect("job found");
        assert_eq!(read.created_by_id, j.created_by_id);
        assert_eq!(read.targets, j.targets);
        assert_eq!(read.options, j.options);
        assert_eq!(f.store.get_job(j.id).await.expect("get job"), read);
        let counts: StatusCounts = f.both(jobs::JOB_COUNTS, j.id.0).await.expect("counts");
        assert_eq!(f.store.job_counts(j.id).await.expect("counts"), counts);
    }
    let counts = f.store.job_counts(owned.id).await.expect("counts");
    assert_eq!(
        (
            counts.pending,
            counts.running,
            counts.completed,
            counts.failed
        ),
        (1, 1, 1, 1)
    );
    let mut statuses = Vec::new();
    for e in &execs {
        let read: Execution = f
            .both(jobs::GET_EXECUTION, e.id.0)
            .await
            .expect("execution found");
        assert_eq!(f.store.get_execution(e.id).await.expect("get"), read);
        statuses.push(read.status);
        match read.status {
            ExecutionStatus::Running => assert!(read.lease.is_some() && read.started_at.is_some()),
            ExecutionStatus::Completed => assert_eq!(read.exit_code, Some(0)),
            ExecutionStatus::Failed => assert_eq!(read.error.as_deref(), Some("no such host")),
            ExecutionStatus::Pending => assert_eq!(&read, e),
            other => panic!("unexpected status {other:?}"),
        }
    }
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(
        statuses,
        [
            ExecutionStatus::Completed,
            ExecutionStatus::Failed,
            ExecutionStatus::Pending,
            ExecutionStatus::Running
        ]
    );
    let none: Option<Execution> = f.both(jobs::GET_EXECUTION, ExecutionId::new().0).await;
    assert_eq!(none, None);
    for err in [
        f.store.get_job(JobId::new()).await.expect_err("missing"),
        f.store.job_counts(JobId::new()).await.expect_err("missing"),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    let missing = ExecutionId::new();
    let err = f.store.get_execution(missing).await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.message(), format!("execution {missing} not found"));
}

#[tokio::test]
async fn users_grants_and_tokens_read_the_same_on_both_paths() {
    let f = fixture().await;
    let now = f.now();
    let sys = system(now, "s");
    f.store
        .create_system(&sys, &f.audit("system"))
        .await
        .expect("create system");
    let alice = user(
        now,
        "alice",
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        true,
    );
    let bob = user(now, "bob", None, false);
    for u in [&alice, &bob] {
        f.store
            .create_user(u, &f.audit("user"))
            .await
            .expect("create user");
        let by_id: Option<User> = f.both(users::GET_USER, u.id.0).await;
        assert_eq!(by_id.as_ref(), Some(u));
        let by_name: Option<User> = f.both(users::FIND_USER, u.username.clone()).await;
        assert_eq!(by_name.as_ref(), Some(u));
        assert_eq!(&f.store.get_user(u.id).await.expect("get"), u);
        assert_eq!(&f.store.find_user(&u.username).await.expect("find"), u);
    }
    let grants: Vec<Grant> = [Scope::Tag("web".into()), Scope::System(sys.id), Scope::All]
        .into_iter()
        .map(|scope| Grant {
            user_id: alice.id,
            scope,
        })
        .collect();
    f.store
        .set_grants(alice.id, &grants, &f.audit("grants"))
        .await
        .expect("grants");
    for (u, expected) in [(alice.id, grants.clone()), (bob.id, vec![])] {
        let fast: Vec<Scope> = f
            .store
            .inline
            .run(|r| r.all(users::LIST_GRANTS, &u.0))
            .expect("inline")
            .expect("grants");
        let pooled = users::pooled_grants(&f.store, u).await.expect("grants");
        assert_eq!(fast, pooled);
        assert_eq!(f.store.list_grants(u).await.expect("grants"), expected);
    }
    let err = f
        .store
        .list_grants(UserId::new())
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = users::pooled_grants(&f.store, UserId::new())
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let bare = token(now, alice.id, TokenKind::Api, "hash-api");
    let mut full = token(now, alice.id, TokenKind::Refresh, "hash-refresh");
    full.family = Some(Uuid::now_v7());
    full.name = Some("ci".into());
    full.scopes = vec!["jobs:read".into(), "jobs:write".into()];
    full.expires_at = Some(now + chrono::Duration::hours(1));
    for t in [&bare, &full] {
        f.store.create_token(t, None).await.expect("create token");
        let read: Option<TokenRecord> = f.both(users::FIND_TOKEN, t.hash.clone()).await;
        assert_eq!(read.as_ref(), Some(t));
        assert_eq!(&f.store.find_token(&t.hash).await.expect("find"), t);
    }
    assert!(f.store.use_token(full.id).await.expect("use"));
    f.store
        .revoke_tokens(RevokeTokens::Id(full.id), None)
        .await
        .expect("revoke");
    let read: TokenRecord = f
        .both(users::FIND_TOKEN, full.hash.clone())
        .await
        .expect("found");
    assert!(read.used_at.is_some() && read.revoked_at.is_some());
    let err = f
        .store
        .find_token("no-such-hash")
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = f.store.get_user(UserId::new()).await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_read_after_a_write_sees_it() {
    let f = fixture().await;
    let now = f.now();
    let mut u = user(now, "u0", None, true);
    f.store
        .create_user(&u, &f.audit("user"))
        .await
        .expect("create");
    for i in 1..200 {
        u.username = format!("u{i}");
        u.active = i % 2 == 0;
        f.store
            .update_user(&u, &f.audit("user"))
            .await
            .expect("update");
        // Straight after the commit, on the inline path, then through the Store.
        let fast: User = f
            .store
            .inline
            .run(|r| r.one(users::GET_USER, &u.id.0))
            .expect("inline")
            .expect("read")
            .expect("found");
        assert_eq!(fast, u, "inline read after update {i}");
        assert_eq!(f.store.get_user(u.id).await.expect("get"), u);
        let scopes = vec![Grant {
            user_id: u.id,
            scope: Scope::Tag(format!("t{i}")),
        }];
        f.store
            .set_grants(u.id, &scopes, &f.audit("grants"))
            .await
            .expect("grants");
        assert_eq!(f.store.list_grants(u.id).await.expect("grants"), scopes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_or_taken_connections_fall_back_to_the_pool() {
    let f = fixture().await;
    let now = f.now();
    let u = user(now, "u", None, true);
    f.store
        .create_user(&u, &f.audit("user"))
        .await
        .expect("create");

    // SQLite busy: no answer inline, so the caller goes to the pool.
    assert!(f.store.inline.run(|_| Err::<(), _>(Miss::Busy)).is_none());
    let busy = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("database is locked".into()),
    );
    assert!(matches!(Miss::from(busy), Miss::Busy));
    // Any other failure is the answer.
    let failed = f
        .store
        .inline
        .run(|r| r.one::<User>("SELECT no_such_column FROM users", &u.id.0));
    assert_eq!(
        failed.expect("answered").expect_err("bad SQL").kind(),
        ErrorKind::Storage
    );

    // Every inline connection taken by another thread: the Store reads through the pool.
    let (taken_tx, taken_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let inline = &f.store.inline;
        scope.spawn(move || {
            let guards = inline.take_all();
            taken_tx.send(guards.len()).expect("send");
            release_rx.recv().expect("release");
        });
        assert_eq!(taken_rx.recv().expect("taken"), 4);
        assert!(
            inline
                .run(|r| r.one::<User>(users::GET_USER, &u.id.0))
                .is_none()
        );
        let read = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(f.store.get_user(u.id))
        });
        assert_eq!(read.expect("read through the pool"), u);
        release_tx.send(()).expect("release");
    });
    assert!(
        f.store
            .inline
            .run(|r| r.one::<User>(users::GET_USER, &u.id.0))
            .is_some()
    );
}

#[tokio::test]
async fn inline_reads_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::starting_now());
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("orca.db")).inline_reads(false),
        clock.clone(),
    )
    .await
    .expect("open");
    assert_eq!(store.inline.len(), 0);
    let u = user(micros(clock.now()), "u", None, true);
    store
        .create_user(
            &u,
            &AuditRecord::new(
                clock.now(),
                &Principal::system("t"),
                "user",
                None,
                "create",
                serde_json::json!({}),
            ),
        )
        .await
        .expect("create");
    assert!(
        store
            .inline
            .run(|r| r.one::<User>(users::GET_USER, &u.id.0))
            .is_none()
    );
    assert_eq!(store.get_user(u.id).await.expect("get"), u);
}
