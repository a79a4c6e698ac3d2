//! Jobs, executions, derived job status and cancel ([`crate::JobStore`]).

use super::StoreFactory;
use super::fixtures::{assert_kind, ctx, opts, page, secs};
use crate::ids::{ExecutionId, JobId, SystemId};
use crate::model::{
    Execution, ExecutionStatus, Finish, JobFilter, JobOptions, JobStatus, StatusCounts,
};
use crate::{CancelTarget, ErrorKind, StoreExt};

/// A job and its executions round-trip; `job_counts` counts them.
pub async fn job_create_and_get(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let a = c.system("a").await;
    let b = c.system("b").await;
    let options = JobOptions {
        concurrency: Some(3),
        timeout_seconds: Some(90),
        retries: 2,
        retry_on_nonzero_exit: true,
        requeue_lost: true,
        shell: crate::model::Shell::Bash,
        env: [("K".to_string(), "v w".to_string())].into(),
    };
    let (job, execs) = c.job(&[&a, &b], options).await;
    assert_eq!(c.store.get_job(job.id).await.expect("get_job"), job);
    for e in &execs {
        assert_eq!(
            &c.store.get_execution(e.id).await.expect("get_execution"),
            e
        );
    }
    let counts = c.store.job_counts(job.id).await.expect("counts");
    assert_eq!(
        counts,
        StatusCounts {
            pending: 2,
            ..Default::default()
        }
    );
    assert_eq!(job.status, JobStatus::derive(&counts));
    assert_kind(
        c.store.get_job(JobId::new()).await,
        ErrorKind::NotFound,
        "get_job",
    );
    assert_kind(
        c.store.job_counts(JobId::new()).await,
        ErrorKind::NotFound,
        "job_counts",
    );
    assert_kind(
        c.store.get_execution(ExecutionId::new()).await,
        ErrorKind::NotFound,
        "get_execution",
    );
}

/// A duplicate job id answers `AlreadyExists`; an execution on a missing system answers
/// `NotFound`; either way nothing (job, executions, audit) is written.
pub async fn job_create_rejects_bad_rows(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("only").await;
    let (job, _) = c.job(&[&s], opts()).await;

    let dup_exec = Execution::pending(job.id, s.id, c.now());
    let audit = c.audit("job", "create");
    assert_kind(
        c.store
            .create_job(&job, std::slice::from_ref(&dup_exec), &audit)
            .await,
        ErrorKind::AlreadyExists,
        "duplicate job id",
    );
    assert_eq!(c.audit_count(audit.id).await, 0);
    assert_kind(
        c.store.get_execution(dup_exec.id).await,
        ErrorKind::NotFound,
        "execution of a refused job",
    );

    let job2 = c.new_job(opts());
    let good = Execution::pending(job2.id, s.id, c.now());
    let bad = Execution::pending(job2.id, SystemId::new(), c.now());
    let audit = c.audit("job", "create");
    assert_kind(
        c.store
            .create_job(&job2, &[good.clone(), bad], &audit)
            .await,
        ErrorKind::NotFound,
        "execution on a missing system",
    );
    assert_eq!(c.audit_count(audit.id).await, 0);
    assert_kind(c.store.get_job(job2.id).await, ErrorKind::NotFound, "job");
    assert_kind(
        c.store.get_execution(good.id).await,
        ErrorKind::NotFound,
        "sibling execution",
    );
    assert!(
        c.claim("w", 10).await.len() == 1,
        "only the first job's execution is queued"
    );
}

/// `list_jobs` is newest first.
pub async fn job_list_newest_first(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("s").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(c.job(&[&s], opts()).await.0.id);
        c.advance(secs(1));
    }
    ids.reverse();
    let got: Vec<JobId> = c
        .store
        .list_jobs(&JobFilter::default(), page(0, 100))
        .await
        .expect("list")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, ids);
}

/// `list_jobs` filters by status and creator and pages.
pub async fn job_list_filters_and_pages(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let s = c.system("s").await;
    let mut all = Vec::new();
    for i in 0..12 {
        let mut job = c.new_job(opts());
        job.created_by = if i % 3 == 0 { "alice" } else { "bob" }.into();
        let e = Execution::pending(job.id, s.id, c.now());
        c.store
            .create_job(&job, &[e], &c.audit("job", "create"))
            .await
            .expect("create");
        all.push(job);
        c.advance(secs(1));
    }
    // Run the oldest job's execution to completion: that job is completed.
    let cl = c.claim("w", 1).await;
    assert_eq!(cl[0].job.id, all[0].id);
    c.store
        .finish_one(&cl[0].lease, &Finish::exited(0))
        .await
        .expect("finish");

    let list = |filter: JobFilter, p| {
        let store = c.store.clone();
        async move {
            store
                .list_jobs(&filter, p)
                .await
                .expect("list")
                .into_iter()
                .map(|j| j.id)
                .collect::<Vec<_>>()
        }
    };
    let alice: Vec<JobId> = all
        .iter()
        .rev()
        .filter(|j| j.created_by == "alice")
        .map(|j| j.id)
        .collect();
    assert_eq!(
        list(
            JobFilter {
                created_by: Some("alice".into()),
                ..Default::default()
            },
            page(0, 100)
        )
        .await,
        alice
    );
    assert_eq!(
        list(
            JobFilter {
                status: Some(JobStatus::Completed),
                ..Default::default()
            },
            page(0, 100)
        )
        .await,
        vec![all[0].id]
    );
    assert_eq!(
        list(
            JobFilter {
                status: Some(JobStatus::Pending),
                created_by: Some("alice".into()),
            },
            page(0, 100)
        )
        .await,
        alice[..alice.len() - 1].to_vec(),
        "alice's pending jobs"
    );
    let newest_first: Vec<JobId> = all.iter().rev().map(|j| j.id).collect();
    let mut paged = Vec::new();
    for p in 0..3 {
        paged.extend(list(JobFilter::default(), page(p * 5, 5)).await);
    }
    assert_eq!(paged, newest_first);
}

/// The job's status is `derive(counts)` at every step of a lifecycle.
pub async fn job_status_follows_lifecycle(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let sys: Vec<_> = {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(c.system(&format!("s{i}")).await);
        }
        v
    };
    let refs: Vec<_> = sys.iter().collect();
    let (job, _) = c.job(&refs, opts()).await;
    let check = |want: JobStatus| {
        let store = c.store.clone();
        let id = job.id;
        async move {
            let counts = store.job_counts(id).await.expect("counts");
            let got = store.get_job(id).await.expect("job").status;
            assert_eq!(
                got,
                JobStatus::derive(&counts),
                "status equals derive({counts:?})"
            );
            assert_eq!(got, want, "counts {counts:?}");
            counts
        }
    };
    check(JobStatus::Pending).await;
    let claims = c.claim("w", 4).await;
    assert_eq!(claims.len(), 4);
    assert_eq!(claims[0].job.status, JobStatus::Running);
    let counts = check(JobStatus::Running).await;
    assert_eq!(counts.running, 4);
    let r = c
        .store
        .finish_one(&claims[0].lease, &Finish::exited(0))
        .await
        .expect("finish");
    assert_eq!(r.job_status, JobStatus::Running);
    check(JobStatus::Running).await;
    c.store
        .finish_one(&claims[1].lease, &Finish::exited(0))
        .await
        .expect("finish");
    c.store
        .finish_one(&claims[2].lease, &Finish::new(ExecutionStatus::Cancelled))
        .await
        .expect("finish");
    let counts = check(JobStatus::Running).await;
    assert_eq!(
        (counts.completed, counts.cancelled, counts.running),
        (2, 1, 1)
    );
    let r = c
        .store
        .finish_one(&claims[3].lease, &Finish::exited(2))
        .await
        .expect("finish");
    assert_eq!(r.job_status, JobStatus::Failed);
    assert_eq!(r.execution.status, ExecutionStatus::Failed);
    assert_eq!(r.execution.exit_code, Some(2));
    check(JobStatus::Failed).await;

    // All completed → completed; all cancelled → cancelled.
    let (ok_job, _) = c.job(&[&sys[0]], opts()).await;
    let cl = c.claim("w", 1).await;
    let r = c
        .store
        .finish_one(&cl[0].lease, &Finish::exited(0))
        .await
        .expect("finish");
    assert_eq!(r.job_status, JobStatus::Completed);
    assert_eq!(c.job_status(ok_job.id).await, JobStatus::Completed);
    let (cancel_job, _) = c.job(&[&sys[1], &sys[2]], opts()).await;
    c.store
        .cancel(CancelTarget::Job(cancel_job.id), &c.audit("job", "cancel"))
        .await
        .expect("cancel");
    assert_eq!(c.job_status(cancel_job.id).await, JobStatus::Cancelled);
    let counts = c.store.job_counts(cancel_job.id).await.expect("counts");
    assert_eq!(counts.cancelled, 2);
}

/// `list_executions` is oldest first and pages.
pub async fn list_executions_oldest_first(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let mut systems = Vec::new();
    for i in 0..7 {
        systems.push(c.system(&format!("s{i}")).await);
    }
    let job = c.new_job(opts());
    let mut execs = Vec::new();
    for s in &systems {
        execs.push(Execution::pending(job.id, s.id, c.now()));
        c.advance(secs(1));
    }
    // Hand them to the store in a scrambled order.
    let mut scrambled = execs.clone();
    scrambled.reverse();
    scrambled.swap(0, 3);
    c.store
        .create_job(&job, &scrambled, &c.audit("job", "create"))
        .await
        .expect("create");
    let all = c
        .store
        .list_executions(job.id, page(0, 100))
        .await
        .expect("list");
    assert_eq!(all, execs);
    let mut paged = Vec::new();
    for p in 0..3 {
        paged.extend(
            c.store
                .list_executions(job.id, page(p * 3, 3))
                .await
                .expect("list"),
        );
    }
    assert_eq!(paged, execs);
}

/// Cancelling a job: pending executions become `cancelled` and are never claimed; running
/// ones are flagged `cancel_requested`, which heartbeats report.
pub async fn cancel_job(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let a = c.system("a").await;
    let b = c.system("b").await;
    let d = c.system("d").await;
    let (job, execs) = c.job(&[&a, &b, &d], opts()).await;
    let running = c.claim("w", 1).await.remove(0);
    c.advance(secs(1));
    let audit = c.audit("job", "cancel");
    let rep = c
        .store
        .cancel(CancelTarget::Job(job.id), &audit)
        .await
        .expect("cancel");
    assert_eq!(c.audit_count(audit.id).await, 1);
    assert_eq!(rep.signalled, vec![running.execution.id]);
    let mut cancelled = rep.cancelled.clone();
    cancelled.sort();
    let mut want: Vec<ExecutionId> = execs
        .iter()
        .map(|e| e.id)
        .filter(|id| *id != running.execution.id)
        .collect();
    want.sort();
    assert_eq!(cancelled, want);
    for id in &want {
        let e = c.store.get_execution(*id).await.expect("get");
        assert_eq!(e.status, ExecutionStatus::Cancelled);
        assert_eq!(e.completed_at, Some(c.now()));
    }
    assert!(c.claim("w", 10).await.is_empty(), "cancelled never runs");
    let hb = c
        .store
        .heartbeat(std::slice::from_ref(&running.lease), secs(30))
        .await
        .expect("heartbeat");
    assert_eq!(hb.cancel_requested, vec![running.execution.id]);
    assert_eq!(hb.renewed.len(), 1);
    assert_eq!(c.job_status(job.id).await, JobStatus::Running);

    let r = c
        .store
        .finish_one(&running.lease, &Finish::new(ExecutionStatus::Cancelled))
        .await
        .expect("finish");
    assert_eq!(r.job_status, JobStatus::Cancelled);
    let rep = c
        .store
        .cancel(CancelTarget::Job(job.id), &c.audit("job", "cancel"))
        .await
        .expect("cancel again");
    assert!(
        rep.cancelled.is_empty() && rep.signalled.is_empty(),
        "{rep:?}"
    );

    let missing = c.audit("job", "cancel");
    assert_kind(
        c.store
            .cancel(CancelTarget::Job(JobId::new()), &missing)
            .await,
        ErrorKind::NotFound,
        "cancel a missing job",
    );
    assert_eq!(c.audit_count(missing.id).await, 0);
}

/// Cancelling one execution leaves its siblings alone.
pub async fn cancel_execution(f: &dyn StoreFactory) {
    let c = ctx(f).await;
    let a = c.system("a").await;
    let b = c.system("b").await;
    let (job, execs) = c.job(&[&a, &b], opts()).await;
    let rep = c
        .store
        .cancel(
            CancelTarget::Execution(execs[0].id),
            &c.audit("execution", "cancel"),
        )
        .await
        .expect("cancel");
    assert_eq!(rep.cancelled, vec![execs[0].id]);
    assert!(rep.signalled.is_empty());
    assert_eq!(
        c.store
            .get_execution(execs[1].id)
            .await
            .expect("get")
            .status,
        ExecutionStatus::Pending
    );
    // One ended, one waiting: the job is under way.
    assert_eq!(c.job_status(job.id).await, JobStatus::Running);
    let cl = c.claim("w", 10).await;
    assert_eq!(cl.len(), 1);
    assert_eq!(cl[0].execution.id, execs[1].id);
    c.store
        .finish_one(&cl[0].lease, &Finish::exited(0))
        .await
        .expect("finish");
    assert_eq!(c.job_status(job.id).await, JobStatus::Cancelled);
    assert_kind(
        c.store
            .cancel(
                CancelTarget::Execution(ExecutionId::new()),
                &c.audit("execution", "cancel"),
            )
            .await,
        ErrorKind::NotFound,
        "cancel a missing execution",
    );
}
