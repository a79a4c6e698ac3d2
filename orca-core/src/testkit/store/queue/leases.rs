//! Heartbeats, lease fencing and the reaper.

use bytes::Bytes;

use super::super::StoreFactory;
use super::super::fixtures::{assert_kind, ctx, opts, secs};
use crate::clock::add;
use crate::ids::LeaseToken;
use crate::model::{ExecutionStatus, Finish, JobOptions, JobStatus, Lease, OutputChunk, Stream};
use crate::{CancelTarget, ErrorKind, StoreExt};

fn chunk(lease: &Lease, seq: u64, data: &'static [u8], at: crate::model::Timestamp) -> OutputChunk {
    OutputChunk {
        execution_id: lease.execution_id,
        seq,
        stream: Stream::Stdout,
        data: Bytes::from_static(data),
        at,
    }
}

/// A heartbeat renews current leases by `extend` from now; a renewed lease is not rescued.
pub async fn heartbeat_renews(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("beat").await;
    c.job(&[&s], opts()).await;
    let cl = c.claim("w", 1).await.remove(0);
    c.advance(secs(20));
    let rep = c
        .store
        .heartbeat(std::slice::from_ref(&cl.lease), secs(30))
        .await
        .expect("heartbeat");
    assert!(
        rep.lost.is_empty() && rep.cancel_requested.is_empty(),
        "{rep:?}"
    );
    assert_eq!(rep.renewed.len(), 1);
    let renewed = &rep.renewed[0];
    assert_eq!(renewed.token, cl.lease.token, "the token stays");
    assert_eq!(renewed.execution_id, cl.lease.execution_id);
    assert_eq!(renewed.owner, "w");
    assert_eq!(renewed.expires_at, add(c.now(), secs(30)));
    let e = c.store.get_execution(cl.execution.id).await.expect("get");
    assert_eq!(e.lease.as_ref(), Some(renewed));
    c.advance(secs(20)); // past the first expiry, before the renewed one
    assert!(c.store.rescue_expired(10).await.expect("rescue").is_empty());
    // The old lease value (same token, older expiry) still identifies the lease.
    let rep = c
        .store
        .heartbeat(std::slice::from_ref(&cl.lease), secs(30))
        .await
        .expect("heartbeat");
    assert_eq!(rep.renewed.len(), 1);
    assert_eq!(rep.renewed[0].expires_at, add(c.now(), secs(30)));
    c.advance(secs(31));
    assert_eq!(c.store.rescue_expired(10).await.expect("rescue").len(), 1);
}

/// A heartbeat reports leases it does not hold as lost and running executions a user
/// cancelled as `cancel_requested` (still renewing them).
pub async fn heartbeat_reports_lost_and_cancel(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let a = c.system("a").await;
    let b = c.system("b").await;
    let d = c.system("d").await;
    c.job(&[&a, &b, &d], opts()).await;
    let claims = c.claim("w", 3).await;
    assert_eq!(claims.len(), 3);
    let (keep, cancel, done) = (&claims[0], &claims[1], &claims[2]);
    let rep = c
        .store
        .cancel(
            CancelTarget::Execution(cancel.execution.id),
            &c.audit("execution", "cancel"),
        )
        .await
        .expect("cancel");
    assert_eq!(rep.signalled, vec![cancel.execution.id]);
    assert!(rep.cancelled.is_empty());
    c.store
        .finish_one(&done.lease, &Finish::exited(0))
        .await
        .expect("finish");
    let mut forged = keep.lease.clone();
    forged.token = LeaseToken::new();
    let mut unknown = keep.lease.clone();
    unknown.execution_id = crate::ids::ExecutionId::new();
    let leases = vec![
        keep.lease.clone(),
        cancel.lease.clone(),
        done.lease.clone(),
        forged,
        unknown.clone(),
    ];
    let rep = c
        .store
        .heartbeat(&leases, secs(30))
        .await
        .expect("heartbeat");
    let mut renewed: Vec<_> = rep.renewed.iter().map(|l| l.execution_id).collect();
    renewed.sort();
    let mut want = vec![keep.execution.id, cancel.execution.id];
    want.sort();
    assert_eq!(renewed, want);
    assert_eq!(rep.cancel_requested, vec![cancel.execution.id]);
    let mut lost = rep.lost.clone();
    lost.sort();
    lost.dedup();
    let mut want_lost = vec![done.execution.id, keep.execution.id, unknown.execution_id];
    want_lost.sort();
    assert_eq!(
        lost, want_lost,
        "finished, forged and unknown leases are lost"
    );
    let e = c
        .store
        .get_execution(cancel.execution.id)
        .await
        .expect("get");
    assert!(e.cancel_requested);
    assert_eq!(e.status, ExecutionStatus::Running);
}

/// After a lease was rescued and the execution re-claimed, the old lease can write nothing:
/// `append_output` and `finish` answer `LeaseLost`, `heartbeat` reports it lost.
pub async fn stale_lease_writes_rejected(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("flaky").await;
    let (job, _) = c
        .job(
            &[&s],
            JobOptions {
                requeue_lost: true,
                retries: 3,
                ..opts()
            },
        )
        .await;
    let old = c.claim("w-old", 1).await.remove(0);
    c.advance(secs(31));
    let rescued = c.store.rescue_expired(10).await.expect("rescue");
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].status, ExecutionStatus::Pending, "re-queued");
    let new = c.claim("w-new", 1).await.remove(0);
    assert_eq!(new.execution.id, old.execution.id);
    assert_ne!(new.lease.token, old.lease.token);

    let res = c
        .store
        .append_output_one(&old.lease, vec![chunk(&old.lease, 0, b"stale", c.now())])
        .await;
    assert_kind(
        res,
        ErrorKind::LeaseLost,
        "append_output with a stale lease",
    );
    assert_kind(
        c.store.finish_one(&old.lease, &Finish::exited(0)).await,
        ErrorKind::LeaseLost,
        "finish with a stale lease",
    );
    let rep = c
        .store
        .heartbeat(std::slice::from_ref(&old.lease), secs(30))
        .await
        .expect("heartbeat");
    assert_eq!(rep.lost, vec![old.execution.id]);
    assert!(rep.renewed.is_empty());

    let e = c.store.get_execution(new.execution.id).await.expect("get");
    assert_eq!(e.status, ExecutionStatus::Running);
    assert_eq!(e.lease.as_ref(), Some(&new.lease), "nothing changed");
    assert_eq!(e.output_bytes, 0);
    assert!(
        c.store
            .read_output(e.id, 0, 100)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(c.job_status(job.id).await, JobStatus::Running);

    // The current lease still works.
    c.store
        .append_output_one(&new.lease, vec![chunk(&new.lease, 0, b"fresh", c.now())])
        .await
        .expect("append with the current lease");
    c.store
        .finish_one(&new.lease, &Finish::exited(0))
        .await
        .expect("finish with the current lease");
    // And once finished, the lease that finished it is stale too.
    let res = c
        .store
        .append_output_one(&new.lease, vec![chunk(&new.lease, 1, b"late", c.now())])
        .await;
    assert_kind(res, ErrorKind::LeaseLost, "append after finish");
}

/// An expired lease becomes `lost` through `rescue_expired` (up to `limit` at a time).
pub async fn rescue_expired_marks_lost(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let a = c.system("a").await;
    let b = c.system("b").await;
    let (job, _) = c.job(&[&a, &b], opts()).await;
    let claims = c.claim("w", 2).await;
    assert_eq!(claims.len(), 2);
    c.advance(secs(29));
    assert!(c.store.rescue_expired(10).await.expect("rescue").is_empty());
    c.advance(secs(2));
    let first = c.store.rescue_expired(1).await.expect("rescue");
    assert_eq!(first.len(), 1, "limit");
    let second = c.store.rescue_expired(10).await.expect("rescue");
    assert_eq!(second.len(), 1);
    for e in first.iter().chain(second.iter()) {
        assert_eq!(e.status, ExecutionStatus::Lost);
        assert_eq!(e.lease, None);
        assert_eq!(e.completed_at, Some(c.now()));
        assert!(e.error.is_some(), "a lost execution says why");
        assert_eq!(&c.store.get_execution(e.id).await.expect("get"), e);
    }
    assert!(c.store.rescue_expired(10).await.expect("rescue").is_empty());
    assert_eq!(c.job_status(job.id).await, JobStatus::Failed);
    let counts = c.store.job_counts(job.id).await.expect("counts");
    assert_eq!(counts.lost, 2);
    assert!(c.claim("w", 10).await.is_empty(), "lost is terminal");
}

/// With `requeue_lost`, an execution that wrote nothing is re-queued (attempt + 1) while
/// attempts remain; one that wrote output or was asked to cancel ends `lost`.
pub async fn rescue_requeues_when_allowed(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let quiet = c.system("quiet").await;
    let chatty = c.system("chatty").await;
    let cancelled = c.system("cancelled").await;
    let (job, _) = c
        .job(
            &[&quiet, &chatty, &cancelled],
            JobOptions {
                requeue_lost: true,
                retries: 1,
                ..opts()
            },
        )
        .await;
    let claims = c.claim("w", 3).await;
    let by = |id| {
        claims
            .iter()
            .find(|cl| cl.system.id == id)
            .expect("claimed")
            .clone()
    };
    let (q, ch, ca) = (by(quiet.id), by(chatty.id), by(cancelled.id));
    c.store
        .append_output_one(&ch.lease, vec![chunk(&ch.lease, 0, b"started", c.now())])
        .await
        .expect("append");
    c.store
        .cancel(
            CancelTarget::Execution(ca.execution.id),
            &c.audit("execution", "cancel"),
        )
        .await
        .expect("cancel");
    c.advance(secs(31));
    let rescued = c.store.rescue_expired(10).await.expect("rescue");
    assert_eq!(rescued.len(), 3);
    let status = |id| {
        rescued
            .iter()
            .find(|e| e.id == id)
            .expect("rescued")
            .clone()
    };
    let qe = status(q.execution.id);
    assert_eq!(qe.status, ExecutionStatus::Pending);
    assert_eq!(qe.attempt, 2);
    assert_eq!(qe.lease, None);
    assert_eq!(qe.completed_at, None);
    assert!(qe.not_before <= c.now());
    assert_eq!(status(ch.execution.id).status, ExecutionStatus::Lost);
    assert_eq!(status(ca.execution.id).status, ExecutionStatus::Lost);
    assert_eq!(c.job_status(job.id).await, JobStatus::Running);

    let again = c.claim("w2", 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].execution.attempt, 2);
    c.advance(secs(31));
    let rescued = c.store.rescue_expired(10).await.expect("rescue");
    assert_eq!(rescued.len(), 1);
    assert_eq!(
        rescued[0].status,
        ExecutionStatus::Lost,
        "attempt 2 > retries 1: no attempts left"
    );
    assert_eq!(c.job_status(job.id).await, JobStatus::Failed);
}

/// A lease that ran out but was not rescued yet is still current: its worker may still
/// heartbeat, write output and finish; once rescued, it can do none of these.
pub async fn expired_lease_current_until_rescued(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let a = c.system("a").await;
    let b = c.system("b").await;
    let d = c.system("d").await;
    c.job(&[&a, &b, &d], opts()).await;
    let claims = c.claim("w", 3).await;
    assert_eq!(claims.len(), 3);
    c.advance(secs(45));
    let (late_beat, late_finish, dead) = (&claims[0], &claims[1], &claims[2]);
    let rep = c
        .store
        .heartbeat(std::slice::from_ref(&late_beat.lease), secs(30))
        .await
        .expect("heartbeat");
    assert_eq!(
        rep.renewed.len(),
        1,
        "a late heartbeat before the reaper renews"
    );
    c.store
        .append_output_one(
            &late_finish.lease,
            vec![chunk(&late_finish.lease, 0, b"late", c.now())],
        )
        .await
        .expect("late output before the reaper");
    c.store
        .finish_one(&late_finish.lease, &Finish::exited(0))
        .await
        .expect("late finish before the reaper");
    let rescued = c.store.rescue_expired(10).await.expect("rescue");
    assert_eq!(
        rescued.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![dead.execution.id],
        "only the silent one is rescued"
    );
    assert_kind(
        c.store.finish_one(&dead.lease, &Finish::exited(0)).await,
        ErrorKind::LeaseLost,
        "finish after the reaper",
    );
    let rep = c
        .store
        .heartbeat(std::slice::from_ref(&dead.lease), secs(30))
        .await
        .expect("heartbeat");
    assert_eq!(rep.lost, vec![dead.execution.id]);
    let e = c.store.get_execution(dead.execution.id).await.expect("get");
    assert_eq!(e.status, ExecutionStatus::Lost);
}
