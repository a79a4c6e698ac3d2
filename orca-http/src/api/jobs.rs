//! `/api/v1/jobs`: submit, list, get, cancel, retry.

use std::collections::BTreeMap;

use orca_core::ids::JobId;
use orca_core::model::{
    Execution, Job, JobFilter, JobOptions, JobSpec, StatusCounts, Targets, Timestamp,
};
use orca_core::{CancelReport, Submitted};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::auth::Created;
use super::enums::{ExecutionStatus, JobStatus, Shell};
use super::text::{Text, string_map, strings};
use super::{BearerAuth, Tag, list_type, page};
use crate::error::ApiResult;
use crate::state::AppState;

/// Job operations.
pub(crate) struct JobsApi(pub AppState);

/// Which systems a job runs on.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Targets", deny_unknown_fields)]
pub(crate) struct TargetsDto {
    /// System names or ids.
    #[oai(default, validator(max_items = 10000))]
    pub systems: Vec<Text>,
    /// Tags: every active system with any of them.
    #[oai(default, validator(max_items = 64))]
    pub tags: Vec<Text>,
}

/// How a job runs.
#[derive(Debug, Clone, Object)]
#[oai(rename = "JobOptions", deny_unknown_fields)]
pub(crate) struct OptionsInput {
    /// At most this many executions of the job at once.
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    pub concurrency: Option<u32>,
    /// Per-execution timeout in seconds.
    #[oai(validator(minimum(value = "1"), maximum(value = "2592000")))]
    pub timeout_seconds: Option<u64>,
    /// Retries of a failed execution (0-100).
    #[oai(validator(minimum(value = "0"), maximum(value = "100")))]
    pub retries: Option<u32>,
    /// Whether a non-zero exit is retried too.
    pub retry_on_nonzero_exit: Option<bool>,
    /// Whether an execution whose worker died may be re-queued (only if nothing reached the host).
    pub requeue_lost: Option<bool>,
    /// The shell (default: the target's).
    pub shell: Option<Shell>,
    /// Extra environment variables. Their values are not returned by the API.
    pub env: Option<BTreeMap<String, Text>>,
}

/// A job to submit.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct JobRequest {
    /// A name (default: the command's first line).
    #[oai(validator(max_length = 255))]
    pub name: Option<Text>,
    /// The command.
    #[oai(validator(min_length = 1, max_length = 65536))]
    pub command: Text,
    /// The targets.
    pub targets: TargetsDto,
    /// Options.
    pub options: Option<OptionsInput>,
}

/// Options of a submitted job (environment variable names only).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct JobOptionsView {
    /// Concurrency limit.
    pub concurrency: Option<u32>,
    /// Timeout in seconds.
    pub timeout_seconds: Option<u64>,
    /// Retries.
    pub retries: u32,
    /// Whether a non-zero exit is retried.
    pub retry_on_nonzero_exit: bool,
    /// Whether lost executions may be re-queued.
    pub requeue_lost: bool,
    /// Shell.
    pub shell: Shell,
    /// Names of the extra environment variables.
    pub env_names: Vec<String>,
}

impl From<&JobOptions> for JobOptionsView {
    fn from(o: &JobOptions) -> Self {
        JobOptionsView {
            concurrency: o.concurrency,
            timeout_seconds: o.timeout_seconds,
            retries: o.retries,
            retry_on_nonzero_exit: o.retry_on_nonzero_exit,
            requeue_lost: o.requeue_lost,
            shell: o.shell.into(),
            env_names: o.env.keys().cloned().collect(),
        }
    }
}

/// How many executions of a job are in each state.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct Counts {
    /// Pending.
    pub pending: u64,
    /// Running.
    pub running: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// Timed out.
    pub timeout: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Lost.
    pub lost: u64,
}

impl From<StatusCounts> for Counts {
    fn from(c: StatusCounts) -> Self {
        Counts {
            pending: c.pending,
            running: c.running,
            completed: c.completed,
            failed: c.failed,
            timeout: c.timeout,
            cancelled: c.cancelled,
            lost: c.lost,
        }
    }
}

/// A job.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Job", skip_serializing_if_is_none)]
pub(crate) struct JobDto {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Command.
    pub command: String,
    /// Who submitted it.
    pub created_by: String,
    /// Targets as given.
    pub targets: TargetsDto,
    /// Options.
    pub options: JobOptionsView,
    /// Status.
    pub status: JobStatus,
    /// Executions by state (on `GET /jobs/{id}`), counting only those the caller may see.
    pub counts: Option<Counts>,
    /// Executions on systems outside the caller's scope: not shown, not counted (on
    /// `GET /jobs/{id}`; absent for admins).
    pub hidden_executions: Option<u64>,
    /// Created.
    pub created_at: Timestamp,
    /// Last status change.
    pub updated_at: Timestamp,
}

impl From<Job> for JobDto {
    fn from(j: Job) -> Self {
        JobDto {
            id: j.id.as_uuid(),
            options: (&j.options).into(),
            name: j.name,
            command: j.command,
            created_by: j.created_by,
            targets: TargetsDto {
                systems: j.targets.systems.into_iter().map(Text).collect(),
                tags: j.targets.tags.into_iter().map(Text).collect(),
            },
            status: j.status.into(),
            counts: None,
            hidden_executions: None,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

/// One run of a job on one system.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Execution", skip_serializing_if_is_none)]
pub(crate) struct ExecutionDto {
    /// Id.
    pub id: uuid::Uuid,
    /// The job.
    pub job_id: uuid::Uuid,
    /// The system.
    pub system_id: uuid::Uuid,
    /// Attempt, from 1.
    pub attempt: u32,
    /// Status.
    pub status: ExecutionStatus,
    /// Created.
    pub created_at: Timestamp,
    /// When it (last) started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal name, if killed by one.
    pub signal: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// A cancel was asked while it ran.
    pub cancel_requested: bool,
    /// Output bytes kept.
    pub output_bytes: u64,
    /// Output bytes dropped by the output cap.
    pub output_dropped: u64,
}

impl From<Execution> for ExecutionDto {
    fn from(e: Execution) -> Self {
        ExecutionDto {
            id: e.id.as_uuid(),
            job_id: e.job_id.as_uuid(),
            system_id: e.system_id.as_uuid(),
            attempt: e.attempt,
            status: e.status.into(),
            created_at: e.created_at,
            started_at: e.started_at,
            completed_at: e.completed_at,
            exit_code: e.exit_code,
            signal: e.signal,
            error: e.error,
            cancel_requested: e.cancel_requested,
            output_bytes: e.output_bytes,
            output_dropped: e.output_dropped,
        }
    }
}

/// A submitted job with its executions.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct SubmittedJob {
    /// The job.
    pub job: JobDto,
    /// One execution per target system.
    pub executions: Vec<ExecutionDto>,
    /// On a retry: executions that did not complete on systems outside the caller's scope,
    /// left alone (absent when none).
    pub left_alone: Option<u64>,
}

impl From<Submitted> for SubmittedJob {
    fn from(s: Submitted) -> Self {
        SubmittedJob {
            job: s.job.into(),
            executions: s.executions.into_iter().map(Into::into).collect(),
            left_alone: (s.left_alone > 0).then_some(s.left_alone),
        }
    }
}

/// What a cancel did.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct CancelResult {
    /// Pending executions now cancelled.
    pub cancelled: Vec<uuid::Uuid>,
    /// Running executions told to stop.
    pub signalled: Vec<uuid::Uuid>,
    /// Unfinished executions on systems outside the caller's scope, left alone.
    pub left_alone: u64,
}

impl From<CancelReport> for CancelResult {
    fn from(r: CancelReport) -> Self {
        CancelResult {
            cancelled: r.cancelled.iter().map(|i| i.as_uuid()).collect(),
            signalled: r.signalled.iter().map(|i| i.as_uuid()).collect(),
            left_alone: r.left_alone,
        }
    }
}

list_type!(JobList, JobDto, "A page of jobs, newest first.");
list_type!(
    ExecutionList,
    ExecutionDto,
    "A page of executions, oldest first."
);

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Jobs")]
impl JobsApi {
    /// Submit a job
    ///
    /// Resolves the targets to the systems the caller may run on and queues one execution per
    /// system.
    #[oai(path = "/jobs", method = "post", operation_id = "submit_job")]
    async fn submit(
        &self,
        auth: BearerAuth,
        body: Json<JobRequest>,
    ) -> ApiResult<Created<SubmittedJob>> {
        let caller = self.0.caller(&auth).await?;
        let b = body.0;
        let mut options = JobOptions::default();
        if let Some(o) = b.options {
            options.concurrency = o.concurrency;
            options.timeout_seconds = o.timeout_seconds;
            options.retries = o.retries.unwrap_or(0);
            options.retry_on_nonzero_exit = o.retry_on_nonzero_exit.unwrap_or(false);
            options.requeue_lost = o.requeue_lost.unwrap_or(false);
            options.shell = o.shell.map(Into::into).unwrap_or_default();
            options.env = o.env.map(string_map).unwrap_or_default();
        }
        let spec = JobSpec {
            name: b.name.map(String::from),
            command: b.command.0,
            targets: Targets {
                systems: strings(b.targets.systems),
                tags: strings(b.targets.tags),
            },
            options,
        };
        let s = self.0.orca.submit(&caller.actor(), spec).await?;
        Ok(Created::Created(Json(s.into())))
    }

    /// List jobs
    ///
    /// Jobs the caller may see (their own, or touching systems in their grants), newest first.
    #[oai(path = "/jobs", method = "get", operation_id = "list_jobs")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Only this status.
        status: Query<Option<JobStatus>>,
        /// Only by this user name.
        #[oai(validator(max_length = 128))]
        created_by: Query<Option<String>>,
        /// Items to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
        offset: Query<Option<u64>>,
        /// Page size (1-1000).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<JobList>> {
        let caller = self.0.caller(&auth).await?;
        let p = page(offset.0, limit.0);
        let filter = JobFilter {
            status: status.0.map(Into::into),
            created_by: created_by.0,
        };
        let v = self.0.orca.list_jobs(&caller.actor(), &filter, p).await?;
        Ok(Json(JobList::new(
            v.into_iter().map(Into::into).collect(),
            p,
        )))
    }

    /// Get a job
    #[oai(path = "/jobs/:id", method = "get", operation_id = "get_job")]
    async fn get(&self, auth: BearerAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<JobDto>> {
        let caller = self.0.caller(&auth).await?;
        let s = self
            .0
            .orca
            .job_summary(&caller.actor(), JobId(id.0))
            .await?;
        let mut dto = JobDto::from(s.job);
        dto.counts = Some(s.counts.into());
        if caller.principal.role != orca_core::model::Role::Admin {
            dto.hidden_executions = Some(s.hidden_executions);
        }
        Ok(Json(dto))
    }

    /// List a job's executions
    #[oai(
        path = "/jobs/:id/executions",
        method = "get",
        operation_id = "list_job_executions"
    )]
    async fn executions(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
        /// Items to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
        offset: Query<Option<u64>>,
        /// Page size (1-1000).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<ExecutionList>> {
        let caller = self.0.caller(&auth).await?;
        let p = page(offset.0, limit.0);
        let v = self
            .0
            .orca
            .job_executions(&caller.actor(), JobId(id.0), p)
            .await?;
        Ok(Json(ExecutionList::new(
            v.into_iter().map(Into::into).collect(),
            p,
        )))
    }

    /// Cancel a job
    ///
    /// Pending executions never start; running ones are stopped. A non-admin cancels only
    /// the executions on systems in their scope (`left_alone` counts the others).
    #[oai(
        path = "/jobs/:id/cancel",
        method = "post",
        operation_id = "cancel_job"
    )]
    async fn cancel(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
    ) -> ApiResult<Json<CancelResult>> {
        let caller = self.0.caller(&auth).await?;
        Ok(Json(
            self.0
                .orca
                .cancel_job(&caller.actor(), JobId(id.0))
                .await?
                .into(),
        ))
    }

    /// Retry a job
    ///
    /// Runs the command again, as a new job, on the systems where it did not complete (for a
    /// non-admin: only those in their scope; `left_alone` counts the others).
    #[oai(path = "/jobs/:id/retry", method = "post", operation_id = "retry_job")]
    async fn retry(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
    ) -> ApiResult<Created<SubmittedJob>> {
        let caller = self.0.caller(&auth).await?;
        Ok(Created::Created(Json(
            self.0
                .orca
                .retry_job(&caller.actor(), JobId(id.0))
                .await?
                .into(),
        )))
    }
}
