//! Write-transaction helpers: begin, audit, and the per-job / per-system counters.

use std::collections::HashMap;

use orca_core::Result;
use orca_core::model::{AuditRecord, ExecutionStatus, JobStatus, StatusCounts};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use super::SqliteStore;
use super::error::db_err;
use super::rows::{self, to_json, us};

/// Rows per multi-row statement (SQLite allows 32766 bound values).
pub(crate) const CHUNK: usize = 500;

/// A write transaction (`BEGIN IMMEDIATE`: takes the write lock up front, so it never fails
/// half-way for lack of it).
pub(crate) async fn begin(s: &SqliteStore) -> Result<Transaction<'static, Sqlite>> {
    s.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)
}

/// Insert an audit record.
pub(crate) async fn audit(conn: &mut SqliteConnection, r: &AuditRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (id, at, event_type, actor, actor_id, resource_type, resource_id, \
         action, outcome, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.id.0)
    .bind(us(r.at))
    .bind(&r.event_type)
    .bind(&r.actor)
    .bind(r.actor_id.map(|u| u.0))
    .bind(&r.resource_type)
    .bind(&r.resource_id)
    .bind(&r.action)
    .bind(r.outcome.as_str())
    .bind(to_json(&r.details)?)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Changes to per-job state counts, in the order of [`ExecutionStatus::ALL`].
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    jobs: HashMap<Uuid, [i64; 7]>,
    systems: HashMap<Uuid, i64>,
}

fn idx(s: ExecutionStatus) -> usize {
    ExecutionStatus::ALL
        .iter()
        .position(|x| *x == s)
        .unwrap_or_default()
}

impl Deltas {
    /// An execution of `job` on `system` moved from `from` to `to`.
    pub(crate) fn moved(
        &mut self,
        job: Uuid,
        system: Uuid,
        from: ExecutionStatus,
        to: ExecutionStatus,
    ) {
        let d = self.jobs.entry(job).or_default();
        d[idx(from)] -= 1;
        d[idx(to)] += 1;
        let running = |s| i64::from(s == ExecutionStatus::Running);
        let r = running(to) - running(from);
        if r != 0 {
            *self.systems.entry(system).or_default() += r;
        }
    }

    /// `d` more running executions on `system`.
    pub(crate) fn system_running(&mut self, system: Uuid, d: i64) {
        *self.systems.entry(system).or_default() += d;
    }

    /// Apply to the counters; recompute the status of every touched job. Returns each touched
    /// job's status afterwards.
    pub(crate) async fn apply(
        &self,
        conn: &mut SqliteConnection,
        now: i64,
    ) -> Result<HashMap<Uuid, JobStatus>> {
        let systems: Vec<_> = self.systems.iter().filter(|(_, d)| **d != 0).collect();
        for part in systems.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE systems SET running = running + v.column2 FROM (",
            );
            q.push_values(part, |mut b, (id, d)| {
                b.push_bind(**id).push_bind(**d);
            });
            q.push(") AS v WHERE systems.id = v.column1");
            q.build().execute(&mut *conn).await.map_err(db_err)?;
        }
        let mut out = HashMap::with_capacity(self.jobs.len());
        let jobs: Vec<_> = self.jobs.iter().collect();
        for part in jobs.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE jobs SET n_pending = n_pending + v.column2, \
                 n_running = n_running + v.column3, n_completed = n_completed + v.column4, \
                 n_failed = n_failed + v.column5, n_timeout = n_timeout + v.column6, \
                 n_cancelled = n_cancelled + v.column7, n_lost = n_lost + v.column8 FROM (",
            );
            q.push_values(part, |mut b, (id, d)| {
                b.push_bind(**id);
                for v in d.iter() {
                    b.push_bind(*v);
                }
            });
            q.push(") AS v WHERE jobs.id = v.column1 RETURNING id, status, ");
            q.push(rows::COUNT_COLS);
            let updated = q.build().fetch_all(&mut *conn).await.map_err(db_err)?;
            for row in &updated {
                use sqlx::Row;
                let id: Uuid = row.try_get("id").map_err(db_err)?;
                let old = JobStatus::parse(&row.try_get::<String, _>("status").map_err(db_err)?)?;
                let new = JobStatus::derive(&rows::counts(row)?);
                if new != old {
                    set_status(conn, id, new, now).await?;
                }
                out.insert(id, new);
            }
        }
        Ok(out)
    }
}

async fn set_status(conn: &mut SqliteConnection, id: Uuid, s: JobStatus, now: i64) -> Result<()> {
    sqlx::query("UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?")
        .bind(s.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Rows of `executions` (columns `cols`) whose id is in `ids`, in no particular order.
pub(crate) async fn executions_by_id(
    conn: &mut SqliteConnection,
    cols: &str,
    ids: &[Uuid],
) -> Result<Vec<sqlx::sqlite::SqliteRow>> {
    let mut out = Vec::with_capacity(ids.len());
    for part in ids.chunks(CHUNK * 4) {
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("SELECT {cols} FROM executions WHERE id IN ("));
        let mut sep = q.separated(", ");
        for id in part {
            sep.push_bind(*id);
        }
        q.push(")");
        out.extend(q.build().fetch_all(&mut *conn).await.map_err(db_err)?);
    }
    Ok(out)
}

/// Counts of a list of states.
pub(crate) fn count(states: impl IntoIterator<Item = ExecutionStatus>) -> StatusCounts {
    let mut c = StatusCounts::default();
    for s in states {
        let n = match s {
            ExecutionStatus::Pending => &mut c.pending,
            ExecutionStatus::Running => &mut c.running,
            ExecutionStatus::Completed => &mut c.completed,
            ExecutionStatus::Failed => &mut c.failed,
            ExecutionStatus::Timeout => &mut c.timeout,
            ExecutionStatus::Cancelled => &mut c.cancelled,
            ExecutionStatus::Lost => &mut c.lost,
        };
        *n += 1;
    }
    c
}
