//! Shared helpers for the Store conformance cases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;

use super::StoreFactory;
use crate::ids::{HostKeyId, JobId, SystemId};
use crate::model::{
    AuditFilter, AuditRecord, Execution, Health, HostKey, HostKeyPolicy, Job, JobOptions,
    JobStatus, Page, Principal, SealedSecret, Shell, System, SystemType, Targets, Timestamp,
};
use crate::{Claim, ClaimRequest, ErrorKind, ManualClock, Store};

/// The suite's clock starts here: an instant with a non-zero microsecond part and a
/// sub-microsecond part the clock drops.
pub(crate) fn start_time() -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2031, 5, 17, 8, 30, 15)
        .single()
        .expect("valid date")
        + chrono::TimeDelta::nanoseconds(123_456_789)
}

/// A fresh store and its clock.
pub(crate) struct Ctx {
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
}

pub(crate) async fn ctx(f: &dyn StoreFactory) -> Ctx {
    let clock = Arc::new(ManualClock::new(start_time()));
    let store = f.fresh(clock.clone()).await;
    Ctx { clock, store }
}

/// Shorthand for seconds.
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Assert that `r` is an error of `kind`.
#[track_caller]
pub(crate) fn assert_kind<T: std::fmt::Debug>(r: crate::Result<T>, kind: ErrorKind, what: &str) {
    match r {
        Ok(v) => panic!("{what}: expected a {kind} error, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), kind, "{what}: expected {kind}, got {e}"),
    }
}

impl Ctx {
    pub fn now(&self) -> Timestamp {
        use crate::Clock;
        self.clock.now()
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// A fresh audit record stamped now.
    pub fn audit(&self, resource_type: &str, action: &str) -> AuditRecord {
        AuditRecord::new(
            self.now(),
            &Principal::system("conformance"),
            resource_type,
            None,
            action,
            serde_json::json!({ "suite": "store" }),
        )
    }

    /// A system value (not stored) named `name`.
    pub fn new_system(&self, name: &str) -> System {
        let now = self.now();
        System {
            id: SystemId::new(),
            name: name.to_string(),
            hostname: format!("{name}.example.test"),
            port: 22,
            system_type: SystemType::Linux,
            username: "deploy".into(),
            credential: Some(SealedSecret(format!("orca1:k1:token-of-{name}"))),
            tags: vec!["all".into()],
            active: true,
            health: Health::default(),
            host_key_policy: HostKeyPolicy::Strict,
            options: BTreeMap::from([("opt".to_string(), "value".to_string())]),
            created_at: now,
            updated_at: now,
        }
    }

    /// Create and return a system named `name`.
    pub async fn system(&self, name: &str) -> System {
        let s = self.new_system(name);
        self.store
            .create_system(&s, &self.audit("system", "create"))
            .await
            .expect("create_system");
        s
    }

    /// A job value (not stored).
    pub fn new_job(&self, options: JobOptions) -> Job {
        let now = self.now();
        Job {
            id: JobId::new(),
            name: "conformance job".into(),
            command: "echo hello".into(),
            created_by: "conformance".into(),
            created_by_id: None,
            targets: Targets {
                systems: vec![],
                tags: vec!["all".into()],
            },
            options,
            status: JobStatus::Pending,
            created_at: now,
            updated_at: now,
        }
    }

    /// Create a job with one execution per system.
    pub async fn job(&self, systems: &[&System], options: JobOptions) -> (Job, Vec<Execution>) {
        let job = self.new_job(options);
        let execs: Vec<Execution> = systems
            .iter()
            .map(|s| Execution::pending(job.id, s.id, self.now()))
            .collect();
        self.store
            .create_job(&job, &execs, &self.audit("job", "create"))
            .await
            .expect("create_job");
        (job, execs)
    }

    /// Claim up to `limit` as `worker` with a 30 s lease.
    pub async fn claim(&self, worker: &str, limit: u32) -> Vec<Claim> {
        self.claim_with(worker, limit, None).await
    }

    pub async fn claim_with(
        &self,
        worker: &str,
        limit: u32,
        per_system: Option<u32>,
    ) -> Vec<Claim> {
        self.store
            .claim(&ClaimRequest {
                worker: worker.to_string(),
                limit,
                lease_for: secs(30),
                per_system,
            })
            .await
            .expect("claim")
    }

    pub async fn job_status(&self, id: JobId) -> JobStatus {
        self.store.get_job(id).await.expect("get_job").status
    }

    /// Audit records whose id is `id`.
    pub async fn audit_count(&self, id: crate::ids::AuditId) -> usize {
        self.store
            .list_audit(&AuditFilter::default(), Page::new(0, 1000).expect("page"))
            .await
            .expect("list_audit")
            .iter()
            .filter(|r| r.id == id)
            .count()
    }

    /// A host key value for `system`.
    pub fn host_key(&self, system: SystemId, fp: &str) -> HostKey {
        HostKey {
            id: HostKeyId::new(),
            system_id: system,
            algorithm: "ssh-ed25519".into(),
            fingerprint: format!("SHA256:{fp}"),
            created_at: self.now(),
        }
    }
}

/// Job options with everything default except what is set.
pub(crate) fn opts() -> JobOptions {
    JobOptions {
        shell: Shell::Default,
        ..JobOptions::default()
    }
}

/// A page.
pub(crate) fn page(offset: u64, limit: u32) -> Page {
    Page::new(offset, limit).expect("page")
}
