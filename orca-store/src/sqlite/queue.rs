//! The work queue: claiming pending executions, within the job and system limits, here;
//! heartbeat and rescue in `leases`, the writes under a lease in `queue_write`.

use std::collections::HashMap;
use std::time::Duration;

use orca_core::clock::add;
use orca_core::ids::{ExecutionId, JobId, LeaseToken, SystemId};
use orca_core::model::{Execution, ExecutionStatus, Finish, Job, Lease, System, Timestamp};
use orca_core::{
    Claim, ClaimRequest, Error, Finished, HeartbeatReport, OutputBatch, QueueStore, Result,
    async_trait,
};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::error::db_err;
use super::rows::{self, us};
use super::tx::{self, CHUNK, Deltas};
use super::{SqliteStore, leases, queue_write};

/// A pending execution that may be claimed, with the room its job and system have left.
struct Candidate {
    execution: Execution,
    next_seq: u64,
    job_room: Option<i64>,
    system_running: i64,
}

/// What a candidate row holds besides what claiming sets.
const CANDIDATE_SQL: &str = "SELECT e.id, e.job_id, e.system_id, e.attempt, e.created_at, \
    e.not_before, e.exit_code, e.signal, e.error, e.output_bytes, e.output_dropped, e.next_seq, \
    j.concurrency - j.n_running, s.running \
    FROM executions e JOIN jobs j ON j.id = e.job_id JOIN systems s ON s.id = e.system_id \
    WHERE e.status = 'pending' AND e.not_before <= ?1 \
    AND (j.concurrency IS NULL OR j.n_running < j.concurrency) \
    AND (?2 IS NULL OR s.running < ?2) \
    ORDER BY e.created_at, e.id LIMIT ?3";

fn candidate(row: &SqliteRow, lease: Lease, now: Timestamp) -> Result<Candidate> {
    let get_i = |k: usize| row.try_get::<i64, _>(k).map_err(db_err);
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    let exit: Option<i64> = row.try_get(6).map_err(db_err)?;
    let execution = Execution {
        id: ExecutionId(row.try_get(0).map_err(db_err)?),
        job_id: JobId(row.try_get(1).map_err(db_err)?),
        system_id: SystemId(row.try_get(2).map_err(db_err)?),
        attempt: u32::try_from(get_i(3)?).unwrap_or(u32::MAX),
        status: ExecutionStatus::Running,
        created_at: rows::ts(get_i(4)?)?,
        not_before: rows::ts(get_i(5)?)?,
        started_at: Some(now),
        completed_at: None,
        exit_code: exit.and_then(|c| i32::try_from(c).ok()),
        signal: row.try_get(7).map_err(db_err)?,
        error: row.try_get(8).map_err(db_err)?,
        lease: None,
        cancel_requested: false,
        output_bytes: u(get_i(9)?),
        output_dropped: u(get_i(10)?),
    };
    let lease = Lease {
        execution_id: execution.id,
        ..lease
    };
    Ok(Candidate {
        execution: Execution {
            lease: Some(lease),
            ..execution
        },
        next_seq: u(get_i(11)?),
        job_room: row.try_get(12).map_err(db_err)?,
        system_running: get_i(13)?,
    })
}

pub(crate) async fn claim(s: &SqliteStore, req: &ClaimRequest) -> Result<Vec<Claim>> {
    s.require_engine("claim")?;
    if req.limit == 0 || req.per_system == Some(0) {
        return Ok(Vec::new());
    }
    let now = s.now();
    let now_us = us(now);
    let expires = add(now, req.lease_for);
    let limit = req.limit as usize;
    let per_system = req.per_system.map(i64::from);
    let lease = Lease {
        execution_id: ExecutionId(Uuid::nil()),
        owner: req.worker.clone(),
        token: LeaseToken(Uuid::nil()),
        expires_at: expires,
    };
    let mut tx = tx::begin(s).await?;
    let mut claimed: Vec<Candidate> = Vec::new();
    // Each round takes what the limits allow from the oldest candidates; a later round looks
    // further when earlier candidates were held back by a limit.
    while claimed.len() < limit {
        // Enough when no limit holds a candidate back; otherwise the next round looks further.
        let want = limit - claimed.len();
        let found = sqlx::query(CANDIDATE_SQL)
            .bind(now_us)
            .bind(per_system)
            .bind(want as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let scanned = found.len();
        let mut cands = Vec::with_capacity(scanned);
        for row in &found {
            let mut c = candidate(row, lease.clone(), now)?;
            if let Some(l) = c.execution.lease.as_mut() {
                l.token = LeaseToken::new();
            }
            cands.push(c);
        }
        drop(found);
        let picks = pick(cands, want, per_system);
        if picks.is_empty() {
            break;
        }
        let mut deltas = Deltas::default();
        for c in &picks {
            let e = &c.execution;
            deltas.moved(
                e.job_id.0,
                e.system_id.0,
                ExecutionStatus::Pending,
                ExecutionStatus::Running,
            );
        }
        for part in picks.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE executions SET status = 'running', started_at = ",
            );
            q.push_bind(now_us)
                .push(", lease_owner = ")
                .push_bind(req.worker.clone())
                .push(", lease_expires_at = ")
                .push_bind(us(expires))
                .push(", lease_token = v.column2 FROM (");
            q.push_values(part, |mut b, c| {
                let token = c.execution.lease.as_ref().map(|l| l.token.0);
                b.push_bind(c.execution.id.0).push_bind(token);
            });
            q.push(") AS v WHERE executions.id = v.column1 AND executions.status = 'pending'");
            let done = q.build().execute(&mut *tx).await.map_err(db_err)?;
            if done.rows_affected() != part.len() as u64 {
                return Err(Error::unexpected(
                    "a claimed execution was not pending any more",
                ));
            }
        }
        deltas.apply(&mut tx, now_us).await?;
        claimed.extend(picks);
        if scanned < want {
            break;
        }
    }
    if claimed.is_empty() {
        tx.commit().await.map_err(db_err)?;
        return Ok(Vec::new());
    }
    let jobs = fetch_jobs(&mut tx, claimed.iter().map(|c| c.execution.job_id.0)).await?;
    let systems = fetch_systems(&mut tx, claimed.iter().map(|c| c.execution.system_id.0)).await?;
    tx.commit().await.map_err(db_err)?;
    claimed
        .into_iter()
        .map(|c| {
            let execution = c.execution;
            let lease = execution
                .lease
                .clone()
                .ok_or_else(|| Error::unexpected("a claimed execution has no lease"))?;
            let job = jobs.get(&execution.job_id.0).cloned();
            let system = systems.get(&execution.system_id.0).cloned();
            Ok(Claim {
                job: job.ok_or_else(|| Error::unexpected("claimed job vanished"))?,
                system: system.ok_or_else(|| Error::unexpected("claimed system vanished"))?,
                execution,
                lease,
                next_seq: c.next_seq,
            })
        })
        .collect()
}

/// Oldest first, as far as the job and system limits allow.
fn pick(cands: Vec<Candidate>, want: usize, per_system: Option<i64>) -> Vec<Candidate> {
    let mut job_room: HashMap<Uuid, i64> = HashMap::new();
    let mut sys_room: HashMap<Uuid, i64> = HashMap::new();
    let mut picks = Vec::with_capacity(want.min(cands.len()));
    for c in cands {
        if picks.len() == want {
            break;
        }
        let (job, system) = (c.execution.job_id.0, c.execution.system_id.0);
        if let Some(room) = c.job_room {
            let r = job_room.entry(job).or_insert(room);
            if *r <= 0 {
                continue;
            }
        }
        if let Some(limit) = per_system {
            let r = sys_room.entry(system).or_insert(limit - c.system_running);
            if *r <= 0 {
                continue;
            }
            *r -= 1;
        }
        if let Some(r) = job_room.get_mut(&job) {
            *r -= 1;
        }
        picks.push(c);
    }
    picks
}

async fn in_list(
    conn: &mut SqliteConnection,
    select: &str,
    ids: impl Iterator<Item = Uuid>,
) -> Result<Vec<sqlx::sqlite::SqliteRow>> {
    let mut ids: Vec<Uuid> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    for part in ids.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(select);
        q.push(" WHERE id IN (");
        let mut sep = q.separated(", ");
        for id in part {
            sep.push_bind(*id);
        }
        q.push(")");
        out.extend(q.build().fetch_all(&mut *conn).await.map_err(db_err)?);
    }
    Ok(out)
}

async fn fetch_jobs(
    conn: &mut SqliteConnection,
    ids: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Job>> {
    let select = format!("SELECT {} FROM jobs", rows::JOB_COLS);
    in_list(conn, &select, ids)
        .await?
        .iter()
        .map(|r| rows::job(r).map(|j| (j.id.0, j)))
        .collect()
}

async fn fetch_systems(
    conn: &mut SqliteConnection,
    ids: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, System>> {
    let select = format!("SELECT {} FROM systems", rows::SYSTEM_COLS);
    in_list(conn, &select, ids)
        .await?
        .iter()
        .map(|r| rows::system(r).map(|x| (x.id.0, x)))
        .collect()
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        claim(self, request).await
    }
    async fn heartbeat(&self, leases: &[Lease], extend: Duration) -> Result<HeartbeatReport> {
        leases::heartbeat(self, leases, extend).await
    }
    async fn append_output(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>> {
        queue_write::append_output(self, batches).await
    }
    async fn finish(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>> {
        queue_write::finish(self, items).await
    }
    async fn rescue_expired(&self, limit: u32) -> Result<Vec<Execution>> {
        leases::rescue_expired(self, limit).await
    }
}
