//! Property tests of the execution state machine against [`MemoryStore`]: random sequences of
//! claims, heartbeats, output, finishes, cancels, rescues and clock moves keep the invariants.
//!
//! - a terminal execution never changes again;
//! - every observed transition satisfies `ExecutionStatus::can_become`;
//! - at most one lease per execution is accepted by the store, and only while it runs;
//! - a job's status always equals `JobStatus::derive` of its counts, and the counts match its
//!   executions;
//! - claims respect `not_before`, job concurrency and `per_system`; refused writes change
//!   nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::TimeZone;
use orca_core::ids::{ExecutionId, JobId, SystemId};
use orca_core::model::{
    AuditRecord, Execution, ExecutionStatus, Finish, Health, HostKeyPolicy, Job, JobOptions,
    JobStatus, Lease, OutputChunk, Page, Principal, StatusCounts, Stream, System, SystemType,
    Targets,
};
use orca_core::{
    CancelTarget, ClaimRequest, Clock, ErrorKind, ManualClock, MemoryStore, OutputBatch, Store,
};
use proptest::prelude::*;

const WORKERS: u8 = 3;

#[derive(Debug, Clone)]
enum FinishKind {
    Exit(i32),
    Timeout,
    Cancelled,
    Lost,
    IllegalRunning,
    Retry(u8),
}

#[derive(Debug, Clone)]
enum Op {
    Claim {
        worker: u8,
        limit: u8,
        per_system: Option<u8>,
        lease_secs: u8,
    },
    Heartbeat {
        worker: u8,
        extend_secs: u8,
    },
    Append {
        lease: usize,
        chunks: u8,
        seq_skew: i8,
    },
    Finish {
        lease: usize,
        kind: FinishKind,
    },
    Cancel {
        job: bool,
        pick: usize,
    },
    Rescue {
        limit: u8,
    },
    Advance {
        secs: u8,
    },
}

fn finish_kind() -> impl Strategy<Value = FinishKind> {
    prop_oneof![
        (0..3i32).prop_map(FinishKind::Exit),
        Just(FinishKind::Timeout),
        Just(FinishKind::Cancelled),
        Just(FinishKind::Lost),
        Just(FinishKind::IllegalRunning),
        (0..20u8).prop_map(FinishKind::Retry),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..WORKERS, 0..4u8, proptest::option::of(1..3u8), 5..40u8).prop_map(
            |(worker, limit, per_system, lease_secs)| Op::Claim { worker, limit, per_system, lease_secs }
        ),
        2 => (0..WORKERS, 5..40u8).prop_map(|(worker, extend_secs)| Op::Heartbeat { worker, extend_secs }),
        2 => (any::<usize>(), 0..3u8, prop_oneof![4 => Just(0i8), 1 => -2..3i8])
            .prop_map(|(lease, chunks, seq_skew)| Op::Append { lease, chunks, seq_skew }),
        3 => (any::<usize>(), finish_kind()).prop_map(|(lease, kind)| Op::Finish { lease, kind }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(job, pick)| Op::Cancel { job, pick }),
        2 => (0..4u8).prop_map(|limit| Op::Rescue { limit }),
        2 => (0..45u8).prop_map(|secs| Op::Advance { secs }),
    ]
}

#[derive(Debug, Clone)]
struct JobSetup {
    concurrency: Option<u32>,
    retries: u32,
    requeue_lost: bool,
}

fn job_setup() -> impl Strategy<Value = JobSetup> {
    (proptest::option::of(1..3u32), 0..3u32, any::<bool>()).prop_map(
        |(concurrency, retries, requeue_lost)| JobSetup {
            concurrency,
            retries,
            requeue_lost,
        },
    )
}

struct World {
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    jobs: Vec<Job>,
    /// Every lease ever handed out, with the worker it went to.
    leases: Vec<(u8, Lease)>,
    /// Last observed executions.
    seen: HashMap<ExecutionId, Execution>,
}

fn audit(clock: &ManualClock, what: &str) -> AuditRecord {
    AuditRecord::new(
        clock.now(),
        &Principal::system("props"),
        what,
        None,
        "test",
        serde_json::Value::Null,
    )
}

fn page() -> Page {
    Page::new(0, 1000).expect("page")
}

impl World {
    async fn new(setups: &[JobSetup], systems: usize) -> World {
        let start = chrono::Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .expect("date");
        let clock = Arc::new(ManualClock::new(start));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(clock.clone()));
        let mut sys = Vec::new();
        for i in 0..systems {
            let now = clock.now();
            let s = System {
                id: SystemId::new(),
                name: format!("s{i}"),
                hostname: "h".into(),
                port: 22,
                system_type: SystemType::Linux,
                username: "u".into(),
                credential: None,
                tags: vec![],
                active: true,
                health: Health::default(),
                host_key_policy: HostKeyPolicy::Strict,
                options: Default::default(),
                created_at: now,
                updated_at: now,
            };
            store
                .create_system(&s, &audit(&clock, "system"))
                .await
                .expect("system");
            sys.push(s);
        }
        let mut jobs = Vec::new();
        for setup in setups {
            let now = clock.now();
            let job = Job {
                id: JobId::new(),
                name: "j".into(),
                command: "true".into(),
                created_by: "props".into(),
                created_by_id: None,
                targets: Targets::default(),
                options: JobOptions {
                    concurrency: setup.concurrency,
                    retries: setup.retries,
                    requeue_lost: setup.requeue_lost,
                    ..JobOptions::default()
                },
                status: JobStatus::Pending,
                created_at: now,
                updated_at: now,
            };
            let execs: Vec<Execution> = sys
                .iter()
                .map(|s| Execution::pending(job.id, s.id, now))
                .collect();
            store
                .create_job(&job, &execs, &audit(&clock, "job"))
                .await
                .expect("job");
            jobs.push(job);
            clock.advance(Duration::from_millis(1));
        }
        let mut w = World {
            clock,
            store,
            jobs,
            leases: Vec::new(),
            seen: HashMap::new(),
        };
        w.seen = w.snapshot().await;
        w
    }

    async fn snapshot(&self) -> HashMap<ExecutionId, Execution> {
        let mut m = HashMap::new();
        for j in &self.jobs {
            for e in self
                .store
                .list_executions(j.id, page())
                .await
                .expect("list")
            {
                m.insert(e.id, e);
            }
        }
        m
    }

    fn pick_lease(&self, i: usize) -> Option<Lease> {
        if self.leases.is_empty() {
            None
        } else {
            Some(self.leases[i % self.leases.len()].1.clone())
        }
    }

    /// Whether the store would accept `lease` (probed with an empty output batch, which
    /// writes nothing).
    async fn accepted(&self, lease: &Lease) -> bool {
        let r = self
            .store
            .append_output(&[OutputBatch {
                lease: lease.clone(),
                chunks: vec![],
            }])
            .await
            .expect("append_output");
        match &r[0] {
            Ok(()) => true,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::LeaseLost, "{e}");
                false
            }
        }
    }

    async fn apply(&mut self, op: &Op) {
        let now = self.clock.now();
        match op {
            Op::Claim {
                worker,
                limit,
                per_system,
                lease_secs,
            } => {
                let req = ClaimRequest {
                    worker: format!("w{worker}"),
                    limit: u32::from(*limit),
                    lease_for: Duration::from_secs(u64::from(*lease_secs)),
                    per_system: per_system.map(u32::from),
                };
                let claims = self.store.claim(&req).await.expect("claim");
                assert!(claims.len() <= usize::from(*limit));
                let after = self.snapshot().await;
                for cl in &claims {
                    let before = &self.seen[&cl.execution.id];
                    assert_eq!(
                        before.status,
                        ExecutionStatus::Pending,
                        "claimed a non-pending"
                    );
                    assert!(before.not_before <= now, "claimed before not_before");
                    if let Some(limit) = cl.job.options.concurrency {
                        let running = after
                            .values()
                            .filter(|e| {
                                e.job_id == cl.job.id && e.status == ExecutionStatus::Running
                            })
                            .count();
                        assert!(running <= limit as usize, "job concurrency exceeded");
                    }
                    if let Some(p) = req.per_system {
                        let running = after
                            .values()
                            .filter(|e| {
                                e.system_id == cl.system.id && e.status == ExecutionStatus::Running
                            })
                            .count();
                        assert!(running <= p as usize, "per-system limit exceeded");
                    }
                    self.leases.push((*worker, cl.lease.clone()));
                }
            }
            Op::Heartbeat {
                worker,
                extend_secs,
            } => {
                let mine: Vec<Lease> = self
                    .leases
                    .iter()
                    .filter(|(w, _)| w == worker)
                    .map(|(_, l)| l.clone())
                    .collect();
                let rep = self
                    .store
                    .heartbeat(&mine, Duration::from_secs(u64::from(*extend_secs)))
                    .await
                    .expect("heartbeat");
                assert_eq!(rep.renewed.len() + rep.lost.len(), mine.len());
                for l in &rep.renewed {
                    let e = &self.seen[&l.execution_id];
                    assert_eq!(e.status, ExecutionStatus::Running, "renewed a non-running");
                    assert_eq!(e.lease.as_ref().map(|x| x.token), Some(l.token));
                }
                for id in &rep.cancel_requested {
                    assert!(self.seen[id].cancel_requested);
                }
            }
            Op::Append {
                lease,
                chunks,
                seq_skew,
            } => {
                let Some(lease) = self.pick_lease(*lease) else {
                    return;
                };
                let before = self
                    .store
                    .read_output(lease.execution_id, 0, 10_000)
                    .await
                    .expect("read");
                let next = before.len() as i64 + i64::from(*seq_skew);
                let chunks: Vec<OutputChunk> = (0..i64::from(*chunks))
                    .map(|i| OutputChunk {
                        execution_id: lease.execution_id,
                        seq: (next + i).max(0) as u64,
                        stream: Stream::Stdout,
                        data: Bytes::from(vec![0xff, i as u8]),
                        at: now,
                    })
                    .collect();
                let valid = self.accepted(&lease).await;
                let gap = chunks
                    .iter()
                    .enumerate()
                    .any(|(i, c)| c.seq != (before.len() + i) as u64);
                let r = self
                    .store
                    .append_output(&[OutputBatch {
                        lease: lease.clone(),
                        chunks: chunks.clone(),
                    }])
                    .await
                    .expect("append");
                let after = self
                    .store
                    .read_output(lease.execution_id, 0, 10_000)
                    .await
                    .expect("read");
                match (&r[0], valid, gap) {
                    (Ok(()), true, false) => {
                        assert_eq!(after.len(), before.len() + chunks.len());
                        assert_eq!(&after[before.len()..], &chunks[..]);
                    }
                    (Err(e), false, _) => {
                        assert_eq!(e.kind(), ErrorKind::LeaseLost);
                        assert_eq!(after, before, "a refused write wrote something");
                    }
                    (Err(e), true, true) => {
                        assert_eq!(e.kind(), ErrorKind::Conflict);
                        assert_eq!(after, before, "a refused write wrote something");
                    }
                    (r, valid, gap) => panic!("append {r:?} with valid={valid} gap={gap}"),
                }
            }
            Op::Finish { lease, kind } => {
                let Some(lease) = self.pick_lease(*lease) else {
                    return;
                };
                let valid = self.accepted(&lease).await;
                let fin = match kind {
                    FinishKind::Exit(c) => Finish::exited(*c),
                    FinishKind::Timeout => Finish::new(ExecutionStatus::Timeout),
                    FinishKind::Cancelled => Finish::new(ExecutionStatus::Cancelled),
                    FinishKind::Lost => Finish::new(ExecutionStatus::Lost),
                    FinishKind::IllegalRunning => Finish::new(ExecutionStatus::Running),
                    FinishKind::Retry(s) => Finish::retry(
                        orca_core::clock::add(now, Duration::from_secs(u64::from(*s))),
                        "retry",
                    ),
                };
                let r = self
                    .store
                    .finish(&[(lease.clone(), fin.clone())])
                    .await
                    .expect("finish")
                    .remove(0);
                match (r, valid) {
                    (Ok(done), true) => {
                        assert_ne!(fin.status, ExecutionStatus::Running);
                        assert_eq!(done.execution.status, fin.status);
                        let before = &self.seen[&lease.execution_id];
                        let want_attempt =
                            before.attempt + u32::from(fin.status == ExecutionStatus::Pending);
                        assert_eq!(done.execution.attempt, want_attempt);
                        assert_eq!(done.execution.lease, None);
                    }
                    (Err(e), true) => {
                        assert_eq!(fin.status, ExecutionStatus::Running, "{e}");
                        assert_eq!(e.kind(), ErrorKind::Conflict);
                    }
                    (Err(e), false) => assert_eq!(e.kind(), ErrorKind::LeaseLost),
                    (Ok(done), false) => panic!("finish with a stale lease: {done:?}"),
                }
            }
            Op::Cancel { job, pick } => {
                let target = if *job {
                    CancelTarget::Job(self.jobs[pick % self.jobs.len()].id)
                } else {
                    let mut ids: Vec<_> = self.seen.keys().copied().collect();
                    ids.sort();
                    CancelTarget::Execution(ids[pick % ids.len()])
                };
                let rep = self
                    .store
                    .cancel(target, &audit(&self.clock, "cancel"))
                    .await
                    .expect("cancel");
                for id in &rep.cancelled {
                    assert_eq!(self.seen[id].status, ExecutionStatus::Pending);
                }
                for id in &rep.signalled {
                    assert_eq!(self.seen[id].status, ExecutionStatus::Running);
                }
            }
            Op::Rescue { limit } => {
                let got = self
                    .store
                    .rescue_expired(u32::from(*limit))
                    .await
                    .expect("rescue");
                assert!(got.len() <= usize::from(*limit));
                for e in &got {
                    let before = &self.seen[&e.id];
                    assert_eq!(before.status, ExecutionStatus::Running);
                    let expiry = before.lease.as_ref().map(|l| l.expires_at);
                    assert!(
                        expiry.is_some_and(|t| t <= now),
                        "rescued an unexpired lease"
                    );
                    assert!(matches!(
                        e.status,
                        ExecutionStatus::Lost | ExecutionStatus::Pending
                    ));
                    if e.status == ExecutionStatus::Pending {
                        assert_eq!(before.output_bytes, 0, "re-queued after output");
                        assert_eq!(e.attempt, before.attempt + 1);
                    }
                }
            }
            Op::Advance { secs } => self.clock.advance(Duration::from_secs(u64::from(*secs))),
        }
    }

    /// Check every invariant against the previous snapshot, then keep the new one.
    async fn check(&mut self) {
        let now = self.snapshot().await;
        for (id, new) in &now {
            let old = &self.seen[id];
            if old.status.is_terminal() {
                assert_eq!(old, new, "terminal execution {id} changed");
            }
            if old.status != new.status {
                assert!(
                    old.status.can_become(new.status),
                    "illegal transition {:?} -> {:?}",
                    old.status,
                    new.status
                );
            }
            assert!(new.attempt >= old.attempt, "attempt went down");
            assert_eq!(
                new.lease.is_some(),
                new.status == ExecutionStatus::Running,
                "a lease exactly while running: {new:?}"
            );
        }
        // At most one accepted lease per execution, and only the current one.
        let mut accepted: HashMap<ExecutionId, usize> = HashMap::new();
        for (_, l) in &self.leases {
            if self.accepted(l).await {
                *accepted.entry(l.execution_id).or_default() += 1;
                let e = &now[&l.execution_id];
                assert_eq!(e.status, ExecutionStatus::Running);
                assert_eq!(e.lease.as_ref().map(|x| x.token), Some(l.token));
            }
        }
        assert!(
            accepted.values().all(|n| *n <= 1),
            "two valid leases: {accepted:?}"
        );
        for j in &self.jobs {
            let counts = self.store.job_counts(j.id).await.expect("counts");
            let mut want = StatusCounts::default();
            for e in now.values().filter(|e| e.job_id == j.id) {
                want.add(e.status, 1);
            }
            assert_eq!(counts, want, "job_counts matches the executions");
            let job = self.store.get_job(j.id).await.expect("job");
            assert_eq!(job.status, JobStatus::derive(&counts));
        }
        self.seen = now;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 4000,
        // Integration tests have no lib.rs to sit beside; failures print the minimal case.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn execution_state_machine_invariants(
        setups in proptest::collection::vec(job_setup(), 1..4),
        systems in 1..4usize,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut w = World::new(&setups, systems).await;
            for op in &ops {
                w.apply(op).await;
                w.check().await;
            }
        });
    }
}
