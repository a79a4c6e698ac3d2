//! Worker writes under a lease: append_output and finish, each batch in one transaction.

use std::collections::{HashMap, HashSet};

use orca_core::ids::ExecutionId;
use orca_core::model::{Execution, ExecutionStatus, Finish, Lease};
use orca_core::{Error, Finished, OutputBatch, Result};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::SqliteStore;
use super::error::db_err;
use super::rows::{self, i, us};
use super::tx::{self, CHUNK, Deltas};

fn not_found(id: ExecutionId) -> Error {
    Error::not_found(format!("execution {id} not found")).with_execution(id)
}

/// What a worker write needs to know about an execution.
struct State {
    running: bool,
    token: Option<Uuid>,
    next_seq: u64,
    added: u64,
    appended: u64,
}

impl State {
    fn check(&self, lease: &Lease) -> Result<()> {
        if self.running && self.token == Some(lease.token.0) {
            Ok(())
        } else {
            Err(Error::lease_lost(lease.execution_id))
        }
    }
}

async fn states(
    conn: &mut sqlx::SqliteConnection,
    leases: impl Iterator<Item = &Lease>,
) -> Result<HashMap<Uuid, State>> {
    let ids: Vec<Uuid> = leases.map(|l| l.execution_id.0).collect();
    let cols = "id, status, lease_token, next_seq";
    let mut out = HashMap::with_capacity(ids.len());
    for row in tx::executions_by_id(conn, cols, &ids).await? {
        let status: String = row.try_get("status").map_err(db_err)?;
        let seq: i64 = row.try_get("next_seq").map_err(db_err)?;
        out.insert(
            row.try_get("id").map_err(db_err)?,
            State {
                running: status == ExecutionStatus::Running.as_str(),
                token: row.try_get("lease_token").map_err(db_err)?,
                next_seq: u64::try_from(seq).unwrap_or(0),
                added: 0,
                appended: 0,
            },
        );
    }
    Ok(out)
}

fn check_batch(b: &OutputBatch, st: &State) -> Result<()> {
    st.check(&b.lease)?;
    let id = b.lease.execution_id;
    for (k, c) in b.chunks.iter().enumerate() {
        if c.execution_id != id {
            return Err(Error::invalid(format!(
                "an output chunk of execution {} was sent under the lease of execution {id}",
                c.execution_id
            ))
            .with_execution(id));
        }
        let expected = st.next_seq + k as u64;
        if c.seq != expected {
            return Err(Error::conflict(format!(
                "output of execution {id} must continue at seq {expected}, got {}",
                c.seq
            ))
            .with_execution(id));
        }
    }
    Ok(())
}

pub(crate) async fn append_output(
    s: &SqliteStore,
    batches: &[OutputBatch],
) -> Result<Vec<Result<()>>> {
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = tx::begin(s).await?;
    let mut state = states(&mut tx, batches.iter().map(|b| &b.lease)).await?;
    let mut results = Vec::with_capacity(batches.len());
    let mut chunks = Vec::new();
    for b in batches {
        let id = b.lease.execution_id;
        let Some(st) = state.get_mut(&id.0) else {
            results.push(Err(not_found(id)));
            continue;
        };
        match check_batch(b, st) {
            Ok(()) => {
                st.next_seq += b.chunks.len() as u64;
                st.appended += b.chunks.len() as u64;
                st.added += b.chunks.iter().map(|c| c.data.len() as u64).sum::<u64>();
                chunks.extend(b.chunks.iter());
                results.push(Ok(()));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    for part in chunks.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO output_chunks (execution_id, seq, stream, data, at) ",
        );
        q.push_values(part, |mut b, c| {
            b.push_bind(c.execution_id.0)
                .push_bind(i(c.seq))
                .push_bind(c.stream.as_str())
                .push_bind(c.data.to_vec())
                .push_bind(us(c.at));
        });
        q.build().execute(&mut *tx).await.map_err(db_err)?;
    }
    let touched: Vec<(&Uuid, &State)> = state.iter().filter(|(_, st)| st.appended > 0).collect();
    for part in touched.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE executions SET next_seq = v.column2, output_bytes = output_bytes + v.column3 FROM (",
        );
        q.push_values(part, |mut b, (id, st)| {
            b.push_bind(**id)
                .push_bind(i(st.next_seq))
                .push_bind(i(st.added));
        });
        q.push(") AS v WHERE executions.id = v.column1");
        q.build().execute(&mut *tx).await.map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(results)
}

pub(crate) async fn finish(
    s: &SqliteStore,
    items: &[(Lease, Finish)],
) -> Result<Vec<Result<Finished>>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let now_us = us(s.now());
    let mut results: Vec<Option<Result<Execution>>> = (0..items.len()).map(|_| None).collect();
    let mut todo = Vec::with_capacity(items.len());
    for (k, (lease, f)) in items.iter().enumerate() {
        match ExecutionStatus::Running.check_transition(f.status, lease.execution_id) {
            Ok(()) => todo.push(k),
            Err(e) => results[k] = Some(Err(e)),
        }
    }
    let mut tx = tx::begin(s).await?;
    let mut deltas = Deltas::default();
    let mut failed = Vec::new();
    // The lease guard is in the UPDATE itself; an execution named twice in one batch is
    // written once per wave, so the second write sees the first.
    while !todo.is_empty() {
        let mut seen = HashSet::with_capacity(todo.len());
        let (wave, rest): (Vec<usize>, Vec<usize>) = todo
            .iter()
            .partition(|k| seen.insert(items[**k].0.execution_id));
        let mut stored: HashMap<Uuid, Execution> = HashMap::with_capacity(wave.len());
        for part in wave.chunks(CHUNK) {
            for row in finish_rows(&mut tx, items, part, now_us).await? {
                let e = rows::execution(&row)?;
                stored.insert(e.id.0, e);
            }
        }
        for k in wave {
            match stored.remove(&items[k].0.execution_id.0) {
                Some(e) => {
                    deltas.moved(
                        e.job_id.0,
                        e.system_id.0,
                        ExecutionStatus::Running,
                        e.status,
                    );
                    results[k] = Some(Ok(e));
                }
                None => failed.push(k),
            }
        }
        todo = rest;
    }
    if !failed.is_empty() {
        let ids: Vec<Uuid> = failed.iter().map(|k| items[*k].0.execution_id.0).collect();
        let mut exist = HashSet::with_capacity(ids.len());
        for row in tx::executions_by_id(&mut tx, "id", &ids).await? {
            exist.insert(row.try_get::<Uuid, _>("id").map_err(db_err)?);
        }
        for k in failed {
            let id = items[k].0.execution_id;
            results[k] = Some(Err(if exist.contains(&id.0) {
                Error::lease_lost(id)
            } else {
                not_found(id)
            }));
        }
    }
    let statuses = deltas.apply(&mut tx, now_us).await?;
    tx.commit().await.map_err(db_err)?;
    results
        .into_iter()
        .map(|r| match r {
            Some(Ok(execution)) => {
                let job_status = statuses.get(&execution.job_id.0).copied().ok_or_else(|| {
                    Error::unexpected("a finished execution's job was not updated")
                })?;
                Ok(Ok(Finished {
                    execution,
                    job_status,
                }))
            }
            Some(Err(e)) => Ok(Err(e)),
            None => Err(Error::unexpected("a finish item was not processed")),
        })
        .collect()
}

/// End (or re-queue) the executions of `part` whose lease is current; returns them as stored.
/// A re-queue of an execution a user asked to cancel ends it as cancelled instead.
async fn finish_rows(
    conn: &mut sqlx::SqliteConnection,
    items: &[(Lease, Finish)],
    part: &[usize],
    now_us: i64,
) -> Result<Vec<sqlx::sqlite::SqliteRow>> {
    const REQUEUE: &str = "(v.column3 = 'pending' AND NOT cancel_requested)";
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "UPDATE executions SET \
         status = CASE WHEN v.column3 = 'pending' AND cancel_requested THEN 'cancelled' \
         ELSE v.column3 END, \
         attempt = attempt + {REQUEUE}, \
         not_before = CASE WHEN {REQUEUE} THEN v.column4 ELSE not_before END, \
         completed_at = CASE WHEN {REQUEUE} THEN NULL ELSE v.column9 END, \
         exit_code = v.column5, signal = v.column6, error = v.column7, \
         output_dropped = output_dropped + v.column8, \
         lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL FROM ("
    ));
    q.push_values(part, |mut b, k| {
        let (lease, f) = &items[*k];
        b.push_bind(lease.execution_id.0)
            .push_bind(lease.token.0)
            .push_bind(f.status.as_str())
            .push_bind(f.retry_at.map(us).unwrap_or(now_us))
            .push_bind(f.exit_code)
            .push_bind(f.signal.clone())
            .push_bind(f.error.clone())
            .push_bind(i(f.output_dropped))
            .push_bind(now_us);
    });
    q.push(
        ") AS v WHERE executions.id = v.column1 AND executions.status = 'running' \
         AND executions.lease_token = v.column2 RETURNING ",
    );
    q.push(rows::EXEC_COLS);
    q.build().fetch_all(conn).await.map_err(db_err)
}
