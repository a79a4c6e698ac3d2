//! An in-memory [`Store`] for tests, examples and engine benchmarks (not durable).
//!
//! All state sits behind one mutex that is never held across an `await`, so every operation
//! is atomic: a mutation and its audit record are written together or not at all, and
//! `claim` is exclusive. It passes the same conformance suite as the database stores
//! (`orca_core::store_conformance!`).
//!
//! ```
//! use std::sync::Arc;
//! use orca_core::{MemoryStore, Store, SystemClock};
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
//! assert!(!store.capabilities().multi_node);
//! ```

mod catalog;
mod queue;
mod state;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use self::state::State;
use crate::ids::{ExecutionId, JobId, SystemId, UserId};
use crate::model::{
    AuditFilter, AuditRecord, Execution, Finish, Grant, Health, HostKey, Job, JobFilter, Lease,
    OutputChunk, Page, SealedSecret, StatusCounts, System, SystemFilter, Timestamp, User,
};
use crate::{
    CancelReport, CancelTarget, Claim, ClaimRequest, Clock, Finished, HeartbeatReport, OutputBatch,
    Result, RevokeTokens, Store, StoreCapabilities, TokenRecord,
};

/// A [`Store`] that keeps everything in memory, for one process.
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store whose times come from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-done mutation behind (every
        // operation checks before it writes), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Timestamp {
        crate::model::micros(self.clock.now())
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryStore")
            .field("systems", &s.systems.len())
            .field("jobs", &s.jobs.len())
            .field("executions", &s.executions.len())
            .field("pending", &s.pending.len())
            .field("running", &s.running.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities { multi_node: false }
    }

    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        self.lock().create_system(system, audit)
    }
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        self.lock().update_system(system, audit)
    }
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        self.lock().delete_system(id, audit)
    }
    async fn get_system(&self, id: SystemId) -> Result<System> {
        self.lock().system(id).cloned()
    }
    async fn find_system(&self, name: &str) -> Result<System> {
        let s = self.lock();
        s.system_names
            .get(name)
            .and_then(|id| s.systems.get(id))
            .cloned()
            .ok_or_else(|| crate::Error::not_found(format!("no system named '{name}'")))
    }
    async fn list_systems(&self, filter: &SystemFilter, page: Page) -> Result<Vec<System>> {
        Ok(self.lock().list_systems(filter, page))
    }
    async fn record_health(&self, id: SystemId, health: &Health) -> Result<()> {
        self.lock().record_health(id, health)
    }
    async fn list_sealed_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>> {
        Ok(self.lock().list_sealed_not_under(key_id, limit))
    }
    async fn reseal(&self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool> {
        self.lock().reseal(id, old, new)
    }

    async fn list_host_keys(&self, system: SystemId) -> Result<Vec<HostKey>> {
        Ok(self
            .lock()
            .host_keys
            .get(&system)
            .cloned()
            .unwrap_or_default())
    }
    async fn pin_host_key_if_none(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>> {
        self.lock().pin_host_key_if_none(key, audit)
    }
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        self.lock().replace_host_keys(system, keys, audit)
    }

    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        let now = self.now();
        self.lock().create_job(job, executions, audit, now)
    }
    async fn get_job(&self, id: JobId) -> Result<Job> {
        self.lock().job(id).map(|j| j.job.clone())
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        Ok(self.lock().list_jobs(filter, page))
    }
    async fn job_counts(&self, id: JobId) -> Result<StatusCounts> {
        self.lock().job(id).map(|j| j.counts)
    }
    async fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        self.lock().list_executions(job, page)
    }
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution> {
        self.lock().exec(id).map(|e| e.exec.clone())
    }
    async fn cancel(&self, target: CancelTarget, audit: &AuditRecord) -> Result<CancelReport> {
        let now = self.now();
        self.lock().cancel(target, audit, now)
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        let now = self.now();
        self.lock().claim(request, now)
    }
    async fn heartbeat(&self, leases: &[Lease], extend: Duration) -> Result<HeartbeatReport> {
        let now = self.now();
        Ok(self.lock().heartbeat(leases, extend, now))
    }
    async fn append_output(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>> {
        let mut s = self.lock();
        Ok(batches.iter().map(|b| s.append_one(b)).collect())
    }
    async fn finish(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>> {
        let now = self.now();
        let mut s = self.lock();
        Ok(items
            .iter()
            .map(|(lease, fin)| s.finish_one(lease, fin, now))
            .collect())
    }
    async fn rescue_expired(&self, limit: u32) -> Result<Vec<Execution>> {
        let now = self.now();
        self.lock().rescue_expired(limit, now)
    }
    async fn read_output(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        self.lock().read_output(id, from, limit)
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        let mut s = self.lock();
        s.check_audit(record)?;
        s.push_audit(record);
        Ok(())
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        Ok(self.lock().list_audit(filter, page))
    }

    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        self.lock().create_user(user, audit)
    }
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        self.lock().update_user(user, audit)
    }
    async fn get_user(&self, id: UserId) -> Result<User> {
        self.lock().user(id).cloned()
    }
    async fn find_user(&self, username: &str) -> Result<User> {
        let s = self.lock();
        s.user_names
            .get(username)
            .and_then(|id| s.users.get(id))
            .cloned()
            .ok_or_else(|| crate::Error::not_found(format!("no user named '{username}'")))
    }
    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        let s = self.lock();
        Ok(state::paginate(
            s.user_names
                .values()
                .filter_map(|id| s.users.get(id))
                .cloned(),
            page,
        ))
    }
    async fn list_grants(&self, user: UserId) -> Result<Vec<Grant>> {
        Ok(self.lock().grants.get(&user).cloned().unwrap_or_default())
    }
    async fn set_grants(&self, user: UserId, grants: &[Grant], audit: &AuditRecord) -> Result<()> {
        self.lock().set_grants(user, grants, audit)
    }
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()> {
        self.lock().create_token(token, audit)
    }
    async fn find_token(&self, hash: &str) -> Result<TokenRecord> {
        self.lock().find_token(hash)
    }
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool> {
        let now = self.now();
        Ok(self.lock().use_token(id, now))
    }
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64> {
        let now = self.now();
        self.lock().revoke_tokens(which, audit, now)
    }
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        Ok(self.lock().list_tokens(user))
    }
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        Ok(self.lock().rate_limit_hit(key, window_start))
    }
}
