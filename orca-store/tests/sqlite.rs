//! SQLite store: the shared conformance suite plus what only a file database has (engine lock,
//! recognising foreign files, schema versions, pragmas, persistence).
#![cfg(feature = "sqlite")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orca_core::ids::{JobId, SystemId};
use orca_core::model::{
    AuditRecord, Execution, ExecutionStatus, Finish, Health, HostKeyPolicy, Job, JobOptions,
    JobStatus, OutputChunk, Principal, Stream, System, SystemType, Targets,
};
use orca_core::store::prelude::*;
use orca_core::testkit::store::StoreFactory;
use orca_core::{ClaimRequest, Clock, ErrorKind, ManualClock, Store, StoreExt};
use orca_store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use sqlx::Connection;

/// Fresh database files in temp dirs that live as long as the factory.
#[derive(Default)]
struct Factory {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

#[orca_core::async_trait]
impl StoreFactory for Factory {
    async fn fresh(&self, clock: Arc<ManualClock>) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("orca.db");
        self.dirs.lock().expect("lock").push(dir);
        Arc::new(
            SqliteStore::open_path(path, clock)
                .await
                .expect("open a fresh SQLite store"),
        )
    }
}

orca_core::store_conformance!(Factory::default());

// ----- helpers -----

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::starting_now())
}

fn audit(clock: &ManualClock, what: &str) -> AuditRecord {
    AuditRecord::new(
        clock.now(),
        &Principal::system("test"),
        what,
        None,
        "create",
        serde_json::json!({}),
    )
}

fn system(clock: &ManualClock, name: &str) -> System {
    System {
        id: SystemId::new(),
        name: name.into(),
        hostname: "localhost".into(),
        port: 0,
        system_type: SystemType::Local,
        username: String::new(),
        credential: None,
        tags: vec!["t".into()],
        active: true,
        health: Health::default(),
        host_key_policy: HostKeyPolicy::Strict,
        options: BTreeMap::new(),
        created_at: clock.now(),
        updated_at: clock.now(),
    }
}

fn job(clock: &ManualClock, options: JobOptions) -> Job {
    Job {
        id: JobId::new(),
        name: "echo".into(),
        command: "echo hi".into(),
        created_by: "test".into(),
        created_by_id: None,
        targets: Targets::default(),
        options,
        status: JobStatus::Pending,
        created_at: clock.now(),
        updated_at: clock.now(),
    }
}

/// A system and a job with `n` executions on it.
async fn seed(store: &SqliteStore, clock: &ManualClock, n: usize) -> (System, Job, Vec<Execution>) {
    let sys = system(clock, &format!("s-{}", SystemId::new()));
    store
        .create_system(&sys, &audit(clock, "system"))
        .await
        .expect("create system");
    let j = job(clock, JobOptions::default());
    let execs: Vec<_> = (0..n)
        .map(|_| Execution::pending(j.id, sys.id, clock.now()))
        .collect();
    store
        .create_job(&j, &execs, &audit(clock, "job"))
        .await
        .expect("create job");
    (sys, j, execs)
}

fn claim_req(limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker: "w1".into(),
        limit,
        lease_for: Duration::from_secs(30),
        per_system: None,
    }
}

/// The files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

async fn raw(path: &Path) -> sqlx::SqliteConnection {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    sqlx::SqliteConnection::connect_with(&opts)
        .await
        .expect("raw connection")
}

fn require_all() -> bool {
    std::env::var("ORCA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

// ----- engine lock -----

#[tokio::test]
async fn second_engine_in_same_process_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("orca.db");
    let first = SqliteStore::open_path(&path, clock())
        .await
        .expect("first engine");
    let err = SqliteStore::open_path(&path, clock())
        .await
        .expect_err("second engine must fail");
    assert_eq!(err.kind(), ErrorKind::Incompatible, "{err}");
    assert!(err.message().contains("another Orca engine"), "{err}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    // A client may open it next to the engine.
    let client = SqliteStore::open(SqliteOptions::new(&path).client(), clock())
        .await
        .expect("client next to the engine");
    assert!(!client.is_engine());
    first.close().await;
    // Released with the store: a new engine opens.
    let again = SqliteStore::open_path(&path, clock())
        .await
        .expect("engine after the first closed");
    assert!(again.is_engine());
}

#[tokio::test]
async fn engine_lock_held_by_another_process_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("orca.db");
    SqliteStore::open_path(&path, clock())
        .await
        .expect("create")
        .close()
        .await;
    let lock = SqliteOptions::new(&path).lock_path();
    // util-linux `flock` takes the same flock(2) lock std's File::try_lock takes.
    let child = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "!!! SKIPPED: cannot run `flock` (util-linux) to hold the lock from another process: {e}"
            );
            assert!(
                !require_all(),
                "ORCA_TEST_REQUIRE_ALL=1 but `flock` is missing: {e}"
            );
            return;
        }
    };
    // Wait until the child holds the lock.
    let mut refused = None;
    for _ in 0..100 {
        match SqliteStore::open_path(&path, clock()).await {
            Ok(s) => {
                s.close().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let err = refused.expect("the engine lock held by `flock` must refuse a second engine");
    assert_eq!(err.kind(), ErrorKind::Incompatible, "{err}");
    assert!(err.message().contains("another Orca engine"), "{err}");
}

#[tokio::test]
async fn client_refuses_queue_verbs_and_does_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("orca.db");
    let c = clock();
    let client = SqliteStore::open(SqliteOptions::new(&path).client(), c.clone())
        .await
        .expect("client");
    let (_, j, _) = seed(&client, &c, 3).await;
    assert_eq!(client.job_counts(j.id).await.expect("counts").pending, 3);
    let e = client
        .claim(&claim_req(1))
        .await
        .expect_err("claim as a client");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("engine"), "{e}");
    let e = client
        .heartbeat(&[], Duration::from_secs(1))
        .await
        .expect_err("heartbeat");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    let e = client.rescue_expired(10).await.expect_err("rescue");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    // An engine next to it claims what the client submitted.
    let engine = SqliteStore::open_path(&path, c.clone())
        .await
        .expect("engine");
    assert_eq!(engine.claim(&claim_req(10)).await.expect("claim").len(), 3);
    assert_eq!(
        client.get_job(j.id).await.expect("job").status,
        JobStatus::Running
    );
}

// ----- foreign and newer files -----

#[tokio::test]
async fn random_bytes_are_not_an_orca_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data.bin");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes).expect("write");
    for opts in [
        SqliteOptions::new(&path),
        SqliteOptions::new(&path).client(),
    ] {
        let err = SqliteStore::open(opts, clock())
            .await
            .expect_err("random bytes");
        assert_eq!(err.kind(), ErrorKind::Incompatible, "{err}");
        assert!(err.message().contains("not an Orca database"), "{err}");
    }
    assert_eq!(
        std::fs::read(&path).expect("read"),
        bytes,
        "the file must be untouched"
    );
    assert_eq!(files(dir.path()), vec!["data.bin"], "no side files");
}

#[tokio::test]
async fn foreign_sqlite_database_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("other.db");
    let mut conn = raw(&path).await;
    sqlx::query("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        .execute(&mut conn)
        .await
        .expect("create");
    sqlx::query("INSERT INTO customers (name) VALUES ('ada')")
        .execute(&mut conn)
        .await
        .expect("insert");
    conn.close().await.expect("close");
    let before = std::fs::read(&path).expect("read");
    let err = SqliteStore::open_path(&path, clock())
        .await
        .expect_err("foreign database");
    assert_eq!(err.kind(), ErrorKind::Incompatible, "{err}");
    assert!(
        err.message().contains("customers"),
        "names the tables it found: {err}"
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the file must be untouched"
    );
    assert_eq!(files(dir.path()), vec!["other.db"], "no side files");
}

#[tokio::test]
async fn newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    for how in ["meta", "migrations"] {
        let path = dir.path().join(format!("{how}.db"));
        SqliteStore::open_path(&path, clock())
            .await
            .expect("create")
            .close()
            .await;
        let mut conn = raw(&path).await;
        let sql = match how {
            "meta" => "UPDATE orca_meta SET value = '999' WHERE key = 'schema_version'",
            _ => {
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (99990101000000, 'from the future', 1, x'00', 0)"
            }
        };
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect("simulate a newer Orca");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .expect("checkpoint");
        conn.close().await.expect("close");
        let before = std::fs::read(&path).expect("read");
        let err = SqliteStore::open_path(&path, clock())
            .await
            .expect_err("newer schema");
        assert_eq!(err.kind(), ErrorKind::Incompatible, "{how}: {err}");
        assert!(err.message().contains("newer"), "{how}: {err}");
        assert!(err.message().contains("upgrade Orca"), "{how}: {err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            before,
            "{how}: untouched"
        );
    }
}

#[tokio::test]
async fn empty_file_becomes_a_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").expect("touch");
    let s = SqliteStore::open_path(&path, clock())
        .await
        .expect("an empty file is a new database");
    assert_eq!(s.settings().await.expect("settings").schema_version, 2);
}

// ----- settings and persistence -----

#[tokio::test]
async fn pragmas_are_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let normal = SqliteStore::open_path(dir.path().join("a.db"), clock())
        .await
        .expect("open");
    let s = normal.settings().await.expect("settings");
    assert_eq!(s.journal_mode.to_lowercase(), "wal");
    assert_eq!(s.synchronous, Synchronous::Normal);
    assert!(s.foreign_keys);
    assert_eq!(s.busy_timeout, Duration::from_secs(5));
    let mut opts = SqliteOptions::new(dir.path().join("b.db")).synchronous(Synchronous::Full);
    opts.busy_timeout = Duration::from_millis(1234);
    let full = SqliteStore::open(opts, clock()).await.expect("open");
    let s = full.settings().await.expect("settings");
    assert_eq!(s.synchronous, Synchronous::Full);
    assert_eq!(s.busy_timeout, Duration::from_millis(1234));
}

#[tokio::test]
async fn data_persists_across_reopen_and_parent_dirs_are_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("deep/er/orca.db");
    let c = clock();
    let store = SqliteStore::open_path(&path, c.clone())
        .await
        .expect("open in new dirs");
    let (sys, j, _) = seed(&store, &c, 2).await;
    let claims = store.claim(&claim_req(1)).await.expect("claim");
    let lease = claims[0].lease.clone();
    let id = lease.execution_id;
    let chunk = OutputChunk {
        execution_id: id,
        seq: 0,
        stream: Stream::Stdout,
        data: bytes::Bytes::from_static(b"\x00\xffhello\n"),
        at: c.now(),
    };
    store
        .append_output_one(&lease, vec![chunk.clone()])
        .await
        .expect("output");
    store
        .finish_one(&lease, &Finish::exited(0))
        .await
        .expect("finish");
    store.close().await;

    let store = SqliteStore::open_path(&path, c.clone())
        .await
        .expect("reopen");
    assert_eq!(store.get_system(sys.id).await.expect("system"), sys);
    let counts = store.job_counts(j.id).await.expect("counts");
    assert_eq!((counts.completed, counts.pending), (1, 1));
    assert_eq!(
        store.read_output(id, 0, 10).await.expect("output"),
        vec![chunk]
    );
    let e = store.get_execution(id).await.expect("execution");
    assert_eq!(e.status, ExecutionStatus::Completed);
    assert_eq!(e.exit_code, Some(0));
}

#[tokio::test]
async fn many_executions_round_trip_in_batches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = clock();
    let store = SqliteStore::open_path(dir.path().join("orca.db"), c.clone())
        .await
        .expect("open");
    let n = 10_000;
    let t = std::time::Instant::now();
    let (_, j, _) = seed(&store, &c, n).await;
    let created = t.elapsed();
    let t = std::time::Instant::now();
    let mut done = 0;
    let mut phases = [Duration::ZERO; 3];
    loop {
        let p = std::time::Instant::now();
        let claims = store.claim(&claim_req(1000)).await.expect("claim");
        phases[0] += p.elapsed();
        if claims.is_empty() {
            break;
        }
        let batches: Vec<_> = claims
            .iter()
            .map(|cl| orca_core::OutputBatch {
                lease: cl.lease.clone(),
                chunks: vec![OutputChunk {
                    execution_id: cl.execution.id,
                    seq: cl.next_seq,
                    stream: Stream::Stdout,
                    data: bytes::Bytes::from_static(b"hi\n"),
                    at: c.now(),
                }],
            })
            .collect();
        let p = std::time::Instant::now();
        for r in store.append_output(&batches).await.expect("output") {
            r.expect("each output");
        }
        phases[1] += p.elapsed();
        let p = std::time::Instant::now();
        let items: Vec<_> = claims
            .iter()
            .map(|cl| (cl.lease.clone(), Finish::exited(0)))
            .collect();
        for r in store.finish(&items).await.expect("finish") {
            r.expect("each finish");
        }
        phases[2] += p.elapsed();
        done += claims.len();
    }
    let ran = t.elapsed();
    assert_eq!(done, n);
    let job = store.get_job(j.id).await.expect("job");
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(
        store.job_counts(j.id).await.expect("counts").completed,
        n as u64
    );
    eprintln!(
        "{n} executions: create_job {created:?}, claim+output+finish {ran:?} ({:.0}/s; \
         claim {:?}, output {:?}, finish {:?})",
        n as f64 / ran.as_secs_f64(),
        phases[0],
        phases[1],
        phases[2]
    );
}
