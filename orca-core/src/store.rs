//! The Store seam: durable state and the work queue.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::Result;
use crate::ids::{ExecutionId, JobId, SystemId, UserId};
use crate::model::{
    AuditFilter, AuditRecord, Execution, Finish, Grant, Health, HostKey, Job, JobFilter, JobStatus,
    Lease, OutputChunk, Page, SealedSecret, StatusCounts, System, SystemFilter, Timestamp, User,
};

/// What a store can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCapabilities {
    /// Several engine processes may share it (leases fence across processes).
    pub multi_node: bool,
}

/// A request to claim pending executions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The claiming worker (node) name; becomes the lease owner.
    pub worker: String,
    /// At most this many.
    pub limit: u32,
    /// Lease length; the worker must heartbeat before it runs out.
    pub lease_for: Duration,
    /// At most this many running executions per system, across all jobs and nodes.
    pub per_system: Option<u32>,
}

/// A claimed execution with what is needed to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The execution, now `running`, with its lease.
    pub execution: Execution,
    /// Its lease (same as `execution.lease`).
    pub lease: Lease,
    /// Its job.
    pub job: Job,
    /// Its system (credential still sealed).
    pub system: System,
    /// The `seq` its next output chunk must have (output continues across attempts).
    pub next_seq: u64,
}

/// Output chunks of one execution, written under its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputBatch {
    /// The worker's lease.
    pub lease: Lease,
    /// Chunks with consecutive `seq`s.
    pub chunks: Vec<OutputChunk>,
}

/// An execution as stored after `finish`, and its job's status.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The execution.
    pub execution: Execution,
    /// The job's status afterwards.
    pub job_status: JobStatus,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeartbeatReport {
    /// Leases renewed, with their new expiry.
    pub renewed: Vec<Lease>,
    /// Executions whose lease this worker no longer holds: stop them, write nothing more.
    pub lost: Vec<ExecutionId>,
    /// Executions a user asked to cancel.
    pub cancel_requested: Vec<ExecutionId>,
}

/// What to cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelTarget {
    /// Every unfinished execution of a job.
    Job(JobId),
    /// One execution.
    Execution(ExecutionId),
}

/// What a cancel did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelReport {
    /// Pending executions now `cancelled` (they never start).
    pub cancelled: Vec<ExecutionId>,
    /// Running executions marked `cancel_requested`; their workers must stop them.
    pub signalled: Vec<ExecutionId>,
    /// Unfinished executions of the job left alone because their systems are outside the
    /// caller's scope (set by the facade; stores leave it 0).
    pub left_alone: u64,
}

/// The kind of an authentication token record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A rotating refresh token.
    Refresh,
    /// A long-lived API token for automation.
    Api,
}

/// A stored authentication token (only its hash is kept).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// Owner.
    pub user_id: UserId,
    /// Kind.
    pub kind: TokenKind,
    /// Rotation family (refresh tokens).
    pub family: Option<uuid::Uuid>,
    /// Hash of the secret (hex SHA-256 or stronger); unique.
    pub hash: String,
    /// A name (API tokens).
    pub name: Option<String>,
    /// Scopes / permissions the token is limited to (free-form strings).
    pub scopes: Vec<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Expires.
    pub expires_at: Option<Timestamp>,
    /// When it was used (refresh tokens are single-use).
    pub used_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// Which tokens to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeTokens {
    /// One token.
    Id(uuid::Uuid),
    /// A refresh-token family.
    Family(uuid::Uuid),
    /// Every token of a user.
    User(UserId),
}

/// Durable state and the work queue.
///
/// # Contract
/// - Every mutating operation that takes an [`AuditRecord`] writes it in the same transaction:
///   both or neither.
/// - Unique keys (system name, user name, token hash) answer `AlreadyExists`; missing rows
///   answer `NotFound`.
/// - Execution transitions follow [`crate::model::ExecutionStatus::can_become`]; an illegal one
///   answers `Conflict` and changes nothing. Terminal states never change.
/// - `claim` is exclusive: under any concurrency, an execution is handed to one worker at a
///   time, only if `pending`, `not_before <= now`, its job's `concurrency` and the request's
///   `per_system` limit allow. Oldest first.
/// - Every worker write (`append_output`, `heartbeat`, `finish`) carries the lease; a lease
///   that is not current (expired and rescued, or re-claimed) answers `LeaseLost` and writes
///   nothing.
/// - `rescue_expired` turns running executions whose lease expired into `lost` (or re-queues
///   them when their job allows it and they produced no output).
/// - Output chunks of an execution are kept in `seq` order; `read_output` returns them in order.
/// - Each job's `status` is kept equal to [`crate::model::JobStatus::derive`] of its executions.
/// - Times come from the store's injected [`crate::Clock`].
#[async_trait]
pub trait Store: Debug + Send + Sync + 'static {
    /// What it can do.
    fn capabilities(&self) -> StoreCapabilities;

    // ----- systems -----
    /// Insert a system.
    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()>;
    /// Replace a system's fields (by id; name included).
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()>;
    /// Delete a system and its host keys. `Conflict` while it has pending or running
    /// executions; past executions keep its id.
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()>;
    /// A system by id.
    async fn get_system(&self, id: SystemId) -> Result<System>;
    /// A system by name.
    async fn find_system(&self, name: &str) -> Result<System>;
    /// Systems matching `filter`, by name.
    async fn list_systems(&self, filter: &SystemFilter, page: Page) -> Result<Vec<System>>;
    /// Record a probe result.
    async fn record_health(&self, id: SystemId, health: &Health) -> Result<()>;
    /// Up to `limit` systems whose credential is sealed under a key other than `key_id`.
    async fn list_sealed_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>>;
    /// Replace a sealed credential if it is still `old` (compare-and-swap). Returns whether it did.
    async fn reseal(&self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool>;

    // ----- host keys -----
    /// Pinned keys of a system.
    async fn list_host_keys(&self, system: SystemId) -> Result<Vec<HostKey>>;
    /// Pin `key` if the system has no key pinned yet. Returns the keys pinned afterwards
    /// (exactly one winner when callers race). The audit record is written only if it pinned.
    async fn pin_host_key_if_none(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>>;
    /// Replace all pinned keys of a system with `keys`.
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()>;

    // ----- jobs and executions -----
    /// Insert a job and all its executions.
    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()>;
    /// A job by id.
    async fn get_job(&self, id: JobId) -> Result<Job>;
    /// Jobs matching `filter`, newest first.
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>>;
    /// How many executions of a job are in each state.
    async fn job_counts(&self, id: JobId) -> Result<StatusCounts>;
    /// A job's executions, oldest first.
    async fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>>;
    /// An execution by id.
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution>;
    /// Cancel a job or an execution: pending ones become `cancelled`, running ones are marked
    /// `cancel_requested`. Ended ones are left alone.
    async fn cancel(&self, target: CancelTarget, audit: &AuditRecord) -> Result<CancelReport>;

    // ----- queue -----
    /// Claim pending executions (see the contract).
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>>;
    /// Renew leases by `extend` from now. Reports lost leases and requested cancels.
    async fn heartbeat(&self, leases: &[Lease], extend: Duration) -> Result<HeartbeatReport>;
    /// Append output chunks of several executions in one go (their `seq`s continue each
    /// execution's output without gaps). The outer error is an infrastructure failure; each
    /// item has its own result (`LeaseLost`, `Conflict` for a seq gap...), and a failed item
    /// writes nothing.
    async fn append_output(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>>;
    /// End executions (or re-queue them with `Finish::retry`), in one go. Each item has its own
    /// result: the execution as stored and its job's status afterwards.
    async fn finish(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>>;
    /// Turn up to `limit` expired leases into `lost` (or re-queue); returns them as stored.
    async fn rescue_expired(&self, limit: u32) -> Result<Vec<Execution>>;
    /// Up to `limit` chunks of an execution with `seq >= from`, in order.
    async fn read_output(&self, id: ExecutionId, from: u64, limit: u32)
    -> Result<Vec<OutputChunk>>;

    // ----- audit -----
    /// Append an audit record on its own.
    async fn append_audit(&self, record: &AuditRecord) -> Result<()>;
    /// Audit records matching `filter`, newest first.
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>>;

    // ----- users, grants, tokens -----
    /// Insert a user.
    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()>;
    /// Replace a user's fields (by id).
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()>;
    /// A user by id.
    async fn get_user(&self, id: UserId) -> Result<User>;
    /// A user by name.
    async fn find_user(&self, username: &str) -> Result<User>;
    /// Users by name.
    async fn list_users(&self, page: Page) -> Result<Vec<User>>;
    /// A user's grants.
    async fn list_grants(&self, user: UserId) -> Result<Vec<Grant>>;
    /// Replace a user's grants.
    async fn set_grants(&self, user: UserId, grants: &[Grant], audit: &AuditRecord) -> Result<()>;
    /// Store a token.
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()>;
    /// A token by its hash.
    async fn find_token(&self, hash: &str) -> Result<TokenRecord>;
    /// Mark a token used if it is neither used nor revoked (single use). Returns whether it did.
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool>;
    /// Revoke tokens; returns how many were newly revoked.
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64>;
    /// A user's tokens.
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>>;
    /// Count one hit for `key` in the fixed window starting at `window_start`; returns the
    /// count so far in that window (for rate limits shared by all nodes).
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64>;
}

/// A shared store.
pub type DynStore = dyn Store;

/// Conveniences over [`Store`] for single items.
#[async_trait]
pub trait StoreExt: Store {
    /// Finish one execution; its own error becomes the error.
    async fn finish_one(&self, lease: &Lease, finish: &Finish) -> Result<Finished> {
        let mut v = self.finish(&[(lease.clone(), finish.clone())]).await?;
        v.pop()
            .unwrap_or_else(|| Err(crate::Error::unexpected("store returned no result")))
    }
    /// Append output of one execution; its own error becomes the error.
    async fn append_output_one(&self, lease: &Lease, chunks: Vec<OutputChunk>) -> Result<()> {
        let mut v = self
            .append_output(&[OutputBatch {
                lease: lease.clone(),
                chunks,
            }])
            .await?;
        v.pop()
            .unwrap_or_else(|| Err(crate::Error::unexpected("store returned no result")))
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
