//! Jobs, executions and cancel.

use orca_core::ids::{ExecutionId, JobId};
use orca_core::model::{
    AuditRecord, Execution, ExecutionStatus, Job, JobFilter, JobStatus, Page, StatusCounts,
};
use orca_core::{CancelReport, CancelTarget, Error, JobStore, Result, async_trait};
use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite};
use uuid::Uuid;

use super::SqliteStore;
use super::error::db_err;
use super::inline;
use super::rows::{self, i, to_json, us};
use super::tx::{self, CHUNK, Deltas};

/// A job by id (see [`get`]).
pub(crate) const GET_JOB: &str = concat!("SELECT ", rows::job_cols!(), " FROM jobs WHERE id = ?");
/// A job's counts by id (see [`counts`]).
pub(crate) const JOB_COUNTS: &str =
    concat!("SELECT ", rows::count_cols!(), " FROM jobs WHERE id = ?");
/// An execution by id (see [`get_execution`]).
pub(crate) const GET_EXECUTION: &str = concat!(
    "SELECT ",
    rows::exec_cols!(),
    " FROM executions WHERE id = ?"
);

fn job_missing(id: JobId) -> Error {
    Error::not_found(format!("job {id} not found")).with_job(id)
}

pub(crate) fn execution_missing(id: ExecutionId) -> Error {
    Error::not_found(format!("execution {id} not found")).with_execution(id)
}

async fn job_exists(conn: &mut SqliteConnection, id: JobId) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = ?")
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(db_err)?;
    found.map(|_| ()).ok_or_else(|| job_missing(id))
}

pub(crate) async fn create(
    s: &SqliteStore,
    job: &Job,
    executions: &[Execution],
    audit: &AuditRecord,
) -> Result<()> {
    if let Some(e) = executions.iter().find(|e| e.job_id != job.id) {
        return Err(Error::invalid(format!(
            "execution {} belongs to job {}, not to job {}",
            e.id, e.job_id, job.id
        )));
    }
    let counts = tx::count(executions.iter().map(|e| e.status));
    let status = JobStatus::derive(&counts);
    let mut tx = tx::begin(s).await?;
    sqlx::query(
        "INSERT INTO jobs (id, name, command, created_by, created_by_id, targets, options, \
         concurrency, requeue_lost, retries, status, created_at, updated_at, n_pending, \
         n_running, n_completed, n_failed, n_timeout, n_cancelled, n_lost) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(job.id.0)
    .bind(&job.name)
    .bind(&job.command)
    .bind(&job.created_by)
    .bind(job.created_by_id.map(|u| u.0))
    .bind(to_json(&job.targets)?)
    .bind(to_json(&job.options)?)
    .bind(job.options.concurrency.map(i64::from))
    .bind(job.options.requeue_lost)
    .bind(i64::from(job.options.retries))
    .bind(status.as_str())
    .bind(us(job.created_at))
    .bind(us(job.updated_at))
    .bind(i(counts.pending))
    .bind(i(counts.running))
    .bind(i(counts.completed))
    .bind(i(counts.failed))
    .bind(i(counts.timeout))
    .bind(i(counts.cancelled))
    .bind(i(counts.lost))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    for part in executions.chunks(CHUNK) {
        insert_executions(&mut tx, part).await?;
    }
    if !executions.is_empty() {
        let unknown: Option<Uuid> = sqlx::query_scalar(
            "SELECT e.system_id FROM executions e WHERE e.job_id = ? \
             AND NOT EXISTS (SELECT 1 FROM systems s WHERE s.id = e.system_id) LIMIT 1",
        )
        .bind(job.id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Some(sys) = unknown {
            return Err(Error::not_found(format!(
                "job {} targets system {sys}, which does not exist",
                job.id
            ))
            .with_job(job.id));
        }
        let mut running = Deltas::default();
        for e in executions
            .iter()
            .filter(|e| e.status == ExecutionStatus::Running)
        {
            running.system_running(e.system_id.0, 1);
        }
        running.apply(&mut tx, us(s.now())).await?;
    }
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

async fn insert_executions(conn: &mut SqliteConnection, part: &[Execution]) -> Result<()> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO executions (id, job_id, system_id, attempt, status, created_at, not_before, \
         started_at, completed_at, exit_code, signal, error, lease_owner, lease_token, \
         lease_expires_at, cancel_requested, output_bytes, output_dropped) ",
    );
    q.push_values(part, |mut b, e| {
        let lease = e.lease.as_ref();
        b.push_bind(e.id.0)
            .push_bind(e.job_id.0)
            .push_bind(e.system_id.0)
            .push_bind(i64::from(e.attempt))
            .push_bind(e.status.as_str())
            .push_bind(us(e.created_at))
            .push_bind(us(e.not_before))
            .push_bind(e.started_at.map(us))
            .push_bind(e.completed_at.map(us))
            .push_bind(e.exit_code)
            .push_bind(e.signal.clone())
            .push_bind(e.error.clone())
            .push_bind(lease.map(|l| l.owner.clone()))
            .push_bind(lease.map(|l| l.token.0))
            .push_bind(lease.map(|l| us(l.expires_at)))
            .push_bind(e.cancel_requested)
            .push_bind(i(e.output_bytes))
            .push_bind(i(e.output_dropped));
    });
    q.build().execute(conn).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn get(s: &SqliteStore, id: JobId) -> Result<Job> {
    inline::one(s, GET_JOB, id.0)
        .await?
        .ok_or_else(|| job_missing(id))
}

pub(crate) async fn list(s: &SqliteStore, f: &JobFilter, page: Page) -> Result<Vec<Job>> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {} FROM jobs WHERE 1", rows::JOB_COLS));
    if let Some(st) = f.status {
        q.push(" AND status = ").push_bind(st.as_str());
    }
    if let Some(c) = &f.created_by {
        q.push(" AND created_by = ").push_bind(c.clone());
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(page.limit));
    q.push(" OFFSET ").push_bind(i(page.offset));
    let found = q.build().fetch_all(&s.reader).await.map_err(db_err)?;
    found.iter().map(rows::job).collect()
}

pub(crate) async fn counts(s: &SqliteStore, id: JobId) -> Result<StatusCounts> {
    inline::one(s, JOB_COUNTS, id.0)
        .await?
        .ok_or_else(|| job_missing(id))
}

pub(crate) async fn list_executions(
    s: &SqliteStore,
    job: JobId,
    page: Page,
) -> Result<Vec<Execution>> {
    let mut conn = s.reader.acquire().await.map_err(db_err)?;
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM executions WHERE job_id = ? ORDER BY created_at, id LIMIT ? OFFSET ?",
        rows::EXEC_COLS
    )))
    .bind(job.0)
    .bind(i64::from(page.limit))
    .bind(i(page.offset))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    if found.is_empty() {
        job_exists(&mut conn, job).await?;
    }
    found.iter().map(rows::execution).collect()
}

pub(crate) async fn get_execution(s: &SqliteStore, id: ExecutionId) -> Result<Execution> {
    inline::one(s, GET_EXECUTION, id.0)
        .await?
        .ok_or_else(|| execution_missing(id))
}

pub(crate) async fn cancel(
    s: &SqliteStore,
    target: CancelTarget,
    audit: &AuditRecord,
) -> Result<CancelReport> {
    let now = us(s.now());
    let mut tx = tx::begin(s).await?;
    let (filter, id) = match target {
        CancelTarget::Job(j) => {
            job_exists(&mut tx, j).await?;
            ("job_id", j.0)
        }
        CancelTarget::Execution(e) => {
            let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM executions WHERE id = ?")
                .bind(e.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            found.ok_or_else(|| execution_missing(e))?;
            ("id", e.0)
        }
    };
    let cancelled: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE executions SET status = 'cancelled', completed_at = ? \
         WHERE {filter} = ? AND status = 'pending' RETURNING id, job_id, system_id"
    )))
    .bind(now)
    .bind(id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let signalled: Vec<Uuid> = sqlx::query_scalar(AssertSqlSafe(format!(
        "UPDATE executions SET cancel_requested = 1 \
         WHERE {filter} = ? AND status = 'running' RETURNING id"
    )))
    .bind(id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let mut deltas = Deltas::default();
    for (_, job, system) in &cancelled {
        deltas.moved(
            *job,
            *system,
            ExecutionStatus::Pending,
            ExecutionStatus::Cancelled,
        );
    }
    deltas.apply(&mut tx, now).await?;
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)?;
    let mut report = CancelReport {
        cancelled: cancelled
            .into_iter()
            .map(|(e, _, _)| ExecutionId(e))
            .collect(),
        signalled: signalled.into_iter().map(ExecutionId).collect(),
        left_alone: 0,
    };
    report.cancelled.sort();
    report.signalled.sort();
    Ok(report)
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        create(self, job, executions, audit).await
    }
    async fn get_job(&self, id: JobId) -> Result<Job> {
        get(self, id).await
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        list(self, filter, page).await
    }
    async fn job_counts(&self, id: JobId) -> Result<StatusCounts> {
        counts(self, id).await
    }
    async fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        list_executions(self, job, page).await
    }
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution> {
        get_execution(self, id).await
    }
    async fn cancel(&self, target: CancelTarget, audit: &AuditRecord) -> Result<CancelReport> {
        cancel(self, target, audit).await
    }
}
