//! [`AuditLogLayer`]: a [`Store`] wrapper that also writes every audit record it stores to the
//! log (target `orca::audit`), for the `features.audit_logging` switch. The database keeps the
//! audit trail either way; secrets never reach audit records, so none reach the log.

use std::sync::Arc;
use std::time::Duration;

use orca_core::async_trait;
use orca_core::ids::{ExecutionId, JobId, SystemId, UserId};
use orca_core::model::{
    AuditFilter, AuditRecord, Execution, Finish, Grant, Health, HostKey, Job, JobFilter, Lease,
    OutputChunk, Page, SealedSecret, StatusCounts, System, SystemFilter, Timestamp, User,
};
use orca_core::store::prelude::*;
use orca_core::{
    CancelReport, CancelTarget, Claim, ClaimRequest, Finished, HeartbeatReport, OutputBatch,
    Result, RevokeTokens, Store, StoreCapabilities, TokenRecord,
};

/// Logs every audit record written through it.
#[derive(Debug)]
pub struct AuditLogLayer {
    inner: Arc<dyn Store>,
}

impl AuditLogLayer {
    /// Wrap `inner`.
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(AuditLogLayer { inner })
    }
}

fn log(r: &AuditRecord) {
    tracing::info!(
        target: "orca::audit",
        audit_id = %r.id,
        actor = %r.actor,
        resource_type = %r.resource_type,
        resource_id = r.resource_id.as_deref().unwrap_or(""),
        action = %r.action,
        outcome = r.outcome.as_str(),
        details = %r.details,
        "audit"
    );
}

/// Log `audit` if `r` succeeded.
fn logged<T>(r: Result<T>, audit: Option<&AuditRecord>) -> Result<T> {
    if r.is_ok()
        && let Some(a) = audit
    {
        log(a);
    }
    r
}

impl Store for AuditLogLayer {
    fn capabilities(&self) -> StoreCapabilities {
        self.inner.capabilities()
    }
}

#[async_trait]
impl SystemStore for AuditLogLayer {
    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        logged(self.inner.create_system(system, audit).await, Some(audit))
    }
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        logged(self.inner.update_system(system, audit).await, Some(audit))
    }
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        logged(self.inner.delete_system(id, audit).await, Some(audit))
    }
    async fn get_system(&self, id: SystemId) -> Result<System> {
        self.inner.get_system(id).await
    }
    async fn find_system(&self, name: &str) -> Result<System> {
        self.inner.find_system(name).await
    }
    async fn list_systems(&self, filter: &SystemFilter, page: Page) -> Result<Vec<System>> {
        self.inner.list_systems(filter, page).await
    }
    async fn record_health(&self, id: SystemId, health: &Health) -> Result<()> {
        self.inner.record_health(id, health).await
    }
    async fn list_sealed_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>> {
        self.inner.list_sealed_not_under(key_id, limit).await
    }
    async fn reseal(&self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool> {
        self.inner.reseal(id, old, new).await
    }
    async fn list_host_keys(&self, system: SystemId) -> Result<Vec<HostKey>> {
        self.inner.list_host_keys(system).await
    }
    async fn pin_host_key_if_none(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>> {
        // The store writes the record only if it pins.
        let pinned = self.inner.pin_host_key_if_none(key, audit).await?;
        if pinned.iter().any(|k| k.id == key.id) {
            log(audit);
        }
        Ok(pinned)
    }
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        logged(
            self.inner.replace_host_keys(system, keys, audit).await,
            Some(audit),
        )
    }
}

#[async_trait]
impl JobStore for AuditLogLayer {
    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        logged(
            self.inner.create_job(job, executions, audit).await,
            Some(audit),
        )
    }
    async fn get_job(&self, id: JobId) -> Result<Job> {
        self.inner.get_job(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        self.inner.list_jobs(filter, page).await
    }
    async fn job_counts(&self, id: JobId) -> Result<StatusCounts> {
        self.inner.job_counts(id).await
    }
    async fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        self.inner.list_executions(job, page).await
    }
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution> {
        self.inner.get_execution(id).await
    }
    async fn cancel(&self, target: CancelTarget, audit: &AuditRecord) -> Result<CancelReport> {
        logged(self.inner.cancel(target, audit).await, Some(audit))
    }
}

#[async_trait]
impl QueueStore for AuditLogLayer {
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        self.inner.claim(request).await
    }
    async fn heartbeat(&self, leases: &[Lease], extend: Duration) -> Result<HeartbeatReport> {
        self.inner.heartbeat(leases, extend).await
    }
    async fn append_output(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>> {
        self.inner.append_output(batches).await
    }
    async fn finish(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>> {
        self.inner.finish(items).await
    }
    async fn rescue_expired(&self, limit: u32) -> Result<Vec<Execution>> {
        self.inner.rescue_expired(limit).await
    }
}

#[async_trait]
impl OutputStore for AuditLogLayer {
    async fn read_output(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        self.inner.read_output(id, from, limit).await
    }
}

#[async_trait]
impl AuditStore for AuditLogLayer {
    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        logged(self.inner.append_audit(record).await, Some(record))
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        self.inner.list_audit(filter, page).await
    }
}

#[async_trait]
impl UserStore for AuditLogLayer {
    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        logged(self.inner.create_user(user, audit).await, Some(audit))
    }
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        logged(self.inner.update_user(user, audit).await, Some(audit))
    }
    async fn get_user(&self, id: UserId) -> Result<User> {
        self.inner.get_user(id).await
    }
    async fn find_user(&self, username: &str) -> Result<User> {
        self.inner.find_user(username).await
    }
    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        self.inner.list_users(page).await
    }
    async fn list_grants(&self, user: UserId) -> Result<Vec<Grant>> {
        self.inner.list_grants(user).await
    }
    async fn set_grants(&self, user: UserId, grants: &[Grant], audit: &AuditRecord) -> Result<()> {
        logged(
            self.inner.set_grants(user, grants, audit).await,
            Some(audit),
        )
    }
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()> {
        logged(self.inner.create_token(token, audit).await, audit)
    }
    async fn find_token(&self, hash: &str) -> Result<TokenRecord> {
        self.inner.find_token(hash).await
    }
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool> {
        self.inner.use_token(id).await
    }
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64> {
        logged(self.inner.revoke_tokens(which, audit).await, audit)
    }
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        self.inner.list_tokens(user).await
    }
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        self.inner.rate_limit_hit(key, window_start).await
    }
}
