//! Leases of the engine: heartbeat and rescue_expired.

use std::collections::HashMap;

use orca_core::clock::add;
use orca_core::ids::ExecutionId;
use orca_core::model::{Execution, ExecutionStatus, Lease};
use orca_core::{HeartbeatReport, Result};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::SqliteStore;
use super::error::db_err;
use super::rows::{self, us};
use super::tx::{self, CHUNK, Deltas};

pub(crate) async fn heartbeat(
    s: &SqliteStore,
    leases: &[Lease],
    extend: std::time::Duration,
) -> Result<HeartbeatReport> {
    s.require_engine("heartbeat")?;
    let mut report = HeartbeatReport::default();
    if leases.is_empty() {
        return Ok(report);
    }
    let now = s.now();
    let expires = add(now, extend);
    let mut tx = tx::begin(s).await?;
    let ids: Vec<Uuid> = leases.iter().map(|l| l.execution_id.0).collect();
    let mut state = HashMap::with_capacity(ids.len());
    for row in
        tx::executions_by_id(&mut tx, "id, status, lease_token, cancel_requested", &ids).await?
    {
        let id: Uuid = row.try_get("id").map_err(db_err)?;
        let status: String = row.try_get("status").map_err(db_err)?;
        let token: Option<Uuid> = row.try_get("lease_token").map_err(db_err)?;
        let cancel: bool = row.try_get("cancel_requested").map_err(db_err)?;
        state.insert(id, (status == "running", token, cancel));
    }
    let mut renew = Vec::new();
    for l in leases {
        match state.get(&l.execution_id.0) {
            Some((true, Some(t), cancel)) if *t == l.token.0 => {
                renew.push(l.execution_id.0);
                report.renewed.push(Lease {
                    expires_at: expires,
                    ..l.clone()
                });
                if *cancel {
                    report.cancel_requested.push(l.execution_id);
                }
            }
            _ => report.lost.push(l.execution_id),
        }
    }
    for part in renew.chunks(CHUNK * 4) {
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE executions SET lease_expires_at = ");
        q.push_bind(us(expires)).push(" WHERE id IN (");
        let mut sep = q.separated(", ");
        for id in part {
            sep.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *tx).await.map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(report)
}

/// A running execution whose lease ran out: id, job, system, next seq, cancel requested, lease
/// owner, lease expiry, whether it may be re-queued.
type Expired = (Uuid, Uuid, Uuid, i64, bool, Option<String>, i64, bool);

pub(crate) async fn rescue_expired(s: &SqliteStore, limit: u32) -> Result<Vec<Execution>> {
    s.require_engine("rescue_expired")?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    let now = us(s.now());
    let mut tx = tx::begin(s).await?;
    let expired: Vec<Expired> = sqlx::query_as(
        "SELECT e.id, e.job_id, e.system_id, e.next_seq, e.cancel_requested, e.lease_owner, \
         e.lease_expires_at, j.requeue_lost AND e.attempt <= j.retries \
         FROM executions e JOIN jobs j ON j.id = e.job_id \
         WHERE e.status = 'running' AND e.lease_expires_at <= ? \
         ORDER BY e.lease_expires_at, e.id LIMIT ?",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    if expired.is_empty() {
        tx.commit().await.map_err(db_err)?;
        return Ok(Vec::new());
    }
    let mut deltas = Deltas::default();
    let mut updates = Vec::with_capacity(expired.len());
    for (id, job, system, next_seq, cancel, owner, at, requeue) in &expired {
        let requeue = *requeue && *next_seq == 0 && !*cancel;
        let to = if requeue {
            ExecutionStatus::Pending
        } else {
            ExecutionStatus::Lost
        };
        deltas.moved(*job, *system, ExecutionStatus::Running, to);
        let at = rows::ts(*at).map(|t| t.to_rfc3339()).unwrap_or_default();
        let owner = owner.as_deref().unwrap_or("?");
        let error = if requeue {
            format!("the lease of worker {owner} expired at {at} before any output: re-queued")
        } else {
            format!(
                "the lease of worker {owner} expired at {at}: the outcome on the host is unknown"
            )
        };
        updates.push((*id, to, error));
    }
    let mut stored = HashMap::with_capacity(updates.len());
    for part in updates.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE executions SET status = v.column2, \
             attempt = attempt + (v.column2 = 'pending'), \
             not_before = CASE WHEN v.column2 = 'pending' THEN v.column4 ELSE not_before END, \
             completed_at = CASE WHEN v.column2 = 'pending' THEN NULL ELSE v.column4 END, \
             error = v.column3, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             FROM (",
        );
        q.push_values(part, |mut b, (id, to, error)| {
            b.push_bind(*id)
                .push_bind(to.as_str())
                .push_bind(error.clone())
                .push_bind(now);
        });
        q.push(
            ") AS v WHERE executions.id = v.column1 AND executions.status = 'running' RETURNING ",
        );
        q.push(rows::EXEC_COLS);
        for row in q.build().fetch_all(&mut *tx).await.map_err(db_err)? {
            let e = rows::execution(&row)?;
            stored.insert(e.id, e);
        }
    }
    deltas.apply(&mut tx, now).await?;
    tx.commit().await.map_err(db_err)?;
    let out: Vec<Execution> = updates
        .iter()
        .filter_map(|(id, _, _)| stored.remove(&ExecutionId(*id)))
        .collect();
    if !out.is_empty() {
        tracing::warn!(count = out.len(), "rescued executions whose lease expired");
    }
    Ok(out)
}
