//! The Store seam: durable state and the work queue.
//!
//! A backend implements one small trait per area, each in a file of the same name
//! ([`SystemStore`], [`JobStore`], [`QueueStore`], [`OutputStore`], [`AuditStore`],
//! [`UserStore`]), and the umbrella [`Store`] that everything holds as `Arc<dyn Store>`. A new
//! area (saved jobs, schedules, webhooks...) adds a trait here and a supertrait of [`Store`]
//! instead of growing one list (docs/decisions/0005-store-split.md).
//!
//! Methods of every area trait can be called on `dyn Store` (and on any `S: Store`) without
//! importing the area traits; code that calls them on a concrete store type imports
//! [`prelude`]: `use orca_core::store::prelude::*;`.

mod audit;
mod jobs;
mod output;
mod queue;
mod systems;
mod users;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::Result;
use crate::ids::{ExecutionId, JobId, UserId};
use crate::model::{Execution, Finish, Job, JobStatus, Lease, OutputChunk, System, Timestamp};

pub use audit::AuditStore;
pub use jobs::JobStore;
pub use output::OutputStore;
pub use queue::QueueStore;
pub use systems::SystemStore;
pub use users::UserStore;

/// The area traits, [`Store`] and [`StoreExt`], for calling store methods on a concrete store
/// type: `use orca_core::store::prelude::*;`.
pub mod prelude {
    pub use super::{
        AuditStore, JobStore, OutputStore, QueueStore, Store, StoreExt, SystemStore, UserStore,
    };
}

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

/// Durable state and the work queue: every area trait, and what the store can do.
///
/// # Contract
/// What holds for every area (each area trait adds its own):
/// - Every mutating operation that takes an [`AuditRecord`](crate::model::AuditRecord) writes
///   it in the same transaction: both or neither.
/// - Unique keys (system name, user name, token hash) answer `AlreadyExists`; missing rows
///   answer `NotFound`.
/// - Times come from the store's injected [`crate::Clock`].
///
/// The areas: [`SystemStore`] (systems, credentials, host keys), [`JobStore`] (jobs,
/// executions, cancel), [`QueueStore`] (the engine's claim, heartbeat, writes under a lease and
/// rescue), [`OutputStore`] (reading output), [`AuditStore`] and [`UserStore`] (users, grants,
/// tokens, rate limits).
pub trait Store:
    SystemStore
    + JobStore
    + QueueStore
    + OutputStore
    + AuditStore
    + UserStore
    + Debug
    + Send
    + Sync
    + 'static
{
    /// What it can do.
    fn capabilities(&self) -> StoreCapabilities;
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
