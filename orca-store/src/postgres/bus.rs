//! [`PgEventBus`]: events to every node over LISTEN/NOTIFY.

use std::fmt;
use std::sync::Arc;

use orca_core::{Error, Event, EventBus, Result, async_trait};
use sqlx::postgres::PgPool;
use tokio::sync::broadcast;

use super::PostgresStore;
use super::error::db;
use super::listen::{Envelope, Notifier};

/// PostgreSQL keeps NOTIFY payloads under 8000 bytes; stay clear of it.
const MAX_PAYLOAD: usize = 7000;

/// An [`EventBus`] shared by every node on one database.
///
/// - Subscribers on this node get this node's events at once, with output chunks inline.
/// - Other nodes get them through `NOTIFY` (delivered when the statement commits, in
///   publication order per publisher), with output events **by reference**: `chunks` is empty
///   and `first_seq..=last_seq` says which chunks to read from the store.
/// - [`Event::AuthChanged`] (users, grants or tokens changed) travels like any other event, so
///   every node's credential cache hears of a logout or a disabled user at once.
/// - The LISTEN connection reconnects by itself; events sent while it is down are missed
///   (the contract allows it: watchers re-read the store). Once it is back, this node's
///   subscribers get an `AuthChanged` without a user, since one may have been missed.
#[derive(Clone)]
pub struct PgEventBus {
    pool: PgPool,
    channel: String,
    notifier: Arc<Notifier>,
}

impl fmt::Debug for PgEventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgEventBus")
            .field("channel", &self.channel)
            .field("node", &self.notifier.id)
            .finish_non_exhaustive()
    }
}

impl PgEventBus {
    /// The bus of `store`'s database and schema. Shares the store's pool and LISTEN connection;
    /// returns once that connection listens, so events published afterwards on any node reach
    /// subscribers of this bus.
    pub async fn new(store: &PostgresStore) -> Result<Self> {
        Ok(PgEventBus {
            pool: store.pool().clone(),
            channel: store.channels().events.clone(),
            notifier: store.notifier().await?,
        })
    }
}

/// Split events into NOTIFY payloads (JSON envelopes under [`MAX_PAYLOAD`] bytes), output
/// events stripped of their chunks.
pub(crate) fn payloads(node: uuid::Uuid, events: &[Event]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut batch: Vec<Event> = Vec::new();
    let mut size = 0;
    for e in events {
        let e = match e {
            Event::Output {
                execution_id,
                job_id,
                first_seq,
                last_seq,
                ..
            } => Event::Output {
                execution_id: *execution_id,
                job_id: *job_id,
                first_seq: *first_seq,
                last_seq: *last_seq,
                chunks: Vec::new(),
            },
            other => other.clone(),
        };
        let len = serde_json::to_string(&e)?.len() + 1;
        if len + 64 > MAX_PAYLOAD {
            return Err(Error::invalid(format!(
                "an event of {len} bytes is too large for a PostgreSQL notification"
            )));
        }
        if size + len + 64 > MAX_PAYLOAD {
            out.push(serde_json::to_string(&Envelope {
                p: node,
                e: std::mem::take(&mut batch),
            })?);
            size = 0;
        }
        size += len;
        batch.push(e);
    }
    if !batch.is_empty() {
        out.push(serde_json::to_string(&Envelope { p: node, e: batch })?);
    }
    Ok(out)
}

#[async_trait]
impl EventBus for PgEventBus {
    async fn publish(&self, events: Vec<Event>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let payloads = payloads(self.notifier.id, &events)?;
        for e in events {
            // No local subscriber is fine.
            let _ = self.notifier.events.send(Arc::new(e));
        }
        // One statement: its notifications are queued in order and delivered at commit.
        sqlx::query(
            "SELECT pg_notify($1, p) FROM (SELECT p, i FROM unnest($2::text[])
                    WITH ORDINALITY AS t(p, i) ORDER BY i) s",
        )
        .bind(&self.channel)
        .bind(&payloads)
        .execute(&self.pool)
        .await
        .map_err(db("publishing events"))?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.notifier.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orca_core::ids::{ExecutionId, JobId};
    use orca_core::model::{OutputChunk, Stream};

    #[test]
    fn output_travels_by_reference_and_payloads_stay_small() {
        let execution_id = ExecutionId::new();
        let job_id = JobId::new();
        let chunk = OutputChunk {
            execution_id,
            seq: 0,
            stream: Stream::Stdout,
            data: vec![b'x'; 100_000].into(),
            at: chrono::Utc::now(),
        };
        let mut events = vec![Event::Output {
            execution_id,
            job_id,
            first_seq: 0,
            last_seq: 0,
            chunks: vec![chunk],
        }];
        for i in 0..200 {
            events.push(Event::Job {
                job_id,
                status: orca_core::model::JobStatus::Running,
            });
            if i % 50 == 0 {
                events.push(Event::AuthChanged {
                    user_id: (i % 100 == 0).then(orca_core::ids::UserId::new),
                });
            }
        }
        let node = uuid::Uuid::now_v7();
        let p = payloads(node, &events).unwrap();
        assert!(p.len() > 1);
        let mut back = Vec::new();
        for s in &p {
            assert!(s.len() < 8000);
            let env: Envelope = serde_json::from_str(s).unwrap();
            assert_eq!(env.p, node);
            back.extend(env.e);
        }
        assert_eq!(back.len(), events.len());
        match &back[0] {
            Event::Output {
                chunks,
                first_seq,
                last_seq,
                ..
            } => {
                assert!(chunks.is_empty());
                assert_eq!((*first_seq, *last_seq), (0, 0));
            }
            e => panic!("unexpected {e:?}"),
        }
        assert_eq!(&back[1..], &events[1..]);
    }
}
