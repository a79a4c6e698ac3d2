//! Engine throughput: executions per second through engine + store with a no-op connector.
//!
//! ```text
//! cargo bench -p orca-benches --bench engine            # all scenarios, 3 repetitions
//! cargo bench -p orca-benches --bench engine -- --reps 5 --quick
//! ```
//! Scenarios: 1 job × 10,000 systems and 1,000 jobs × 10 systems; stores: in-memory, SQLite
//! `synchronous=NORMAL` and `FULL`; engine batched (claim 256 / write 512) and unbatched (claim 1
//! / write 1). In the same run, a raw SQLite insert → claim → complete loop (sqlx, no engine) is
//! measured as the ceiling. Prints a Markdown table of medians.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_core::model::{JobOptions, JobSpec, NewSystem, Principal, SystemType, Targets};
use orca_core::scripted::ScriptedConnector;
use orca_core::{Clock, EngineConfig, KeyRing, MemoryStore, Orca, Store, SystemClock};
use orca_store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Sqlite(Synchronous),
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite(Synchronous::Normal) => "sqlite NORMAL",
            Backend::Sqlite(Synchronous::Full) => "sqlite FULL",
        }
    }
}

async fn open(backend: Backend, dir: &std::path::Path, clock: Arc<dyn Clock>) -> Arc<dyn Store> {
    match backend {
        Backend::Memory => Arc::new(MemoryStore::new(clock)),
        Backend::Sqlite(sync) => Arc::new(
            SqliteStore::open(
                SqliteOptions::new(dir.join("bench.db")).synchronous(sync),
                clock,
            )
            .await
            .expect("open sqlite"),
        ),
    }
}

/// Runs `jobs` jobs over `systems` systems each; returns executions per second.
async fn scenario(backend: Backend, batched: bool, jobs: usize, systems: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open(backend, dir.path(), clock.clone()).await;
    let cfg = EngineConfig {
        per_system: None,
        max_concurrency: 512,
        claim_batch: if batched { 256 } else { 1 },
        write_batch: if batched { 512 } else { 1 },
        health_interval: None,
        poll_interval: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    let orca = Orca::builder()
        .store(store)
        .connector(Arc::new(ScriptedConnector::new()))
        .keyring(KeyRing::ephemeral())
        .clock(clock)
        .engine_config(cfg)
        .build()
        .unwrap();
    let me = Principal::system("bench");
    for i in 0..systems {
        orca.add_system(
            &me,
            NewSystem {
                name: format!("s{i}"),
                system_type: Some(SystemType::Local),
                tags: vec!["all".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let spec = JobSpec {
        name: None,
        command: "true".into(),
        targets: Targets {
            systems: vec![],
            tags: vec!["all".into()],
        },
        options: JobOptions::default(),
    };
    // Submit everything first, then start the engine: measures the burn-down of the queue.
    let mut ids = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        ids.push(orca.submit(&me, spec.clone()).await.unwrap().job.id);
    }
    let start = Instant::now();
    orca.start().await.unwrap();
    for id in &ids {
        let job = orca.wait_job(&me, *id).await.unwrap();
        assert_eq!(job.status, orca_core::model::JobStatus::Completed);
    }
    let secs = start.elapsed().as_secs_f64();
    orca.shutdown(Duration::from_secs(5)).await.unwrap();
    (jobs * systems) as f64 / secs
}

/// The ceiling: raw SQLite insert N rows, then claim and complete them in batches of `batch`,
/// through sqlx on one connection, with the same pragmas as the store.
async fn raw_sqlite(sync: Synchronous, n: usize, batch: usize) -> f64 {
    use sqlx::{ConnectOptions, Connection};
    let dir = tempfile::tempdir().unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("raw.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(match sync {
            Synchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
            Synchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
        });
    let mut c = opts.connect().await.unwrap();
    sqlx::query("CREATE TABLE q (id INTEGER PRIMARY KEY, status TEXT NOT NULL, owner TEXT, lease INTEGER, exit_code INTEGER)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("CREATE INDEX q_status ON q(status, id)")
        .execute(&mut c)
        .await
        .unwrap();
    let start = Instant::now();
    let mut tx = c.begin().await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut sql = String::from("INSERT INTO q (id, status) VALUES ");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("({id}, 'pending')"));
        }
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut done = 0;
    while done < n {
        let mut tx = c.begin().await.unwrap();
        let ids: Vec<(i64,)> = sqlx::query_as(
            "UPDATE q SET status = 'running', owner = 'w', lease = 1 WHERE id IN \
             (SELECT id FROM q WHERE status = 'pending' ORDER BY id LIMIT ?) RETURNING id",
        )
        .bind(batch as i64)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut tx = c.begin().await.unwrap();
        for (id,) in &ids {
            sqlx::query(
                "UPDATE q SET status = 'completed', exit_code = 0 WHERE id = ? AND owner = 'w'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        done += ids.len();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3usize);
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model()
    );
    println!("repetitions: {reps} (median reported)\n");
    println!("| scenario | store | engine | executions/s (median) |");
    println!("|---|---|---|---:|");
    let scenarios = [
        (1usize, 10_000 / scale, "1 job × 10,000 systems"),
        (1000 / scale, 10, "1,000 jobs × 10 systems"),
    ];
    for (jobs, systems, label) in scenarios {
        for backend in [
            Backend::Memory,
            Backend::Sqlite(Synchronous::Normal),
            Backend::Sqlite(Synchronous::Full),
        ] {
            for batched in [true, false] {
                let mut v = Vec::new();
                for _ in 0..reps {
                    v.push(scenario(backend, batched, jobs, systems).await);
                }
                let mode = if batched { "batched" } else { "unbatched" };
                println!(
                    "| {label} | {} | {mode} | {:.0} |",
                    backend.name(),
                    median(v)
                );
            }
        }
    }
    let n = 10_000 / scale;
    for sync in [Synchronous::Normal, Synchronous::Full] {
        for batch in [1usize, 256] {
            let mut v = Vec::new();
            for _ in 0..reps {
                v.push(raw_sqlite(sync, n, batch).await);
            }
            let s = if sync == Synchronous::Normal {
                "NORMAL"
            } else {
                "FULL"
            };
            println!(
                "| raw SQLite loop ({n} rows, batch {batch}) — ceiling | sqlite {s} | none | {:.0} |",
                median(v)
            );
        }
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
