//! The queue across nodes: exclusive claims and exact limits between separate pools, the
//! database refusing illegal transitions, a 10,000-system job in one statement and one NOTIFY.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_core::ids::ExecutionId;
use orca_core::model::{ExecutionStatus, Finish, JobOptions, JobStatus};
use orca_core::store::prelude::*;
use orca_core::{ClaimRequest, ManualClock};
use orca_store::postgres::PostgresStore;
use sqlx::postgres::PgListener;

use crate::support::{self, admin, fresh_schema, store_in};

fn request(worker: &str, limit: u32, per_system: Option<u32>) -> ClaimRequest {
    ClaimRequest {
        worker: worker.to_string(),
        limit,
        lease_for: Duration::from_secs(60),
        per_system,
    }
}

/// Claim until three empty rounds in a row; returns what this claimer got.
async fn drain(
    store: PostgresStore,
    worker: String,
    limit: u32,
    per_system: Option<u32>,
) -> Vec<orca_core::Claim> {
    let mut got = Vec::new();
    let mut empty = 0;
    while empty < 3 {
        let c = store
            .claim(&request(&worker, limit, per_system))
            .await
            .expect("claim");
        if c.is_empty() {
            empty += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        } else {
            empty = 0;
        }
        got.extend(c);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_are_exclusive_across_pools() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(ManualClock::starting_now());
    let schema = fresh_schema();
    let a = store_in(&schema, clock.clone(), true).await;
    let b = store_in(&schema, clock.clone(), false).await;
    let at = support::now(&*clock);
    let systems = support::systems(&a, "fleet", 60, at).await;
    let mut jobs = Vec::new();
    let mut all = HashSet::new();
    for _ in 0..10 {
        let (j, e) = support::job_on(&a, &systems, JobOptions::default(), at).await;
        all.extend(e.iter().map(|e| e.id));
        jobs.push(j);
    }
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(drain(
            store,
            format!("node{}-w{w}", w % 2),
            16,
            None,
        )));
    }
    let mut claims = Vec::new();
    for t in tasks {
        claims.extend(t.await.expect("claimer"));
    }
    let ids: HashSet<ExecutionId> = claims.iter().map(|c| c.execution.id).collect();
    assert_eq!(
        claims.len(),
        600,
        "claimed {} times for 600 executions",
        claims.len()
    );
    assert_eq!(ids, all, "each execution claimed exactly once");

    // Finish them from both nodes at once, in batches.
    let mut tasks = Vec::new();
    for (i, chunk) in claims.chunks(50).enumerate() {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let items: Vec<_> = chunk
            .iter()
            .map(|c| (c.lease.clone(), Finish::exited(0)))
            .collect();
        tasks.push(tokio::spawn(async move { store.finish(&items).await }));
    }
    for t in tasks {
        for r in t.await.expect("finisher").expect("finish") {
            r.expect("each finish");
        }
    }
    for j in &jobs {
        let counts = a.job_counts(j.id).await.expect("counts");
        assert_eq!(counts.completed, 60);
        assert_eq!(counts.total(), 60);
        assert_eq!(
            a.get_job(j.id).await.expect("job").status,
            JobStatus::Completed
        );
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_hold_across_pools() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(ManualClock::starting_now());
    let schema = fresh_schema();
    let a = store_in(&schema, clock.clone(), true).await;
    let b = store_in(&schema, clock.clone(), false).await;
    let at = support::now(&*clock);

    // Per system: 4 systems, 5 jobs on each, at most one running per system.
    let hot = support::systems(&a, "hot", 4, at).await;
    for _ in 0..5 {
        support::job_on(&a, &hot, JobOptions::default(), at).await;
    }
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(drain(store, format!("w{w}"), 5, Some(1))));
    }
    let mut per_system: HashMap<_, usize> = HashMap::new();
    let mut n = 0;
    for t in tasks {
        for c in t.await.expect("claimer") {
            *per_system.entry(c.system.id).or_default() += 1;
            n += 1;
        }
    }
    assert_eq!(n, 4, "one per system");
    assert!(per_system.values().all(|v| *v == 1), "{per_system:?}");

    // Per job: concurrency 3 over 20 systems.
    let wide = support::systems(&a, "wide", 20, at).await;
    let (job, _) = support::job_on(
        &a,
        &wide,
        JobOptions {
            concurrency: Some(3),
            ..JobOptions::default()
        },
        at,
    )
    .await;
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(drain(store, format!("c{w}"), 4, None)));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.extend(
            t.await
                .expect("claimer")
                .into_iter()
                .filter(|c| c.job.id == job.id),
        );
    }
    assert_eq!(got.len(), 3, "concurrency 3 across nodes");
    assert_eq!(a.job_counts(job.id).await.expect("counts").running, 3);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_illegal_transitions() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(ManualClock::starting_now());
    let schema = fresh_schema();
    let store = store_in(&schema, clock.clone(), true).await;
    let at = support::now(&*clock);
    let s = support::systems(&store, "t", 2, at).await;
    let (_, execs) = support::job_on(&store, &s, JobOptions::default(), at).await;
    let c = store
        .claim(&request("w", 1, None))
        .await
        .expect("claim")
        .remove(0);
    store
        .finish_one(&c.lease, &Finish::exited(0))
        .await
        .expect("finish");
    let pending = execs
        .iter()
        .find(|e| e.id != c.execution.id)
        .expect("other");

    let mut conn = admin().await;
    for (id, to) in [
        (c.execution.id, "running"),
        (c.execution.id, "failed"),
        (c.execution.id, "pending"),
        (pending.id, "completed"),
        (pending.id, "lost"),
    ] {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{schema}\".executions SET status = $1 WHERE id = $2"
        )))
        .bind(to)
        .bind(id.0)
        .execute(&mut conn)
        .await;
        let e = r.expect_err("the trigger refuses it");
        let code = e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("OR001"), "{to}: {e}");
    }
    let e = store.get_execution(c.execution.id).await.expect("get");
    assert_eq!(e.status, ExecutionStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_system_job_is_one_statement_and_one_notification() {
    if !support::available() {
        return;
    }
    let clock = Arc::new(ManualClock::starting_now());
    let schema = fresh_schema();
    let store = store_in(&schema, clock.clone(), true).await;
    let at = support::now(&*clock);
    // 10,000 systems, inserted directly (the store's create_system is one transaction each).
    let mut conn = admin().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".systems (id, name, hostname, port, system_type, username,
                tags, active, health_status, host_key_policy, options, created_at, updated_at)
         SELECT gen_random_uuid(), 'bulk-' || i, 'localhost', 0, 'local', '', '{{}}', true,
                'unknown', 'strict', '{{}}'::jsonb, $1, $1
           FROM generate_series(1, 10000) AS i"
    )))
    .bind(at)
    .execute(&mut conn)
    .await
    .expect("bulk systems");
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM \"{schema}\".systems ORDER BY name"
    )))
    .fetch_all(&mut conn)
    .await
    .expect("ids");
    let systems: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let mut s = support::system("x", at);
            s.id = orca_core::ids::SystemId(id);
            s
        })
        .collect();

    let mut listener = PgListener::connect(&support::url())
        .await
        .expect("listener");
    listener
        .listen(&format!("orca_work_{schema}"))
        .await
        .expect("listen");
    let started = Instant::now();
    let (job, _) = support::job_on(&store, &systems, JobOptions::default(), at).await;
    let took = started.elapsed();
    eprintln!("create_job with 10,000 executions took {took:?}");
    assert_eq!(
        store.job_counts(job.id).await.expect("counts").pending,
        10_000
    );

    let first = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .expect("recv");
    assert_eq!(first.channel(), format!("orca_work_{schema}"));
    let more = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(more.is_err(), "one notification per statement, not per row");

    // And the queue drains in large batches.
    let started = Instant::now();
    let mut n = 0;
    loop {
        let c = store
            .claim(&request("bulk", 500, None))
            .await
            .expect("claim");
        if c.is_empty() {
            break;
        }
        n += c.len();
        let items: Vec<_> = c
            .iter()
            .map(|c| (c.lease.clone(), Finish::exited(0)))
            .collect();
        for r in store.finish(&items).await.expect("finish") {
            r.expect("finish item");
        }
    }
    eprintln!("claimed and finished 10,000 in {:?}", started.elapsed());
    assert_eq!(n, 10_000);
    assert_eq!(
        store.get_job(job.id).await.expect("job").status,
        JobStatus::Completed
    );
}
