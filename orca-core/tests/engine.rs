//! Engine and facade behaviour over the in-memory store and the scripted connector.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use orca_core::ids::{ExecutionId, UserId};
use orca_core::memory::MemoryStore;
use orca_core::model::*;
use orca_core::scripted::ScriptedConnector;
use orca_core::*;
use secrecy::SecretString;

fn fast_config() -> EngineConfig {
    EngineConfig {
        lease: Duration::from_secs(3),
        heartbeat_interval: Duration::from_millis(500),
        poll_interval: Duration::from_millis(50),
        reaper_interval: Duration::from_millis(100),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        health_interval: None,
        output_flush_interval: Duration::from_millis(10),
        ..EngineConfig::default()
    }
}

struct World {
    orca: Orca,
    store: Arc<dyn Store>,
    admin: Principal,
}

async fn world_with(cfg: EngineConfig, keyring: KeyRing, store: Option<Arc<dyn Store>>) -> World {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new(clock.clone())));
    let orca = Orca::builder()
        .store(store.clone())
        .connector(Arc::new(ScriptedConnector::new()))
        .keyring(keyring)
        .clock(clock)
        .engine_config(cfg)
        .build()
        .unwrap();
    orca.start().await.unwrap();
    World {
        orca,
        store,
        admin: Principal::system("test"),
    }
}

async fn world() -> World {
    world_with(fast_config(), KeyRing::ephemeral(), None).await
}

impl World {
    async fn systems(&self, n: usize, tag: &str) -> Vec<System> {
        let mut v = Vec::new();
        for i in 0..n {
            v.push(
                self.orca
                    .add_system(
                        &self.admin,
                        NewSystem {
                            name: format!("{tag}-{i}"),
                            system_type: Some(SystemType::Linux),
                            username: "u".into(),
                            credential: Credential::Password(SecretString::from(
                                "s3cret-pass".to_string(),
                            )),
                            tags: vec![tag.into()],
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap(),
            );
        }
        v
    }
    async fn run(&self, command: &str, tag: &str, options: JobOptions) -> (Job, Vec<Execution>) {
        let sub = self
            .orca
            .submit(
                &self.admin,
                JobSpec {
                    name: None,
                    command: command.into(),
                    targets: Targets {
                        systems: vec![],
                        tags: vec![tag.into()],
                    },
                    options,
                },
            )
            .await
            .unwrap();
        let job = tokio::time::timeout(
            Duration::from_secs(20),
            self.orca.wait_job(&self.admin, sub.job.id),
        )
        .await
        .expect("job did not end")
        .unwrap();
        let execs = self
            .orca
            .job_executions(&self.admin, job.id, Page::default())
            .await
            .unwrap();
        (job, execs)
    }
    async fn output(&self, id: ExecutionId) -> Vec<u8> {
        let chunks = self.store.read_output(id, 0, 1000).await.unwrap();
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.seq, i as u64, "seqs must be gap-free");
        }
        chunks.iter().flat_map(|c| c.data.to_vec()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completes_with_output_and_audit() {
    let w = world().await;
    w.systems(3, "web").await;
    let (job, execs) = w
        .run("echo hello; stderr oops", "web", JobOptions::default())
        .await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(execs.len(), 3);
    for e in &execs {
        assert_eq!(e.status, ExecutionStatus::Completed);
        assert_eq!(e.exit_code, Some(0));
        let chunks = w.store.read_output(e.id, 0, 100).await.unwrap();
        let out: Vec<u8> = chunks
            .iter()
            .filter(|c| c.stream == Stream::Stdout)
            .flat_map(|c| c.data.to_vec())
            .collect();
        let err: Vec<u8> = chunks
            .iter()
            .filter(|c| c.stream == Stream::Stderr)
            .flat_map(|c| c.data.to_vec())
            .collect();
        assert_eq!(out, b"hello\n");
        assert_eq!(err, b"oops\n");
    }
    let audit = w
        .orca
        .audit_log(
            &w.admin,
            &AuditFilter {
                action: Some("submit".into()),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].resource_id.as_deref(),
        Some(job.id.to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nonzero_exit_fails_the_job() {
    let w = world().await;
    w.systems(2, "db").await;
    let (job, execs) = w.run("echo x; exit 3", "db", JobOptions::default()).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        execs
            .iter()
            .all(|e| e.status == ExecutionStatus::Failed && e.exit_code == Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeout_ends_as_timeout() {
    let w = world().await;
    w.systems(1, "t").await;
    let opts = JobOptions {
        timeout_seconds: Some(1),
        ..Default::default()
    };
    let (job, execs) = w.run("hang", "t", opts).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(execs[0].status, ExecutionStatus::Timeout);
    assert!(
        execs[0].error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        execs[0].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_stops_running_and_pending_never_start() {
    let w = world().await;
    w.systems(4, "c").await;
    let sub = w
        .orca
        .submit(
            &w.admin,
            JobSpec {
                name: None,
                command: "hang".into(),
                targets: Targets {
                    systems: vec![],
                    tags: vec!["c".into()],
                },
                options: JobOptions {
                    concurrency: Some(2),
                    ..Default::default()
                },
            },
        )
        .await
        .unwrap();
    // Wait for two to be running.
    for _ in 0..100 {
        if w.store.job_counts(sub.job.id).await.unwrap().running == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        w.store.job_counts(sub.job.id).await.unwrap().running,
        2,
        "per-job concurrency holds"
    );
    let report = w.orca.cancel_job(&w.admin, sub.job.id).await.unwrap();
    assert_eq!(report.cancelled.len(), 2);
    assert_eq!(report.signalled.len(), 2);
    let job = tokio::time::timeout(
        Duration::from_secs(10),
        w.orca.wait_job(&w.admin, sub.job.id),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(job.status, JobStatus::Cancelled);
    let execs = w
        .orca
        .job_executions(&w.admin, job.id, Page::default())
        .await
        .unwrap();
    assert!(execs.iter().all(|e| e.status == ExecutionStatus::Cancelled));
    assert_eq!(
        execs.iter().filter(|e| e.started_at.is_none()).count(),
        2,
        "pending ones never started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_with_backoff_then_succeeds() {
    let w = world().await;
    w.systems(1, "r").await;
    let (job, execs) = w
        .run(
            "fail-times 2; echo done",
            "r",
            JobOptions {
                retries: 3,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(execs[0].attempt, 3);
    assert_eq!(w.output(execs[0].id).await, b"done\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_failure_without_retries_fails_with_reason() {
    let w = world().await;
    w.systems(1, "f").await;
    let (job, execs) = w.run("connect-fail", "f", JobOptions::default()).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(execs[0].attempt, 1);
    assert!(
        execs[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cannot connect"),
        "{:?}",
        execs[0].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connector_panic_fails_execution_not_engine() {
    let w = world().await;
    w.systems(1, "p").await;
    let (job, execs) = w.run("panic", "p", JobOptions::default()).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        execs[0].error.as_deref().unwrap().contains("panicked"),
        "{:?}",
        execs[0].error
    );
    let (job, _) = w.run("echo still alive", "p", JobOptions::default()).await;
    assert_eq!(job.status, JobStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_are_masked_in_stored_output() {
    let w = world().await;
    w.systems(1, "m").await;
    let (_, execs) = w.run("print-secret", "m", JobOptions::default()).await;
    let out = String::from_utf8(w.output(execs[0].id).await).unwrap();
    assert_eq!(out, "the password is ***\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_cap_keeps_head_and_tail() {
    let cfg = EngineConfig {
        output_cap: 4096,
        ..fast_config()
    };
    let w = world_with(cfg, KeyRing::ephemeral(), None).await;
    w.systems(1, "big").await;
    let (job, execs) = w
        .run(
            "echo START; bytes 100000; echo END",
            "big",
            JobOptions::default(),
        )
        .await;
    assert_eq!(job.status, JobStatus::Completed);
    let e = &execs[0];
    let out = w.output(e.id).await;
    assert!(out.starts_with(b"START\n"));
    assert!(out.ends_with(b"END\n"));
    let kept = 6 + 100_000 + 4;
    assert_eq!(e.output_dropped, (kept - 4096) as u64);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains(&format!(
        "[orca: {} bytes of output were dropped here]",
        e.output_dropped
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_replays_then_follows_without_gap_or_duplicate() {
    let w = world().await;
    w.systems(1, "wt").await;
    let script: Vec<String> = (0..40).map(|i| format!("echo line{i}; sleep 5")).collect();
    let sub = w
        .orca
        .submit(
            &w.admin,
            JobSpec {
                name: None,
                command: script.join("; "),
                targets: Targets {
                    systems: vec!["wt-0".into()],
                    tags: vec![],
                },
                options: JobOptions::default(),
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let id = sub.executions[0].id;
    let mut stream = w.orca.watch(&w.admin, id).await.unwrap();
    let mut seqs = Vec::new();
    let mut text = Vec::new();
    let mut last_status = None;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        match ev.unwrap() {
            WatchEvent::Output(c) => {
                seqs.push(c.seq);
                text.extend_from_slice(&c.data);
            }
            WatchEvent::Execution { status, .. } => last_status = Some(status),
            WatchEvent::Job { .. } => {}
        }
    }
    assert_eq!(last_status, Some(ExecutionStatus::Completed));
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let expect: String = (0..40).map(|i| format!("line{i}\n")).collect();
    assert_eq!(String::from_utf8(text).unwrap(), expect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_job_sees_every_execution_end() {
    let w = world().await;
    w.systems(5, "wj").await;
    let sub = w
        .orca
        .submit(
            &w.admin,
            JobSpec {
                name: None,
                command: "echo a; sleep 20; echo b".into(),
                targets: Targets {
                    systems: vec![],
                    tags: vec!["wj".into()],
                },
                options: JobOptions::default(),
            },
        )
        .await
        .unwrap();
    let mut stream = w.orca.watch_job(&w.admin, sub.job.id).await.unwrap();
    let mut done = std::collections::HashSet::new();
    let mut bytes = 0;
    let mut job_end = None;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        match ev.unwrap() {
            WatchEvent::Output(c) => bytes += c.data.len(),
            WatchEvent::Execution {
                execution_id,
                status,
                ..
            } if status.is_terminal() => {
                done.insert(execution_id);
            }
            WatchEvent::Job { status, .. } => job_end = Some(status),
            _ => {}
        }
    }
    assert_eq!(done.len(), 5);
    assert_eq!(bytes, 5 * 4);
    assert_eq!(job_end, Some(JobStatus::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_lease_of_a_dead_worker_becomes_lost() {
    let w = world().await;
    w.systems(1, "dead").await;
    // Stop this engine from claiming: a "dead" worker claims directly through the store.
    w.orca.shutdown(Duration::from_millis(10)).await.unwrap();
    let sub = w
        .orca
        .submit(
            &w.admin,
            JobSpec {
                name: None,
                command: "hang".into(),
                targets: Targets {
                    systems: vec!["dead-0".into()],
                    tags: vec![],
                },
                options: JobOptions::default(),
            },
        )
        .await
        .unwrap();
    let claims = w
        .store
        .claim(&ClaimRequest {
            worker: "dead".into(),
            limit: 10,
            lease_for: Duration::from_millis(200),
            per_system: None,
        })
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    // A second engine on the same store reaps it.
    let w2 = world_with(fast_config(), KeyRing::ephemeral(), Some(w.store.clone())).await;
    let job = tokio::time::timeout(
        Duration::from_secs(10),
        w2.orca.wait_job(&w2.admin, sub.job.id),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let e = w.store.get_execution(sub.executions[0].id).await.unwrap();
    assert_eq!(e.status, ExecutionStatus::Lost);
    // The dead worker's late finish is refused.
    let late = w
        .store
        .finish_one(&claims[0].lease, &Finish::exited(0))
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::LeaseLost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_lets_short_work_finish_and_stops_the_rest() {
    let w = world().await;
    w.systems(1, "g").await;
    w.systems(1, "h").await;
    let short = w
        .orca
        .submit(
            &w.admin,
            JobSpec {
                name: None,
                command: "sleep 300; echo ok".into(),
                targets: Targets {
                    systems: vec!["g-0".into()],
                    tags: vec![],
                },
                options: JobOptions::default(),
            },
        )
        .await
        .unwrap();
    let long = w
        .orca
        .submit(
            &w.admin,
            JobSpec {
                name: None,
                command: "hang".into(),
                targets: Targets {
                    systems: vec!["h-0".into()],
                    tags: vec![],
                },
                options: JobOptions::default(),
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = w.orca.shutdown(Duration::from_secs(1)).await.unwrap();
    assert!(report.abandoned.is_empty(), "{report:?}");
    let s = w.store.get_execution(short.executions[0].id).await.unwrap();
    assert_eq!(s.status, ExecutionStatus::Completed);
    let l = w.store.get_execution(long.executions[0].id).await.unwrap();
    assert_eq!(l.status, ExecutionStatus::Failed);
    assert!(l.error.unwrap().contains("shut down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policy_is_enforced_and_denials_are_audited() {
    let w = world().await;
    let web = w.systems(1, "web").await;
    w.systems(1, "db").await;
    let viewer = Principal {
        user_id: Some(UserId::new()),
        name: "vera".into(),
        role: Role::Viewer,
        scopes: vec![Scope::Tag("web".into())],
    };
    let op = Principal {
        user_id: Some(UserId::new()),
        name: "otto".into(),
        role: Role::Operator,
        scopes: vec![Scope::Tag("web".into())],
    };
    let spec = |t: &str| JobSpec {
        name: None,
        command: "true".into(),
        targets: Targets {
            systems: vec![t.into()],
            tags: vec![],
        },
        options: JobOptions::default(),
    };
    assert_eq!(
        w.orca
            .submit(&viewer, spec("web-0"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        w.orca.submit(&op, spec("db-0")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(w.orca.submit(&op, spec("web-0")).await.is_ok());
    let listed = w
        .orca
        .list_systems(&op, &SystemFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![web[0].id]
    );
    assert_eq!(
        w.orca.get_system(&viewer, "db-0").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let denied = w
        .orca
        .audit_log(
            &w.admin,
            &AuditFilter {
                actor: Some("vera".into()),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].outcome, AuditOutcome::Denied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_with_clear_errors() {
    let w = world().await;
    w.systems(1, "b").await;
    let spec = |cmd: &str, sys: &str| JobSpec {
        name: None,
        command: cmd.into(),
        targets: Targets {
            systems: vec![sys.into()],
            tags: vec![],
        },
        options: JobOptions::default(),
    };
    let e = w
        .orca
        .submit(&w.admin, spec("   ", "b-0"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = w
        .orca
        .submit(&w.admin, spec("true", "nope"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("nope"));
    let dup = w
        .orca
        .add_system(
            &w.admin,
            NewSystem {
                name: "b-0".into(),
                username: "u".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::AlreadyExists);
    let jobs = w
        .orca
        .list_jobs(&w.admin, &JobFilter::default(), Page::default())
        .await
        .unwrap();
    assert!(jobs.is_empty(), "nothing half-written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_reencrypt_to_a_new_primary() {
    let k1 = KeyRing::generate_key();
    let k2 = KeyRing::generate_key();
    let ring1 = KeyRing::new(vec![("k1".into(), k1.clone())], "k1").unwrap();
    let w = world_with(fast_config(), ring1, None).await;
    w.systems(3, "k").await;
    w.orca.shutdown(Duration::from_millis(10)).await.unwrap();
    let ring12 = KeyRing::new(vec![("k1".into(), k1), ("k2".into(), k2.clone())], "k2").unwrap();
    let w2 = world_with(fast_config(), ring12, Some(w.store.clone())).await;
    let r = w2.orca.reencrypt_credentials(&w2.admin).await.unwrap();
    assert_eq!(r.reencrypted, 3);
    assert_eq!(
        w2.orca
            .reencrypt_credentials(&w2.admin)
            .await
            .unwrap()
            .reencrypted,
        0
    );
    w2.orca.shutdown(Duration::from_millis(10)).await.unwrap();
    // Only k2 now: secrets still decrypt (the output masks the password, proving it decrypted).
    let w3 = world_with(
        fast_config(),
        KeyRing::new(vec![("k2".into(), k2)], "k2").unwrap(),
        Some(w.store.clone()),
    )
    .await;
    let (job, execs) = w3.run("print-secret", "k", JobOptions::default()).await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(w3.output(execs[0].id).await, b"the password is ***\n");
}
