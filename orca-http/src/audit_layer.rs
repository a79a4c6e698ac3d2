//! [`AuditContextLayer`]: a [`Store`] wrapper that stamps every audit record written during an
//! HTTP request with the request id and the client address, and counts it, so the HTTP layer
//! writes its own record only for requests the facade did not audit (one record per request).
//!
//! Build the [`orca_core::Orca`] that serves HTTP over a wrapped store:
//! ```
//! # use std::sync::Arc;
//! # use orca_core::{MemoryStore, Store, SystemClock, Orca};
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
//! let orca = Orca::builder().store(orca_http::AuditContextLayer::wrap(store)).build().unwrap();
//! ```
//! Outside a request (the engine, admin verbs) records pass through unchanged.
//!
//! Every change of a user, of a user's grants or of tokens that passes through the layer also
//! ends the reuse of cached callers in this process ([`crate::auth::cache`]), so logout,
//! disabling, role and password changes take effect on this node's next request.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use orca_core::async_trait;
use orca_core::ids::{ExecutionId, JobId, SystemId, UserId};
use orca_core::model::{
    AuditFilter, AuditRecord, Execution, Finish, Grant, Health, HostKey, Job, JobFilter, Lease,
    OutputChunk, Page, SealedSecret, StatusCounts, System, SystemFilter, Timestamp, User,
};
use orca_core::{
    CancelReport, CancelTarget, Claim, ClaimRequest, Finished, HeartbeatReport, OutputBatch,
    Result, RevokeTokens, Store, StoreCapabilities, TokenRecord,
};

use crate::auth::cache::auth_changed;
use crate::context;

/// Stamps audit records written during a request with its id and client address.
#[derive(Debug)]
pub struct AuditContextLayer {
    inner: Arc<dyn Store>,
}

impl AuditContextLayer {
    /// Wrap `inner`.
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(AuditContextLayer { inner })
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }
}

/// The record with the request's id and client address added to its details.
pub(crate) fn stamp(record: &AuditRecord) -> Cow<'_, AuditRecord> {
    let Some(ctx) = context::current() else {
        return Cow::Borrowed(record);
    };
    let mut r = record.clone();
    let mut details = match r.details.take() {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => serde_json::Map::new(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("details".into(), other);
            m
        }
    };
    details.insert("request_id".into(), ctx.request_id.clone().into());
    details.insert("client_address".into(), ctx.client.clone().into());
    r.details = serde_json::Value::Object(details);
    Cow::Owned(r)
}

/// Count an audit record as written for the current request if `r` succeeded.
fn counted<T>(r: Result<T>) -> Result<T> {
    if r.is_ok()
        && let Some(ctx) = context::current()
    {
        ctx.count_audit();
    }
    r
}

fn stamp_opt(record: Option<&AuditRecord>) -> Option<Cow<'_, AuditRecord>> {
    record.map(stamp)
}

#[async_trait]
impl Store for AuditContextLayer {
    fn capabilities(&self) -> StoreCapabilities {
        self.inner.capabilities()
    }
    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        counted(self.inner.create_system(system, &stamp(audit)).await)
    }
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        counted(self.inner.update_system(system, &stamp(audit)).await)
    }
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        counted(self.inner.delete_system(id, &stamp(audit)).await)
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
        // The store writes the record only if it pins; count it only then.
        let pinned = self.inner.pin_host_key_if_none(key, &stamp(audit)).await?;
        if pinned.iter().any(|k| k.id == key.id) {
            return counted(Ok(pinned));
        }
        Ok(pinned)
    }
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        counted(
            self.inner
                .replace_host_keys(system, keys, &stamp(audit))
                .await,
        )
    }
    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        counted(self.inner.create_job(job, executions, &stamp(audit)).await)
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
        counted(self.inner.cancel(target, &stamp(audit)).await)
    }
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
    async fn read_output(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        self.inner.read_output(id, from, limit).await
    }
    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        counted(self.inner.append_audit(&stamp(record)).await)
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        self.inner.list_audit(filter, page).await
    }
    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        counted(self.inner.create_user(user, &stamp(audit)).await)
    }
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        let r = counted(self.inner.update_user(user, &stamp(audit)).await);
        auth_changed();
        r
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
        let r = counted(self.inner.set_grants(user, grants, &stamp(audit)).await);
        auth_changed();
        r
    }
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()> {
        let audit = stamp_opt(audit);
        let r = self.inner.create_token(token, audit.as_deref()).await;
        if audit.is_some() { counted(r) } else { r }
    }
    async fn find_token(&self, hash: &str) -> Result<TokenRecord> {
        self.inner.find_token(hash).await
    }
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool> {
        self.inner.use_token(id).await
    }
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64> {
        let audit = stamp_opt(audit);
        let r = self.inner.revoke_tokens(which, audit.as_deref()).await;
        auth_changed();
        if audit.is_some() { counted(r) } else { r }
    }
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        self.inner.list_tokens(user).await
    }
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        self.inner.rate_limit_hit(key, window_start).await
    }
}
