//! Jobs and their executions, as the API sees them; cancel.

use async_trait::async_trait;

use super::{CancelReport, CancelTarget};
use crate::Result;
use crate::ids::{ExecutionId, JobId};
use crate::model::{AuditRecord, Execution, Job, JobFilter, Page, StatusCounts};

/// Jobs and their executions, as the API sees them; cancel.
///
/// # Contract
/// - Every mutation that takes an [`AuditRecord`] writes it in the same transaction: both or
///   neither. A missing job or execution answers `NotFound`.
/// - Execution transitions follow [`crate::model::ExecutionStatus::can_become`]; an illegal one
///   answers `Conflict` and changes nothing. Terminal states never change (a cancel leaves
///   ended executions alone).
/// - Each job's `status` is kept equal to [`crate::model::JobStatus::derive`] of its executions
///   (here and in every [`super::QueueStore`] write).
#[async_trait]
pub trait JobStore: Send + Sync {
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
}
