//! Test support: the server, fresh schemas, a StoreFactory and small model builders.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orca_core::ids::{JobId, SystemId};
use orca_core::model::{
    AuditRecord, Execution, Health, HostKeyPolicy, Job, JobOptions, JobStatus, Principal, System,
    SystemType, Targets, Timestamp,
};
use orca_core::store::prelude::*;
use orca_core::testkit::store::StoreFactory;
use orca_core::{Clock, ManualClock, Store, async_trait};
use orca_store::postgres::{ClockSource, PostgresOptions, PostgresStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// The test server's URL.
pub fn url() -> String {
    std::env::var("ORCA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn require_all() -> bool {
    std::env::var("ORCA_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Whether the server answers. Skips loudly when it does not, or panics under
/// `ORCA_TEST_REQUIRE_ALL=1`.
pub fn available() -> bool {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let up = UP.get_or_init(|| {
        let opts = PgConnectOptions::from_str(&url()).map_err(|e| format!("bad URL: {e}"))?;
        let addr = format!("{}:{}", opts.get_host(), opts.get_port());
        let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .map_err(|e| format!("{addr}: {e}"))?
            .collect();
        for a in &addrs {
            if std::net::TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok() {
                return Ok(());
            }
        }
        Err(format!("nothing listens on {addr}"))
    });
    match up {
        Ok(()) => true,
        Err(why) if require_all() => panic!(
            "PostgreSQL is required (ORCA_TEST_REQUIRE_ALL=1) but unreachable at \
             ORCA_TEST_POSTGRES_URL: {why}"
        ),
        Err(why) => {
            eprintln!(
                "\n*** SKIPPED: PostgreSQL unreachable ({why}); set ORCA_TEST_POSTGRES_URL or \
                 start PostgreSQL to run the PostgreSQL store tests ***\n"
            );
            false
        }
    }
}

/// A new schema name, with its creation time so stale ones can be swept.
pub fn fresh_schema() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "orca_test_{secs}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

/// A plain connection to the test database (not through a store).
pub async fn admin() -> PgConnection {
    PgConnection::connect(&url())
        .await
        .expect("connect to the test database")
}

/// Drop test schemas left behind by killed runs (older than an hour), once per process.
async fn sweep_stale() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let mut conn = admin().await;
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'orca\\_test\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            for n in names {
                let born: Option<u64> = n.split('_').nth(2).and_then(|s| s.parse().ok());
                if born.is_some_and(|b| b + 3600 < now) {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS \"{n}\" CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            }
        })
        .await;
}

/// Options for a test store in `schema`, on the injected clock.
pub fn options(schema: &str) -> PostgresOptions {
    let mut o = PostgresOptions::new(url())
        .schema(schema)
        .max_connections(6)
        .clock(ClockSource::Injected);
    o.connect_timeout = Duration::from_secs(10);
    o
}

/// A store in `schema`. With `owner`, it drops the schema when dropped (make the owner the
/// last store of a schema to go).
pub async fn store_in(schema: &str, clock: Arc<dyn Clock>, owner: bool) -> PostgresStore {
    sweep_stale().await;
    let mut o = options(schema);
    o.ephemeral = owner;
    PostgresStore::connect(o, clock)
        .await
        .expect("connect the store")
}

/// A fresh store in its own schema, which it drops when dropped.
pub async fn fresh_store(clock: Arc<dyn Clock>) -> PostgresStore {
    store_in(&fresh_schema(), clock, true).await
}

/// The conformance suite's factory: a fresh schema per case, on the suite's clock.
pub struct PgFactory;

#[async_trait]
impl StoreFactory for PgFactory {
    async fn fresh(&self, clock: Arc<ManualClock>) -> Arc<dyn Store> {
        Arc::new(fresh_store(clock).await)
    }
}

/// Drops a schema when it goes out of scope (for schemas made without a store).
pub struct SchemaGuard(pub String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut c = admin().await;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                )))
                .execute(&mut c)
                .await;
            });
        })
        .join();
    }
}

pub fn now(clock: &dyn Clock) -> Timestamp {
    clock.now()
}

pub fn audit(at: Timestamp, what: &str) -> AuditRecord {
    AuditRecord::new(
        at,
        &Principal::system("pg-tests"),
        what,
        None,
        "test",
        serde_json::json!({}),
    )
}

pub fn system(name: &str, at: Timestamp) -> System {
    System {
        id: SystemId::new(),
        name: name.to_string(),
        hostname: "localhost".into(),
        port: 0,
        system_type: SystemType::Local,
        username: String::new(),
        credential: None,
        tags: vec!["all".into()],
        active: true,
        health: Health::default(),
        host_key_policy: HostKeyPolicy::Strict,
        options: BTreeMap::new(),
        created_at: at,
        updated_at: at,
    }
}

pub fn job(options: JobOptions, at: Timestamp) -> Job {
    Job {
        id: JobId::new(),
        name: "pg test".into(),
        command: "true".into(),
        created_by: "pg-tests".into(),
        created_by_id: None,
        targets: Targets::default(),
        options,
        status: JobStatus::Pending,
        created_at: at,
        updated_at: at,
    }
}

/// Create `n` systems named `{prefix}-{i}`.
pub async fn systems(store: &PostgresStore, prefix: &str, n: usize, at: Timestamp) -> Vec<System> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let s = system(&format!("{prefix}-{i:05}"), at);
        store
            .create_system(&s, &audit(at, "system"))
            .await
            .expect("create_system");
        out.push(s);
    }
    out
}

/// Create a job with one execution per system.
pub async fn job_on(
    store: &PostgresStore,
    systems: &[System],
    options: JobOptions,
    at: Timestamp,
) -> (Job, Vec<Execution>) {
    let j = job(options, at);
    let execs: Vec<Execution> = systems
        .iter()
        .map(|s| Execution::pending(j.id, s.id, at))
        .collect();
    store
        .create_job(&j, &execs, &audit(at, "job"))
        .await
        .expect("create_job");
    (j, execs)
}

/// Terminate every server session of the stores on `schema`; returns how many.
pub async fn terminate_sessions(schema: &str) -> i64 {
    let mut c = admin().await;
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
          WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(format!("orca/{schema}"))
    .fetch_one(&mut c)
    .await
    .expect("terminate sessions")
}
