//! The work queue ([`crate::QueueStore`]): claiming work (exclusivity, limits, `not_before`,
//! order) here; heartbeats, fencing and the reaper in `leases`; finishing in `finish`.

mod finish;
mod leases;

pub use finish::*;
pub use leases::*;

use std::collections::HashSet;
use std::sync::Arc;

use super::StoreFactory;
use super::fixtures::{ctx, opts, secs};
use crate::clock::add;
use crate::ids::ExecutionId;
use crate::model::{Execution, ExecutionStatus, Finish, JobOptions, JobStatus};
use crate::{ClaimRequest, StoreExt};

/// One pending execution is claimed once, as `running` with a lease.
pub async fn claim_basic(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("one").await;
    let (job, execs) = c.job(&[&s], opts()).await;
    c.advance(secs(2));
    let claims = c.claim("worker-a", 10).await;
    assert_eq!(claims.len(), 1);
    let cl = &claims[0];
    let e = &cl.execution;
    assert_eq!(e.id, execs[0].id);
    assert_eq!(e.status, ExecutionStatus::Running);
    assert_eq!(e.attempt, 1);
    assert_eq!(e.started_at, Some(c.now()));
    assert_eq!(e.completed_at, None);
    assert_eq!(e.lease.as_ref(), Some(&cl.lease));
    assert_eq!(cl.lease.execution_id, e.id);
    assert_eq!(cl.lease.owner, "worker-a");
    assert_eq!(cl.lease.expires_at, add(c.now(), secs(30)));
    assert_eq!(cl.job.id, job.id);
    assert_eq!(cl.job.status, JobStatus::Running);
    assert_eq!(cl.job.command, job.command);
    assert_eq!(cl.system, s);
    assert_eq!(cl.next_seq, 0);
    assert_eq!(&c.store.get_execution(e.id).await.expect("get"), e);
    assert!(
        c.claim("worker-b", 10).await.is_empty(),
        "claimed only once"
    );
    c.job(&[&s], opts()).await;
    assert!(
        c.claim("worker-b", 0).await.is_empty(),
        "limit 0 claims nothing"
    );
}

/// Eight concurrent claimers over 200 executions: each is claimed exactly once.
pub async fn claim_exclusive_under_concurrency(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut systems = Vec::new();
    for i in 0..20 {
        systems.push(c.system(&format!("fleet-{i:02}")).await);
    }
    let refs: Vec<_> = systems.iter().collect();
    let mut all = HashSet::new();
    for _ in 0..10 {
        let (_, execs) = c.job(&refs, opts()).await;
        all.extend(execs.iter().map(|e| e.id));
    }
    assert_eq!(all.len(), 200);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = Arc::clone(&c.store);
        tasks.push(tokio::spawn(async move {
            let mut got: Vec<(ExecutionId, String)> = Vec::new();
            let mut empty_rounds = 0;
            while empty_rounds < 3 {
                let claims = store
                    .claim(&ClaimRequest {
                        worker: format!("w{w}"),
                        limit: 7,
                        lease_for: secs(60),
                        per_system: None,
                    })
                    .await
                    .expect("claim");
                if claims.is_empty() {
                    empty_rounds += 1;
                    tokio::task::yield_now().await;
                }
                for cl in claims {
                    assert_eq!(cl.lease.owner, format!("w{w}"));
                    got.push((cl.execution.id, cl.lease.owner));
                }
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.expect("task"));
    }
    let ids: HashSet<ExecutionId> = claimed.iter().map(|(id, _)| *id).collect();
    assert_eq!(claimed.len(), 200, "claimed {} times in all", claimed.len());
    assert_eq!(ids, all, "every execution claimed exactly once");
    assert!(c.claim("late", 10).await.is_empty());
    for (id, owner) in claimed.iter().take(20) {
        let e = c.store.get_execution(*id).await.expect("get");
        assert_eq!(e.status, ExecutionStatus::Running);
        assert_eq!(
            e.lease.as_ref().map(|l| l.owner.as_str()),
            Some(owner.as_str())
        );
    }
}

/// A job's `concurrency` caps its running executions, across claims.
pub async fn claim_respects_job_concurrency(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut systems = Vec::new();
    for i in 0..5 {
        systems.push(c.system(&format!("s{i}")).await);
    }
    let refs: Vec<_> = systems.iter().collect();
    let (limited, _) = c
        .job(
            &refs,
            JobOptions {
                concurrency: Some(2),
                ..opts()
            },
        )
        .await;
    c.advance(secs(1));
    let (free, _) = c.job(&refs[..3], opts()).await;
    let first = c.claim("w", 100).await;
    let of = |claims: &[crate::Claim], id| claims.iter().filter(|cl| cl.job.id == id).count();
    assert_eq!(of(&first, limited.id), 2, "limited job capped at 2");
    assert_eq!(of(&first, free.id), 3, "other job unaffected");
    assert!(c.claim("w2", 100).await.is_empty(), "still capped");
    let done = first
        .iter()
        .find(|cl| cl.job.id == limited.id)
        .expect("one");
    c.store
        .finish_one(&done.lease, &Finish::exited(0))
        .await
        .expect("finish");
    let next = c.claim("w2", 100).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].job.id, limited.id);
    assert!(c.claim("w3", 100).await.is_empty());
}

/// `per_system` caps running executions per system across jobs and workers.
pub async fn claim_respects_per_system(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let hot = c.system("hot").await;
    let cold = c.system("cold").await;
    for _ in 0..3 {
        c.job(&[&hot], opts()).await;
        c.advance(secs(1));
    }
    c.job(&[&cold], opts()).await;
    let first = c.claim_with("w1", 10, Some(1)).await;
    let on = |claims: &[crate::Claim], id| claims.iter().filter(|cl| cl.system.id == id).count();
    assert_eq!(on(&first, hot.id), 1);
    assert_eq!(on(&first, cold.id), 1);
    assert!(c.claim_with("w2", 10, Some(1)).await.is_empty());
    let more = c.claim_with("w2", 10, Some(2)).await;
    assert_eq!(on(&more, hot.id), 1, "one more under a limit of 2");
    assert_eq!(more.len(), 1);
    let rest = c.claim_with("w3", 10, None).await;
    assert_eq!(on(&rest, hot.id), 1, "no limit: the last one");
}

/// Executions whose `not_before` lies ahead are not claimed until then.
pub async fn claim_respects_not_before(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("later").await;
    let job = c.new_job(opts());
    let mut e = Execution::pending(job.id, s.id, c.now());
    e.not_before = add(c.now(), secs(10));
    c.store
        .create_job(&job, std::slice::from_ref(&e), &c.audit("job", "create"))
        .await
        .expect("create");
    assert!(c.claim("w", 10).await.is_empty());
    c.advance(secs(9));
    assert!(c.claim("w", 10).await.is_empty());
    c.advance(secs(1));
    let got = c.claim("w", 10).await;
    assert_eq!(got.len(), 1, "claimable once not_before <= now");
    assert_eq!(got[0].execution.id, e.id);
}

/// The oldest pending execution is claimed first, whatever the insertion order.
pub async fn claim_oldest_first(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("queue").await;
    c.advance(secs(100));
    let base = c.now();
    let at = |n: u64| base - chrono::TimeDelta::seconds(50 - n as i64);
    // Insert the newest first.
    let mut want = Vec::new();
    for n in [3u64, 1, 4, 0, 2] {
        let job = c.new_job(opts());
        let mut j = job.clone();
        j.created_at = at(n);
        j.updated_at = at(n);
        let e = Execution::pending(j.id, s.id, at(n));
        c.store
            .create_job(&j, std::slice::from_ref(&e), &c.audit("job", "create"))
            .await
            .expect("create");
        want.push((n, e.id));
    }
    want.sort();
    for (n, id) in want {
        let got = c.claim("w", 1).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].execution.id, id, "claim #{n} is the oldest left");
    }
}
