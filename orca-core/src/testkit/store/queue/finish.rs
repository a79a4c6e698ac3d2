//! Finishing and retrying executions.

use super::super::StoreFactory;
use super::super::fixtures::{assert_kind, ctx, opts, secs};
use crate::clock::add;
use crate::ids::LeaseToken;
use crate::model::{ExecutionStatus, Finish, JobStatus};
use crate::{CancelTarget, ErrorKind, StoreExt};

/// Legal finishes end the execution once; `Running` (or any second finish) is refused.
pub async fn finish_transitions(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut systems = Vec::new();
    for i in 0..6 {
        systems.push(c.system(&format!("s{i}")).await);
    }
    let refs: Vec<_> = systems.iter().collect();
    c.job(&refs, opts()).await;
    let claims = c.claim("w", 6).await;
    assert_eq!(claims.len(), 6);
    c.advance(secs(3));

    let before = c
        .store
        .get_execution(claims[0].execution.id)
        .await
        .expect("get");
    assert_kind(
        c.store
            .finish_one(&claims[0].lease, &Finish::new(ExecutionStatus::Running))
            .await,
        ErrorKind::Conflict,
        "finish to running",
    );
    assert_eq!(
        c.store.get_execution(before.id).await.expect("get"),
        before,
        "a refused finish changes nothing"
    );

    let mut failed = Finish::failed("connection reset");
    failed.signal = Some("SIGKILL".into());
    failed.output_dropped = 7;
    let finishes = [
        Finish::exited(0),
        Finish::exited(3),
        failed,
        Finish::new(ExecutionStatus::Timeout),
        Finish::new(ExecutionStatus::Cancelled),
        Finish::new(ExecutionStatus::Lost),
    ];
    for (cl, fin) in claims.iter().zip(finishes.iter()) {
        let r = c.store.finish_one(&cl.lease, fin).await.expect("finish");
        let e = &r.execution;
        assert_eq!(e.status, fin.status);
        assert_eq!(e.exit_code, fin.exit_code);
        assert_eq!(e.signal, fin.signal);
        assert_eq!(e.error, fin.error);
        assert_eq!(e.output_dropped, fin.output_dropped);
        assert_eq!(e.completed_at, Some(c.now()));
        assert_eq!(e.started_at, cl.execution.started_at);
        assert_eq!(e.lease, None, "a finished execution holds no lease");
        assert_eq!(e.attempt, 1);
        assert_eq!(&c.store.get_execution(e.id).await.expect("get"), e);

        // Terminal states never change: neither a second finish nor a cancel.
        for again in [
            Finish::exited(0),
            Finish::new(ExecutionStatus::Failed),
            Finish::retry(c.now(), "again"),
        ] {
            let r = c.store.finish_one(&cl.lease, &again).await;
            assert!(r.is_err(), "second finish of {:?} must fail", e.status);
        }
        let rep = c
            .store
            .cancel(
                CancelTarget::Execution(e.id),
                &c.audit("execution", "cancel"),
            )
            .await
            .expect("cancel of an ended execution");
        assert!(rep.cancelled.is_empty() && rep.signalled.is_empty());
        assert_eq!(&c.store.get_execution(e.id).await.expect("get"), e);
    }
}

/// A finish to `Pending` re-queues: attempt + 1, `not_before = retry_at`, lease cleared.
pub async fn finish_retry_requeues(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("retry").await;
    let (job, _) = c.job(&[&s], opts()).await;
    let cl = c.claim("w", 1).await.remove(0);
    let retry_at = add(c.now(), secs(60));
    let r = c
        .store
        .finish_one(&cl.lease, &Finish::retry(retry_at, "connection refused"))
        .await
        .expect("retry");
    let e = &r.execution;
    assert_eq!(e.status, ExecutionStatus::Pending);
    assert_eq!(e.attempt, 2);
    assert_eq!(e.not_before, retry_at);
    assert_eq!(e.lease, None);
    assert_eq!(e.completed_at, None);
    assert_eq!(e.error.as_deref(), Some("connection refused"));
    let counts = c.store.job_counts(job.id).await.expect("counts");
    assert_eq!(counts.pending, 1);
    assert_eq!(r.job_status, JobStatus::derive(&counts));
    assert_eq!(c.job_status(job.id).await, r.job_status);
    assert_kind(
        c.store.finish_one(&cl.lease, &Finish::exited(0)).await,
        ErrorKind::LeaseLost,
        "the re-queued attempt's lease is gone",
    );

    c.advance(secs(59));
    assert!(c.claim("w", 1).await.is_empty(), "not before retry_at");
    c.advance(secs(1));
    let again = c.claim("w", 1).await.remove(0);
    assert_eq!(again.execution.attempt, 2);
    assert_eq!(again.execution.started_at, Some(c.now()));
    let r = c
        .store
        .finish_one(&again.lease, &Finish::retry(c.now(), "again"))
        .await
        .expect("retry without delay");
    assert_eq!(r.execution.attempt, 3);
    assert_eq!(r.execution.not_before, c.now());
    let third = c.claim("w", 1).await.remove(0);
    let r = c
        .store
        .finish_one(&third.lease, &Finish::exited(0))
        .await
        .expect("finish");
    assert_eq!(r.execution.attempt, 3);
    assert_eq!(r.job_status, JobStatus::Completed);
}

/// Items of one `finish` call succeed or fail on their own.
pub async fn finish_batch_independent(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let a = c.system("a").await;
    let b = c.system("b").await;
    let (job, _) = c.job(&[&a, &b], opts()).await;
    let claims = c.claim("w", 2).await;
    let mut stale = claims[1].lease.clone();
    stale.token = LeaseToken::new();
    let items = vec![
        (claims[0].lease.clone(), Finish::exited(0)),
        (stale, Finish::exited(0)),
        (
            claims[1].lease.clone(),
            Finish::new(ExecutionStatus::Running),
        ),
    ];
    let res = c.store.finish(&items).await.expect("finish");
    assert_eq!(res.len(), 3);
    assert_eq!(
        res[0].as_ref().expect("first").execution.status,
        ExecutionStatus::Completed
    );
    assert_eq!(
        res[1].as_ref().map_err(|e| e.kind()).err(),
        Some(ErrorKind::LeaseLost)
    );
    assert_eq!(
        res[2].as_ref().map_err(|e| e.kind()).err(),
        Some(ErrorKind::Conflict)
    );
    let e = c
        .store
        .get_execution(claims[1].execution.id)
        .await
        .expect("get");
    assert_eq!(e.status, ExecutionStatus::Running);
    assert_eq!(c.job_status(job.id).await, JobStatus::Running);
    let res = c
        .store
        .finish(&[(claims[1].lease.clone(), Finish::exited(0))])
        .await
        .expect("finish");
    assert_eq!(
        res[0].as_ref().expect("ok").job_status,
        JobStatus::Completed
    );
}
