//! `claim`: hand pending executions to a worker, in batches, exclusively, within limits.
//!
//! One transaction:
//! 1. pick up to `limit` pending executions, oldest first, `FOR NO KEY UPDATE SKIP LOCKED`
//!    (concurrent claimers take different rows and never wait for each other), skipping jobs
//!    and systems already at their limit as last committed;
//! 2. lock their jobs (id order) and, with a per-system limit, take a transaction advisory
//!    lock per system (key order), then re-read the exact running counts: the limits hold
//!    under any concurrency, not just approximately;
//! 3. set the chosen ones `running` with a fresh lease in one `UPDATE`, and the jobs'
//!    counters in another.

use std::collections::HashMap;

use orca_core::ids::LeaseToken;
use orca_core::model::ExecutionStatus;
use orca_core::{Claim, ClaimRequest, Error, Result};
use sqlx::Row;
use uuid::Uuid;

use super::PostgresStore;
use super::error::db;
use super::jobs::{lock_jobs, shift, write_job_counts};
use super::rows::{self, execution_cols, system_cols};

const WHAT: &str = "claiming work";

/// Micro-seconds of `d`, saturating.
pub(crate) fn micros_of(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A stable 64-bit FNV-1a hash (the same on every node).
fn fnv(s: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

impl PostgresStore {
    /// The advisory-lock key that serialises claims on one system (per schema).
    fn system_lock_key(&self, system: Uuid) -> i64 {
        let b = system.as_bytes();
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&b[8..16]);
        fnv(self.schema()) ^ i64::from_be_bytes(tail)
    }

    pub(crate) async fn claim_(&self, req: &ClaimRequest) -> Result<Vec<Claim>> {
        if req.worker.trim().is_empty() {
            return Err(Error::invalid("a claim needs a worker name"));
        }
        if req.limit == 0 || req.per_system == Some(0) {
            return Ok(Vec::new());
        }
        let now = self.now_param();
        let per_system = req.per_system.map(i64::from);
        let mut tx = self.pool().begin().await.map_err(db(WHAT))?;

        // 1. Candidates.
        let cands: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
            "SELECT e.id, e.job_id, e.system_id
               FROM executions e
               JOIN jobs j ON j.id = e.job_id
               JOIN systems s ON s.id = e.system_id
              WHERE e.status = 'pending'
                AND e.not_before <= coalesce($1::timestamptz, now())
                AND (j.concurrency IS NULL OR j.n_running < j.concurrency)
                AND ($3::bigint IS NULL OR
                     (SELECT count(*) FROM executions r
                       WHERE r.system_id = e.system_id AND r.status = 'running') < $3)
              ORDER BY e.created_at, e.id
              LIMIT $2
              FOR NO KEY UPDATE OF e SKIP LOCKED",
        )
        .bind(now)
        .bind(i64::from(req.limit))
        .bind(per_system)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(WHAT))?;
        if cands.is_empty() {
            tx.commit().await.map_err(db(WHAT))?;
            return Ok(Vec::new());
        }

        // 2. Exact limits under locks.
        let job_ids: Vec<Uuid> = cands.iter().map(|c| c.1).collect();
        let mut jobs = lock_jobs(&mut tx, &job_ids, WHAT).await?;
        let mut system_budget: HashMap<Uuid, i64> = HashMap::new();
        if let Some(limit) = per_system {
            let mut systems: Vec<Uuid> = cands.iter().map(|c| c.2).collect();
            systems.sort_unstable();
            systems.dedup();
            let mut keys: Vec<i64> = systems.iter().map(|s| self.system_lock_key(*s)).collect();
            keys.sort_unstable();
            keys.dedup();
            sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS t(k)")
                .bind(&keys)
                .execute(&mut *tx)
                .await
                .map_err(db(WHAT))?;
            let running: Vec<(Uuid, i64)> = sqlx::query_as(
                "SELECT system_id, count(*) FROM executions
                  WHERE status = 'running' AND system_id = ANY($1) GROUP BY system_id",
            )
            .bind(&systems)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(WHAT))?;
            let running: HashMap<Uuid, i64> = running.into_iter().collect();
            for s in systems {
                system_budget.insert(s, limit - running.get(&s).copied().unwrap_or(0));
            }
        }
        let mut chosen = Vec::new();
        for (id, job, system) in cands {
            let Some(j) = jobs.get_mut(&job) else {
                continue;
            };
            if j.concurrency
                .is_some_and(|c| j.counts.running >= u64::from(c))
            {
                continue;
            }
            if per_system.is_some() {
                let b = system_budget.entry(system).or_insert(0);
                if *b <= 0 {
                    continue;
                }
                *b -= 1;
            }
            shift(
                &mut j.counts,
                ExecutionStatus::Pending,
                ExecutionStatus::Running,
            );
            chosen.push((id, job, system));
        }
        if chosen.is_empty() {
            tx.commit().await.map_err(db(WHAT))?;
            return Ok(Vec::new());
        }
        jobs.retain(|id, _| chosen.iter().any(|c| c.1 == *id));

        // 3. Lease them.
        let ids: Vec<Uuid> = chosen.iter().map(|c| c.0).collect();
        let tokens: Vec<Uuid> = chosen.iter().map(|_| LeaseToken::new().0).collect();
        let rows = sqlx::query(concat!(
            "UPDATE executions e SET status = 'running',
                    started_at = coalesce($1::timestamptz, now()),
                    lease_owner = $2, lease_token = u.u_token,
                    lease_expires_at = coalesce($1::timestamptz, now())
                                       + $3 * interval '1 microsecond'
               FROM unnest($4::uuid[], $5::uuid[]) AS u(u_id, u_token)
              WHERE e.id = u.u_id
              RETURNING e.next_seq, ",
            execution_cols!()
        ))
        .bind(now)
        .bind(&req.worker)
        .bind(micros_of(req.lease_for))
        .bind(&ids)
        .bind(&tokens)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(WHAT))?;
        let mut leased = HashMap::with_capacity(rows.len());
        for r in &rows {
            let e = rows::execution(r)?;
            let next_seq: i64 = r.try_get("next_seq").map_err(db(WHAT))?;
            leased.insert(e.id.0, (e, next_seq.max(0) as u64));
        }
        let jobs = write_job_counts(&mut tx, now, &jobs, WHAT).await?;
        let mut systems: Vec<Uuid> = chosen.iter().map(|c| c.2).collect();
        systems.sort_unstable();
        systems.dedup();
        let system_rows = sqlx::query(concat!(
            "SELECT ",
            system_cols!(),
            " FROM systems WHERE id = ANY($1)"
        ))
        .bind(&systems)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(WHAT))?;
        let mut system_map = HashMap::with_capacity(system_rows.len());
        for r in &system_rows {
            let s = rows::system(r)?;
            system_map.insert(s.id.0, s);
        }
        tx.commit().await.map_err(db(WHAT))?;

        let mut out = Vec::with_capacity(chosen.len());
        for (id, job, system) in chosen {
            let (execution, next_seq) = leased
                .remove(&id)
                .ok_or_else(|| Error::unexpected("a claimed execution was not updated"))?;
            let lease = execution
                .lease
                .clone()
                .ok_or_else(|| Error::unexpected("a claimed execution has no lease"))?;
            out.push(Claim {
                execution,
                lease,
                job: jobs
                    .get(&job)
                    .cloned()
                    .ok_or_else(|| Error::unexpected("a claimed execution's job vanished"))?,
                system: system_map
                    .get(&system)
                    .cloned()
                    .ok_or_else(|| Error::unexpected("a claimed execution's system vanished"))?,
                next_seq,
            });
        }
        Ok(out)
    }
}
