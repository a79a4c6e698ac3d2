//! Jobs, their executions and the per-job counters; cancel.

use std::collections::HashMap;

use orca_core::ids::{ExecutionId, JobId};
use orca_core::model::{
    AuditRecord, Execution, ExecutionStatus, Job, JobFilter, JobStatus, Page, StatusCounts,
    Timestamp,
};
use orca_core::{CancelReport, CancelTarget, Error, JobStore, Result, async_trait};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::error::db;
use super::rows::{self, execution_cols, job_cols};
use super::{PostgresStore, insert_audit};

/// A job row locked for a counter update.
#[derive(Debug, Clone)]
pub(crate) struct LockedJob {
    pub concurrency: Option<u32>,
    pub counts: StatusCounts,
}

/// Lock the `jobs` rows of `ids` (in id order, so concurrent writers never deadlock) and read
/// their counters. Callers lock execution rows first, then jobs.
pub(crate) async fn lock_jobs(
    conn: &mut PgConnection,
    ids: &[Uuid],
    what: &'static str,
) -> Result<HashMap<Uuid, LockedJob>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rows = sqlx::query(
        "SELECT id, concurrency, n_pending, n_running, n_completed, n_failed, n_timeout,
                n_cancelled, n_lost
           FROM jobs WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db(what))?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        use sqlx::Row;
        let id: Uuid = r.try_get("id").map_err(db(what))?;
        let concurrency: Option<i32> = r.try_get("concurrency").map_err(db(what))?;
        out.insert(
            id,
            LockedJob {
                concurrency: concurrency.map(|c| c.max(0) as u32),
                counts: rows::counts(r)?,
            },
        );
    }
    Ok(out)
}

/// Move one execution from `from` to `to` in `counts`.
pub(crate) fn shift(counts: &mut StatusCounts, from: ExecutionStatus, to: ExecutionStatus) {
    let dec = |c: &mut u64| *c = c.saturating_sub(1);
    match from {
        ExecutionStatus::Pending => dec(&mut counts.pending),
        ExecutionStatus::Running => dec(&mut counts.running),
        ExecutionStatus::Completed => dec(&mut counts.completed),
        ExecutionStatus::Failed => dec(&mut counts.failed),
        ExecutionStatus::Timeout => dec(&mut counts.timeout),
        ExecutionStatus::Cancelled => dec(&mut counts.cancelled),
        ExecutionStatus::Lost => dec(&mut counts.lost),
    }
    counts.add(to, 1);
}

/// Write the counters (and derived status) of locked jobs; returns the jobs as stored.
pub(crate) async fn write_job_counts(
    conn: &mut PgConnection,
    now: Option<Timestamp>,
    jobs: &HashMap<Uuid, LockedJob>,
    what: &'static str,
) -> Result<HashMap<Uuid, Job>> {
    if jobs.is_empty() {
        return Ok(HashMap::new());
    }
    let mut ids = Vec::with_capacity(jobs.len());
    let mut cols: [Vec<i64>; 7] = Default::default();
    let mut status = Vec::with_capacity(jobs.len());
    for (id, j) in jobs {
        let c = &j.counts;
        ids.push(*id);
        for (v, n) in cols.iter_mut().zip([
            c.pending,
            c.running,
            c.completed,
            c.failed,
            c.timeout,
            c.cancelled,
            c.lost,
        ]) {
            v.push(rows::i64_of(n, "job counter")?);
        }
        status.push(JobStatus::derive(c).as_str());
    }
    let [p, r, c, f, t, x, l] = cols;
    let rows = sqlx::query(concat!(
        "UPDATE jobs j SET n_pending = u.u_p, n_running = u.u_r, n_completed = u.u_c,
                n_failed = u.u_f, n_timeout = u.u_t, n_cancelled = u.u_x, n_lost = u.u_l,
                status = u.u_status,
                updated_at = CASE WHEN j.status <> u.u_status
                                  THEN coalesce($1::timestamptz, now()) ELSE j.updated_at END
           FROM unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                       $7::bigint[], $8::bigint[], $9::bigint[], $10::text[])
                AS u(u_id, u_p, u_r, u_c, u_f, u_t, u_x, u_l, u_status)
          WHERE j.id = u.u_id
          RETURNING ",
        job_cols!()
    ))
    .bind(now)
    .bind(&ids)
    .bind(&p)
    .bind(&r)
    .bind(&c)
    .bind(&f)
    .bind(&t)
    .bind(&x)
    .bind(&l)
    .bind(&status)
    .fetch_all(&mut *conn)
    .await
    .map_err(db(what))?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let j = rows::job(r)?;
        out.insert(j.id.0, j);
    }
    Ok(out)
}

impl PostgresStore {
    pub(crate) async fn create_job_(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        let mut counts = StatusCounts::default();
        let n = executions.len();
        let mut id = Vec::with_capacity(n);
        let mut system = Vec::with_capacity(n);
        let mut attempt = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut created = Vec::with_capacity(n);
        let mut not_before = Vec::with_capacity(n);
        let mut started = Vec::with_capacity(n);
        let mut completed = Vec::with_capacity(n);
        let mut exit_code = Vec::with_capacity(n);
        let mut signal = Vec::with_capacity(n);
        let mut error = Vec::with_capacity(n);
        let mut owner = Vec::with_capacity(n);
        let mut token = Vec::with_capacity(n);
        let mut expires = Vec::with_capacity(n);
        let mut cancel = Vec::with_capacity(n);
        let mut bytes = Vec::with_capacity(n);
        let mut dropped = Vec::with_capacity(n);
        for e in executions {
            if e.job_id != job.id {
                return Err(Error::invalid(format!(
                    "execution {} belongs to job {}, not {}",
                    e.id, e.job_id, job.id
                )));
            }
            counts.add(e.status, 1);
            id.push(e.id.0);
            system.push(e.system_id.0);
            attempt.push(i32::try_from(e.attempt).unwrap_or(i32::MAX));
            status.push(e.status.as_str());
            created.push(e.created_at);
            not_before.push(e.not_before);
            started.push(e.started_at);
            completed.push(e.completed_at);
            exit_code.push(e.exit_code);
            signal.push(e.signal.clone());
            error.push(e.error.clone());
            owner.push(e.lease.as_ref().map(|l| l.owner.clone()));
            token.push(e.lease.as_ref().map(|l| l.token.0));
            expires.push(e.lease.as_ref().map(|l| l.expires_at));
            cancel.push(e.cancel_requested);
            bytes.push(rows::i64_of(e.output_bytes, "output bytes")?);
            dropped.push(rows::i64_of(e.output_dropped, "output dropped")?);
        }
        let job_status = JobStatus::derive(&counts);
        let c = |v: u64| rows::i64_of(v, "execution count");
        let mut systems = system.clone();
        systems.sort_unstable();
        systems.dedup();
        let mut tx = self.pool().begin().await.map_err(db("creating a job"))?;
        // Every execution's system must exist; KEY SHARE keeps a concurrent delete_system
        // from slipping in before the executions are visible to it.
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT id FROM systems WHERE id = ANY($1) FOR KEY SHARE) s",
        )
        .bind(&systems)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("creating a job"))?;
        if found != systems.len() as i64 {
            let present: Vec<Uuid> =
                sqlx::query_scalar("SELECT id FROM systems WHERE id = ANY($1)")
                    .bind(&systems)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db("creating a job"))?;
            let missing = systems
                .iter()
                .find(|s| !present.contains(s))
                .copied()
                .unwrap_or_default();
            return Err(Error::not_found(format!(
                "an execution of job {} targets system {missing}, which does not exist",
                job.id
            ))
            .with_job(job.id)
            .with_system(orca_core::ids::SystemId(missing)));
        }
        // One statement: the job, all its executions (arrays, however many), the audit record
        // and, if there is pending work, one notification.
        sqlx::query(
            "WITH j AS (
                INSERT INTO jobs (id, name, command, created_by, created_by_id, targets, options,
                                  concurrency, requeue_lost, status, created_at, updated_at,
                                  n_pending, n_running, n_completed, n_failed, n_timeout,
                                  n_cancelled, n_lost)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                        $13, $14, $15, $16, $17, $18, $19)
             ), e AS (
                INSERT INTO executions (id, job_id, system_id, attempt, status, created_at,
                       not_before, started_at, completed_at, exit_code, signal, error,
                       lease_owner, lease_token, lease_expires_at, cancel_requested,
                       output_bytes, output_dropped)
                SELECT u.id, $1, u.system_id, u.attempt, u.status, u.created_at, u.not_before,
                       u.started_at, u.completed_at, u.exit_code, u.signal, u.error,
                       u.owner, u.token, u.expires, u.cancel, u.bytes, u.dropped
                  FROM unnest($20::uuid[], $21::uuid[], $22::int[], $23::text[],
                              $24::timestamptz[], $25::timestamptz[], $26::timestamptz[],
                              $27::timestamptz[], $28::int[], $29::text[], $30::text[],
                              $31::text[], $32::uuid[], $33::timestamptz[], $34::bool[],
                              $35::bigint[], $36::bigint[])
                       AS u(id, system_id, attempt, status, created_at, not_before, started_at,
                            completed_at, exit_code, signal, error, owner, token, expires,
                            cancel, bytes, dropped)
             ), a AS (
                INSERT INTO audit (id, at, event_type, actor, actor_id, resource_type,
                                   resource_id, action, outcome, details)
                VALUES ($37, $38, $39, $40, $41, $42, $43, $44, $45, $46)
             )
             SELECT pg_notify($47, '') WHERE $13 > 0",
        )
        .bind(job.id.0)
        .bind(&job.name)
        .bind(&job.command)
        .bind(&job.created_by)
        .bind(job.created_by_id.map(|u| u.0))
        .bind(Json(&job.targets))
        .bind(Json(&job.options))
        .bind(
            job.options
                .concurrency
                .map(|c| i32::try_from(c).unwrap_or(i32::MAX)),
        )
        .bind(job.options.requeue_lost)
        .bind(job_status.as_str())
        .bind(job.created_at)
        .bind(job.updated_at)
        .bind(c(counts.pending)?)
        .bind(c(counts.running)?)
        .bind(c(counts.completed)?)
        .bind(c(counts.failed)?)
        .bind(c(counts.timeout)?)
        .bind(c(counts.cancelled)?)
        .bind(c(counts.lost)?)
        .bind(&id)
        .bind(&system)
        .bind(&attempt)
        .bind(&status)
        .bind(&created)
        .bind(&not_before)
        .bind(&started)
        .bind(&completed)
        .bind(&exit_code)
        .bind(&signal)
        .bind(&error)
        .bind(&owner)
        .bind(&token)
        .bind(&expires)
        .bind(&cancel)
        .bind(&bytes)
        .bind(&dropped)
        .bind(audit.id.0)
        .bind(audit.at)
        .bind(&audit.event_type)
        .bind(&audit.actor)
        .bind(audit.actor_id.map(|u| u.0))
        .bind(&audit.resource_type)
        .bind(&audit.resource_id)
        .bind(&audit.action)
        .bind(audit.outcome.as_str())
        .bind(Json(&audit.details))
        .bind(&self.channels().work)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            let e = db("creating a job")(e);
            if e.kind() == orca_core::ErrorKind::AlreadyExists {
                Error::already_exists(format!(
                    "job {} or one of its executions already exists",
                    job.id
                ))
                .with_job(job.id)
            } else {
                e.with_job(job.id)
            }
        })?;
        tx.commit().await.map_err(db("creating a job"))?;
        Ok(())
    }

    pub(crate) async fn get_job_(&self, id: JobId) -> Result<Job> {
        let row = sqlx::query(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a job"))?
            .ok_or_else(|| Error::not_found(format!("job {id} does not exist")).with_job(id))?;
        rows::job(&row)
    }

    pub(crate) async fn list_jobs_(&self, f: &JobFilter, page: Page) -> Result<Vec<Job>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_cols!(),
            " FROM jobs
             WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR created_by = $2)
             ORDER BY created_at DESC, id DESC OFFSET $3 LIMIT $4"
        ))
        .bind(f.status.map(|s| s.as_str()))
        .bind(&f.created_by)
        .bind(rows::i64_of(page.offset, "page offset")?)
        .bind(i64::from(page.limit))
        .fetch_all(self.pool())
        .await
        .map_err(db("listing jobs"))?;
        rows.iter().map(rows::job).collect()
    }

    pub(crate) async fn job_counts_(&self, id: JobId) -> Result<StatusCounts> {
        let row = sqlx::query(
            "SELECT n_pending, n_running, n_completed, n_failed, n_timeout, n_cancelled, n_lost
               FROM jobs WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.pool())
        .await
        .map_err(db("counting a job's executions"))?
        .ok_or_else(|| Error::not_found(format!("job {id} does not exist")).with_job(id))?;
        rows::counts(&row)
    }

    pub(crate) async fn list_executions_(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            execution_cols!(),
            " FROM executions WHERE job_id = $1 ORDER BY created_at, id OFFSET $2 LIMIT $3"
        ))
        .bind(job.0)
        .bind(rows::i64_of(page.offset, "page offset")?)
        .bind(i64::from(page.limit))
        .fetch_all(self.pool())
        .await
        .map_err(db("listing executions"))?;
        if rows.is_empty() {
            // Tell a missing job from an empty page.
            self.get_job_(job).await?;
        }
        rows.iter().map(rows::execution).collect()
    }

    pub(crate) async fn get_execution_(&self, id: ExecutionId) -> Result<Execution> {
        let row = sqlx::query(concat!(
            "SELECT ",
            execution_cols!(),
            " FROM executions WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading an execution"))?
        .ok_or_else(|| {
            Error::not_found(format!("execution {id} does not exist")).with_execution(id)
        })?;
        rows::execution(&row)
    }

    pub(crate) async fn cancel_(
        &self,
        target: CancelTarget,
        audit: &AuditRecord,
    ) -> Result<CancelReport> {
        const WHAT: &str = "cancelling";
        let now = self.now_param();
        let mut tx = self.pool().begin().await.map_err(db(WHAT))?;
        // Lock the unfinished executions first (id order), then the job.
        let rows: Vec<(Uuid, Uuid, String)> = match target {
            CancelTarget::Job(job) => {
                let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
                    .bind(job.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db(WHAT))?;
                if exists.is_none() {
                    return Err(Error::not_found(format!("job {job} does not exist")).with_job(job));
                }
                sqlx::query_as(
                    "SELECT id, job_id, status FROM executions
                      WHERE job_id = $1 AND status IN ('pending', 'running')
                      ORDER BY id FOR NO KEY UPDATE",
                )
                .bind(job.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(db(WHAT))?
            }
            CancelTarget::Execution(id) => {
                let found: Option<(Uuid, Uuid, String)> = sqlx::query_as(
                    "SELECT id, job_id, status FROM executions WHERE id = $1 FOR NO KEY UPDATE",
                )
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(WHAT))?;
                match found {
                    None => {
                        return Err(Error::not_found(format!("execution {id} does not exist"))
                            .with_execution(id));
                    }
                    Some(r) => vec![r]
                        .into_iter()
                        .filter(|r| r.2 == "pending" || r.2 == "running")
                        .collect(),
                }
            }
        };
        let mut report = CancelReport::default();
        let mut pending = Vec::new();
        let mut running = Vec::new();
        let mut job_ids = Vec::new();
        for (id, job, status) in &rows {
            job_ids.push(*job);
            if status == "pending" {
                pending.push(*id);
            } else {
                running.push(*id);
            }
        }
        if !rows.is_empty() {
            sqlx::query(
                "UPDATE executions SET
                        status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
                        completed_at = CASE WHEN status = 'pending'
                                            THEN coalesce($2::timestamptz, now())
                                            ELSE completed_at END,
                        cancel_requested = cancel_requested OR status = 'running'
                  WHERE id = ANY($1)",
            )
            .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db(WHAT))?;
            if !pending.is_empty() {
                let mut jobs = lock_jobs(&mut tx, &job_ids, WHAT).await?;
                for (_, job, status) in &rows {
                    if let (true, Some(j)) = (status == "pending", jobs.get_mut(job)) {
                        shift(
                            &mut j.counts,
                            ExecutionStatus::Pending,
                            ExecutionStatus::Cancelled,
                        );
                    }
                }
                write_job_counts(&mut tx, now, &jobs, WHAT).await?;
            }
            // Oldest first (ids are time-ordered).
            report.cancelled = pending.into_iter().map(ExecutionId).collect();
            report.signalled = running.into_iter().map(ExecutionId).collect();
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db(WHAT))?;
        Ok(report)
    }
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        self.create_job_(job, executions, audit).await
    }
    async fn get_job(&self, id: JobId) -> Result<Job> {
        self.get_job_(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        self.list_jobs_(filter, page).await
    }
    async fn job_counts(&self, id: JobId) -> Result<StatusCounts> {
        self.job_counts_(id).await
    }
    async fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        self.list_executions_(job, page).await
    }
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution> {
        self.get_execution_(id).await
    }
    async fn cancel(&self, target: CancelTarget, audit: &AuditRecord) -> Result<CancelReport> {
        self.cancel_(target, audit).await
    }
}
