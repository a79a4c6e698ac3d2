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
//! Every change of a user, of a user's grants or of tokens that passes through the layer
//! (`update_user`, `set_grants`, `revoke_tokens`), after the store returned (committed):
//! - ends the reuse of cached callers by the [`crate::AppState`]s built over this layer
//!   (their shared epoch), so logout, disabling, role and password changes take effect on this
//!   node's next request;
//! - publishes [`Event::AuthChanged`] on the event bus of those `AppState`s, so other nodes
//!   (PostgreSQL `LISTEN/NOTIFY`) drop their cached callers too. See [`crate::auth::cache`].
//!
//! The layer is built before the [`orca_core::Orca`] that holds the bus, and the `AppState`
//! only sees it as `Arc<dyn Store>`: [`AppState::new`](crate::AppState::new) finds the layer by
//! identity (the address of the `Arc`'s value) in a registry of live layers and lends it the
//! Orca's bus ([`AuditContextLayer::announce_auth_changes`] does the same for other callers).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use orca_core::async_trait;
use orca_core::ids::{ExecutionId, JobId, SystemId, UserId};
use orca_core::model::{
    AuditFilter, AuditRecord, Execution, Finish, Grant, Health, HostKey, Job, JobFilter, Lease,
    OutputChunk, Page, SealedSecret, StatusCounts, System, SystemFilter, Timestamp, User,
};
use orca_core::store::prelude::*;
use orca_core::{
    CancelReport, CancelTarget, Claim, ClaimRequest, Error, Event, EventBus, Finished,
    HeartbeatReport, OutputBatch, Result, RevokeTokens, Store, StoreCapabilities, TokenRecord,
};

use crate::auth::cache::AuthEpoch;
use crate::context;

/// Stamps audit records written during a request with its id and client address.
#[derive(Debug)]
pub struct AuditContextLayer {
    inner: Arc<dyn Store>,
    auth: Arc<AuthLink>,
}

/// What a layer shares with the [`crate::AppState`]s built over it: the epoch of their
/// credential caches, and the buses on which to announce changes of users, grants and tokens.
#[derive(Debug, Default)]
pub(crate) struct AuthLink {
    pub(crate) epoch: Arc<AuthEpoch>,
    buses: Mutex<Vec<Weak<dyn EventBus>>>,
}

impl AuthLink {
    fn buses(&self) -> MutexGuard<'_, Vec<Weak<dyn EventBus>>> {
        self.buses.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Announce on `bus` from now on (once per bus).
    pub(crate) fn announce_on(&self, bus: &Arc<dyn EventBus>) {
        let mut buses = self.buses();
        buses.retain(|b| b.strong_count() > 0);
        if !buses
            .iter()
            .any(|b| std::ptr::addr_eq(b.as_ptr(), Arc::as_ptr(bus)))
        {
            buses.push(Arc::downgrade(bus));
        }
    }

    /// Users, grants or tokens changed (call after the write, whatever it returned: a write
    /// that reports an error may still have committed). This node's caches stop reusing what
    /// they read before, at once; other nodes hear it on the bus.
    async fn changed(&self, user_id: Option<UserId>) {
        self.epoch.bump();
        let buses: Vec<Arc<dyn EventBus>> = self.buses().iter().filter_map(Weak::upgrade).collect();
        for bus in buses {
            if let Err(e) = bus.publish(vec![Event::AuthChanged { user_id }]).await {
                tracing::warn!(
                    request_id = %context::request_id(),
                    error = %e,
                    "could not announce a change of users, grants or tokens on the event bus; \
                     other nodes see it within http.auth.cache_ttl_ms"
                );
            }
        }
    }
}

/// A layer (as the `dyn Store` it is handed out as) and its link.
type Registered = (Weak<dyn Store>, Weak<AuthLink>);

/// The live layers, so an `AppState` can find the one it is built over.
static LAYERS: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

fn layers() -> MutexGuard<'static, Vec<Registered>> {
    LAYERS.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuditContextLayer {
    /// Wrap `inner`.
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        let auth = Arc::new(AuthLink::default());
        let layer: Arc<dyn Store> = Arc::new(AuditContextLayer {
            inner,
            auth: auth.clone(),
        });
        let mut all = layers();
        all.retain(|(l, _)| l.strong_count() > 0);
        all.push((Arc::downgrade(&layer), Arc::downgrade(&auth)));
        layer
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Announce every change of users, grants or tokens written through `store` (which must
    /// be an [`AuditContextLayer`] made by [`Self::wrap`]) on `bus` as
    /// [`Event::AuthChanged`], so the HTTP credential caches of every node drop what they
    /// read before. [`crate::AppState::new`] does this with the Orca's bus; call it for an
    /// Orca over a layer that changes users or tokens without serving HTTP (an admin command
    /// beside running nodes).
    pub fn announce_auth_changes(store: &Arc<dyn Store>, bus: &Arc<dyn EventBus>) -> Result<()> {
        link_of(store)
            .ok_or_else(|| {
                Error::invalid(
                    "changes of users and tokens are announced only by a store wrapped in \
                     orca_http::AuditContextLayer::wrap(store)",
                )
            })?
            .announce_on(bus);
        Ok(())
    }
}

/// The link of `store` if it is a live [`AuditContextLayer`].
pub(crate) fn link_of(store: &Arc<dyn Store>) -> Option<Arc<AuthLink>> {
    // `store` is alive, and a `Weak` keeps its allocation, so an entry at the same address
    // that is still alive is this very layer.
    layers()
        .iter()
        .find(|(l, _)| std::ptr::addr_eq(l.as_ptr(), Arc::as_ptr(store)) && l.strong_count() > 0)
        .and_then(|(_, a)| a.upgrade())
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

impl Store for AuditContextLayer {
    fn capabilities(&self) -> StoreCapabilities {
        self.inner.capabilities()
    }
}

#[async_trait]
impl SystemStore for AuditContextLayer {
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
}

#[async_trait]
impl JobStore for AuditContextLayer {
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
}

#[async_trait]
impl QueueStore for AuditContextLayer {
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
impl OutputStore for AuditContextLayer {
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
impl AuditStore for AuditContextLayer {
    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        counted(self.inner.append_audit(&stamp(record)).await)
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        self.inner.list_audit(filter, page).await
    }
}

#[async_trait]
impl UserStore for AuditContextLayer {
    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        counted(self.inner.create_user(user, &stamp(audit)).await)
    }
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        let r = counted(self.inner.update_user(user, &stamp(audit)).await);
        self.auth.changed(Some(user.id)).await;
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
        self.auth.changed(Some(user)).await;
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
        let user_id = match which {
            RevokeTokens::User(u) => Some(u),
            RevokeTokens::Id(_) | RevokeTokens::Family(_) => None,
        };
        let r = self.inner.revoke_tokens(which, audit.as_deref()).await;
        self.auth.changed(user_id).await;
        if audit.is_some() { counted(r) } else { r }
    }
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        self.inner.list_tokens(user).await
    }
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        self.inner.rate_limit_hit(key, window_start).await
    }
}
