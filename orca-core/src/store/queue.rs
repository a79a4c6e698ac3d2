//! The work queue of the engine: claim, heartbeat, writes under a lease, rescue.

use std::time::Duration;

use async_trait::async_trait;

use super::{Claim, ClaimRequest, Finished, HeartbeatReport, OutputBatch};
use crate::Result;
use crate::model::{Execution, Finish, Lease};

/// The work queue of the engine: claim, heartbeat, writes under a lease, rescue.
///
/// # Contract
/// - `claim` is exclusive: under any concurrency, an execution is handed to one worker at a
///   time, only if `pending`, `not_before <= now`, its job's `concurrency` and the request's
///   `per_system` limit allow. Oldest first.
/// - Every worker write (`append_output`, `heartbeat`, `finish`) carries the lease; a lease
///   that is not current (expired and rescued, or re-claimed) answers `LeaseLost` and writes
///   nothing.
/// - `rescue_expired` turns running executions whose lease expired into `lost` (or re-queues
///   them when their job allows it and they produced no output).
/// - Execution transitions follow [`crate::model::ExecutionStatus::can_become`]; an illegal one
///   answers `Conflict` and changes nothing. Terminal states never change.
/// - Each job's `status` is kept equal to [`crate::model::JobStatus::derive`] of its executions.
#[async_trait]
pub trait QueueStore: Send + Sync {
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
}
