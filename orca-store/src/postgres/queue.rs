//! The work queue: worker writes under a lease (heartbeat, output, finish) and the reaper
//! (`rescue_expired`) here; `claim` in `claim`.
//!
//! Every multi-row writer locks execution rows in id order before anything else, then job
//! rows in id order, so concurrent writers (heartbeats, finishes, cancels, claims) never
//! deadlock. A write whose lease token is not the execution's current one changes nothing.

use std::collections::HashMap;
use std::time::Duration;

use orca_core::ids::{ExecutionId, LeaseToken};
use orca_core::model::{Execution, ExecutionStatus, Finish, Lease};
use orca_core::{
    Claim, ClaimRequest, Error, Finished, HeartbeatReport, OutputBatch, QueueStore, Result,
    async_trait,
};
use sqlx::Row;
use uuid::Uuid;

use super::PostgresStore;
use super::claim::micros_of;
use super::error::db;
use super::jobs::{lock_jobs, shift, write_job_counts};
use super::rows::{self, execution_cols};

/// An execution row locked by a worker write.
struct Current {
    job: Uuid,
    status: ExecutionStatus,
    token: Option<Uuid>,
    next_seq: u64,
}

async fn lock_executions(
    conn: &mut sqlx::PgConnection,
    ids: &[Uuid],
    what: &'static str,
) -> Result<HashMap<Uuid, Current>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rows = sqlx::query(
        "SELECT id, job_id, status, lease_token, next_seq FROM executions
          WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await
    .map_err(db(what))?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let status: String = r.try_get("status").map_err(db(what))?;
        let next_seq: i64 = r.try_get("next_seq").map_err(db(what))?;
        out.insert(
            r.try_get("id").map_err(db(what))?,
            Current {
                job: r.try_get("job_id").map_err(db(what))?,
                status: ExecutionStatus::parse(&status)?,
                token: r.try_get("lease_token").map_err(db(what))?,
                next_seq: next_seq.max(0) as u64,
            },
        );
    }
    Ok(out)
}

impl Current {
    fn holds(&self, lease: &Lease) -> bool {
        self.status == ExecutionStatus::Running && self.token == Some(lease.token.0)
    }
}

impl PostgresStore {
    pub(crate) async fn heartbeat_(
        &self,
        leases: &[Lease],
        extend: Duration,
    ) -> Result<HeartbeatReport> {
        if leases.is_empty() {
            return Ok(HeartbeatReport::default());
        }
        let ids: Vec<Uuid> = leases.iter().map(|l| l.execution_id.0).collect();
        let tokens: Vec<Uuid> = leases.iter().map(|l| l.token.0).collect();
        // The CTE locks the rows in id order before the update touches them.
        let rows = sqlx::query(
            "WITH l AS (
                SELECT e.id FROM executions e
                  JOIN unnest($2::uuid[], $3::uuid[]) AS u(u_id, u_token)
                    ON e.id = u.u_id AND e.lease_token = u.u_token
                 WHERE e.status = 'running'
                 ORDER BY e.id
                 FOR NO KEY UPDATE OF e
             )
             UPDATE executions e
                SET lease_expires_at = coalesce($1::timestamptz, now())
                                       + $4 * interval '1 microsecond'
               FROM l WHERE e.id = l.id
             RETURNING e.id, e.lease_owner, e.lease_token, e.lease_expires_at, e.cancel_requested",
        )
        .bind(self.now_param())
        .bind(&ids)
        .bind(&tokens)
        .bind(micros_of(extend))
        .fetch_all(self.pool())
        .await
        .map_err(db("renewing leases"))?;
        let mut renewed = HashMap::with_capacity(rows.len());
        for r in rows {
            let id: Uuid = r.try_get("id").map_err(db("renewing leases"))?;
            let lease = Lease {
                execution_id: ExecutionId(id),
                owner: r
                    .try_get::<Option<String>, _>("lease_owner")
                    .map_err(db("renewing leases"))?
                    .unwrap_or_default(),
                token: LeaseToken(r.try_get("lease_token").map_err(db("renewing leases"))?),
                expires_at: r
                    .try_get("lease_expires_at")
                    .map_err(db("renewing leases"))?,
            };
            let cancel: bool = r
                .try_get("cancel_requested")
                .map_err(db("renewing leases"))?;
            renewed.insert(id, (lease, cancel));
        }
        let mut report = HeartbeatReport::default();
        for l in leases {
            match renewed.get(&l.execution_id.0) {
                Some((lease, cancel)) if lease.token == l.token => {
                    report.renewed.push(lease.clone());
                    if *cancel {
                        report.cancel_requested.push(l.execution_id);
                    }
                }
                _ => report.lost.push(l.execution_id),
            }
        }
        Ok(report)
    }

    pub(crate) async fn append_output_(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>> {
        const WHAT: &str = "appending output";
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = batches.iter().map(|b| b.lease.execution_id.0).collect();
        let mut tx = self.pool().begin().await.map_err(db(WHAT))?;
        let mut current = lock_executions(&mut tx, &ids, WHAT).await?;
        let mut results = Vec::with_capacity(batches.len());
        let (mut c_exec, mut c_seq, mut c_stream, mut c_data, mut c_at) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut added: HashMap<Uuid, i64> = HashMap::new();
        for b in batches {
            let id = b.lease.execution_id;
            let Some(cur) = current.get_mut(&id.0).filter(|c| c.holds(&b.lease)) else {
                results.push(Err(Error::lease_lost(id)));
                continue;
            };
            if let Err(e) = check_chunks(b, cur.next_seq) {
                results.push(Err(e));
                continue;
            }
            let mut bytes = 0i64;
            for c in &b.chunks {
                c_exec.push(id.0);
                c_seq.push(rows::i64_of(c.seq, "seq")?);
                c_stream.push(c.stream.as_str());
                c_data.push(c.data.as_ref());
                c_at.push(c.at);
                bytes += c.data.len() as i64;
            }
            cur.next_seq += b.chunks.len() as u64;
            *added.entry(id.0).or_default() += bytes;
            results.push(Ok(()));
        }
        if !c_exec.is_empty() {
            let (u_id, u_next, u_bytes): (Vec<Uuid>, Vec<i64>, Vec<i64>) = {
                let mut a = (Vec::new(), Vec::new(), Vec::new());
                for (id, bytes) in &added {
                    a.0.push(*id);
                    a.1.push(current.get(id).map_or(0, |c| c.next_seq as i64));
                    a.2.push(*bytes);
                }
                a
            };
            sqlx::query(
                "WITH ins AS (
                    INSERT INTO output_chunks (execution_id, seq, stream, data, at)
                    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[],
                                         $5::timestamptz[])
                 )
                 UPDATE executions e SET next_seq = u.u_next,
                        output_bytes = e.output_bytes + u.u_bytes
                   FROM unnest($6::uuid[], $7::bigint[], $8::bigint[]) AS u(u_id, u_next, u_bytes)
                  WHERE e.id = u.u_id",
            )
            .bind(&c_exec)
            .bind(&c_seq)
            .bind(&c_stream)
            .bind(&c_data)
            .bind(&c_at)
            .bind(&u_id)
            .bind(&u_next)
            .bind(&u_bytes)
            .execute(&mut *tx)
            .await
            .map_err(db(WHAT))?;
        }
        tx.commit().await.map_err(db(WHAT))?;
        Ok(results)
    }

    pub(crate) async fn finish_(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>> {
        const WHAT: &str = "finishing executions";
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_param();
        let ids: Vec<Uuid> = items.iter().map(|(l, _)| l.execution_id.0).collect();
        let mut tx = self.pool().begin().await.map_err(db(WHAT))?;
        let mut current = lock_executions(&mut tx, &ids, WHAT).await?;
        // Decide each item in order, as if they were applied one after the other.
        let mut plan: Vec<Result<usize>> = Vec::with_capacity(items.len());
        let mut accepted: Vec<(Uuid, Uuid, &Finish)> = Vec::new();
        for (lease, f) in items {
            let id = lease.execution_id;
            let Some(cur) = current.get_mut(&id.0).filter(|c| c.holds(lease)) else {
                plan.push(Err(Error::lease_lost(id)));
                continue;
            };
            if let Err(e) = ExecutionStatus::Running.check_transition(f.status, id) {
                plan.push(Err(e));
                continue;
            }
            cur.status = f.status;
            cur.token = None;
            plan.push(Ok(accepted.len()));
            accepted.push((id.0, cur.job, f));
        }
        let mut job_status = Vec::with_capacity(accepted.len());
        let mut stored: HashMap<Uuid, Execution> = HashMap::new();
        if !accepted.is_empty() {
            let job_ids: Vec<Uuid> = accepted.iter().map(|a| a.1).collect();
            let mut jobs = lock_jobs(&mut tx, &job_ids, WHAT).await?;
            for (_, job, f) in &accepted {
                let j = jobs
                    .get_mut(job)
                    .ok_or_else(|| Error::unexpected("an execution's job vanished"))?;
                shift(&mut j.counts, ExecutionStatus::Running, f.status);
                job_status.push(orca_core::model::JobStatus::derive(&j.counts));
            }
            let mut u_dropped = Vec::with_capacity(accepted.len());
            for (_, _, f) in &accepted {
                u_dropped.push(rows::i64_of(f.output_dropped, "output dropped")?);
            }
            let rows = sqlx::query(concat!(
                "UPDATE executions e SET status = u.u_status,
                        exit_code = u.u_exit, signal = u.u_signal, error = u.u_error,
                        output_dropped = e.output_dropped + u.u_dropped,
                        completed_at = CASE WHEN u.u_status = 'pending' THEN e.completed_at
                                            ELSE coalesce($1::timestamptz, now()) END,
                        not_before = CASE WHEN u.u_status = 'pending'
                                          THEN coalesce(u.u_retry_at, $1::timestamptz, now())
                                          ELSE e.not_before END,
                        attempt = CASE WHEN u.u_status = 'pending' THEN e.attempt + 1
                                       ELSE e.attempt END,
                        lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                   FROM unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[],
                               $7::timestamptz[], $8::bigint[])
                        AS u(u_id, u_status, u_exit, u_signal, u_error, u_retry_at, u_dropped)
                  WHERE e.id = u.u_id
                  RETURNING ",
                execution_cols!()
            ))
            .bind(now)
            .bind(accepted.iter().map(|a| a.0).collect::<Vec<_>>())
            .bind(
                accepted
                    .iter()
                    .map(|a| a.2.status.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(accepted.iter().map(|a| a.2.exit_code).collect::<Vec<_>>())
            .bind(
                accepted
                    .iter()
                    .map(|a| a.2.signal.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                accepted
                    .iter()
                    .map(|a| a.2.error.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(accepted.iter().map(|a| a.2.retry_at).collect::<Vec<_>>())
            .bind(&u_dropped)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(WHAT))?;
            for r in &rows {
                let e = rows::execution(r)?;
                stored.insert(e.id.0, e);
            }
            write_job_counts(&mut tx, now, &jobs, WHAT).await?;
            if accepted
                .iter()
                .any(|a| a.2.status == ExecutionStatus::Pending)
            {
                self.notify_work(&mut tx).await?;
            }
        }
        tx.commit().await.map_err(db(WHAT))?;
        plan.into_iter()
            .map(|p| match p {
                Err(e) => Ok(Err(e)),
                Ok(i) => {
                    let execution = stored
                        .get(&accepted[i].0)
                        .cloned()
                        .ok_or_else(|| Error::unexpected("a finished execution was not updated"))?;
                    Ok(Ok(Finished {
                        execution,
                        job_status: job_status[i],
                    }))
                }
            })
            .collect()
    }

    pub(crate) async fn rescue_expired_(&self, limit: u32) -> Result<Vec<Execution>> {
        const WHAT: &str = "rescuing expired leases";
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.now_param();
        let mut tx = self.pool().begin().await.map_err(db(WHAT))?;
        // Re-queue only where the job allows it (`requeue_lost`, attempts left), nothing had
        // reached the host (no output) and nobody asked to cancel; otherwise `lost`.
        let expired: Vec<(Uuid, Uuid, Option<String>, bool)> = sqlx::query_as(
            "SELECT e.id, e.job_id, e.lease_owner,
                    j.requeue_lost AND e.next_seq = 0 AND NOT e.cancel_requested
                      AND e.attempt <= coalesce((j.options ->> 'retries')::bigint, 0) AS requeue
               FROM executions e JOIN jobs j ON j.id = e.job_id
              WHERE e.status = 'running' AND e.lease_expires_at <= coalesce($1::timestamptz, now())
              ORDER BY e.lease_expires_at, e.id
              LIMIT $2
              FOR NO KEY UPDATE OF e SKIP LOCKED",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db(WHAT))?;
        if expired.is_empty() {
            tx.commit().await.map_err(db(WHAT))?;
            return Ok(Vec::new());
        }
        let job_ids: Vec<Uuid> = expired.iter().map(|e| e.1).collect();
        let mut jobs = lock_jobs(&mut tx, &job_ids, WHAT).await?;
        let mut statuses = Vec::with_capacity(expired.len());
        let mut errors = Vec::with_capacity(expired.len());
        for (_, job, owner, requeue) in &expired {
            let owner = owner.as_deref().unwrap_or("?");
            let to = if *requeue {
                errors.push(format!(
                    "re-queued: the lease of worker '{owner}' expired before the execution \
                     produced any output"
                ));
                ExecutionStatus::Pending
            } else {
                errors.push(format!(
                    "the lease of worker '{owner}' expired: the worker stopped renewing it \
                     (it died, lost its database connection or was cut off), so the \
                     command's outcome on the host is unknown"
                ));
                ExecutionStatus::Lost
            };
            if let Some(j) = jobs.get_mut(job) {
                shift(&mut j.counts, ExecutionStatus::Running, to);
            }
            statuses.push(to.as_str());
        }
        let rows = sqlx::query(concat!(
            "UPDATE executions e SET status = u.u_status, error = u.u_error,
                    completed_at = CASE WHEN u.u_status = 'pending' THEN e.completed_at
                                        ELSE coalesce($1::timestamptz, now()) END,
                    not_before = CASE WHEN u.u_status = 'pending'
                                      THEN coalesce($1::timestamptz, now()) ELSE e.not_before END,
                    attempt = CASE WHEN u.u_status = 'pending' THEN e.attempt + 1
                                   ELSE e.attempt END,
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
               FROM unnest($2::uuid[], $3::text[], $4::text[]) AS u(u_id, u_status, u_error)
              WHERE e.id = u.u_id
              RETURNING ",
            execution_cols!()
        ))
        .bind(now)
        .bind(expired.iter().map(|e| e.0).collect::<Vec<_>>())
        .bind(&statuses)
        .bind(&errors)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(WHAT))?;
        let mut by_id = HashMap::with_capacity(rows.len());
        for r in &rows {
            let e = rows::execution(r)?;
            by_id.insert(e.id.0, e);
        }
        write_job_counts(&mut tx, now, &jobs, WHAT).await?;
        if statuses.contains(&"pending") {
            self.notify_work(&mut tx).await?;
        }
        tx.commit().await.map_err(db(WHAT))?;
        let out: Vec<Execution> = expired.iter().filter_map(|e| by_id.remove(&e.0)).collect();
        for e in &out {
            tracing::warn!(execution_id = %e.id, job_id = %e.job_id, status = e.status.as_str(),
                "rescued an execution whose lease expired");
        }
        Ok(out)
    }
}

/// The chunks of a batch must belong to its execution and continue its output without gaps.
fn check_chunks(b: &OutputBatch, next_seq: u64) -> Result<()> {
    let id = b.lease.execution_id;
    for (i, c) in b.chunks.iter().enumerate() {
        if c.execution_id != id {
            return Err(Error::invalid(format!(
                "an output chunk of execution {} was sent under the lease of execution {id}",
                c.execution_id
            ))
            .with_execution(id));
        }
        let want = next_seq + i as u64;
        if c.seq != want {
            return Err(Error::conflict(format!(
                "output of execution {id} continues at seq {want}, got seq {}",
                c.seq
            ))
            .with_execution(id));
        }
    }
    Ok(())
}

#[async_trait]
impl QueueStore for PostgresStore {
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        self.claim_(request).await
    }
    async fn heartbeat(&self, leases: &[Lease], extend: Duration) -> Result<HeartbeatReport> {
        self.heartbeat_(leases, extend).await
    }
    async fn append_output(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>> {
        self.append_output_(batches).await
    }
    async fn finish(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>> {
        self.finish_(items).await
    }
    async fn rescue_expired(&self, limit: u32) -> Result<Vec<Execution>> {
        self.rescue_expired_(limit).await
    }
}
