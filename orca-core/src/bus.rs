//! The EventBus seam: live state and output events, in-process or across nodes.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::Result;
use crate::ids::{ExecutionId, JobId, SystemId, UserId};
use crate::model::{ExecutionStatus, JobStatus, OutputChunk};

/// Something that happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An execution changed state.
    Execution {
        /// Execution.
        execution_id: ExecutionId,
        /// Its job.
        job_id: JobId,
        /// Its system.
        system_id: SystemId,
        /// New state.
        status: ExecutionStatus,
    },
    /// Output was stored for an execution: chunks `first_seq..=last_seq`. `chunks` carries them
    /// inline when the bus can (in-process); otherwise it is empty and readers fetch them from
    /// the Store by seq.
    Output {
        /// Execution.
        execution_id: ExecutionId,
        /// Its job.
        job_id: JobId,
        /// First seq.
        first_seq: u64,
        /// Last seq.
        last_seq: u64,
        /// The chunks, if carried inline.
        chunks: Vec<OutputChunk>,
    },
    /// A job changed state.
    Job {
        /// Job.
        job_id: JobId,
        /// New state.
        status: JobStatus,
    },
    /// Users, grants or tokens changed (a user updated or disabled, grants replaced, tokens
    /// revoked), or may have: whoever caches what it read about them (the HTTP API's credential
    /// cache) must read the store again. It carries no secret and no new state, only whose
    /// records changed when that is known.
    ///
    /// Published by the writer after the write committed. A bus that may have missed such
    /// events from other nodes also delivers one with no user to its own subscribers
    /// ([`Event::AuthChanged`] with `user_id: None`), e.g. after a lost connection came back.
    AuthChanged {
        /// The user whose records changed, if known; `None`: any user.
        user_id: Option<UserId>,
    },
}

impl Event {
    /// The execution it concerns, if any.
    pub fn execution_id(&self) -> Option<ExecutionId> {
        match self {
            Event::Execution { execution_id, .. } | Event::Output { execution_id, .. } => {
                Some(*execution_id)
            }
            Event::Job { .. } | Event::AuthChanged { .. } => None,
        }
    }
    /// The job it concerns, if any.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Event::Execution { job_id, .. }
            | Event::Output { job_id, .. }
            | Event::Job { job_id, .. } => Some(*job_id),
            Event::AuthChanged { .. } => None,
        }
    }
}

/// Publishes events to every subscriber (on every node, for multi-node buses).
///
/// # Contract
/// - Events published by one publisher reach each subscriber in publication order.
/// - A subscriber that falls behind may miss events (it sees `RecvError::Lagged`); readers that
///   need completeness (watch) re-read the Store, which is the source of truth.
/// - `publish` never blocks on slow subscribers.
#[async_trait]
pub trait EventBus: Debug + Send + Sync + 'static {
    /// Publish events.
    async fn publish(&self, events: Vec<Event>) -> Result<()>;
    /// Subscribe to all events from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;
}

/// The in-process bus (tokio broadcast).
#[derive(Debug)]
pub struct LocalBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl LocalBus {
    /// A bus whose subscribers may lag by `capacity` events.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        LocalBus { tx }
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, events: Vec<Event>) -> Result<()> {
        for e in events {
            // No subscribers is fine.
            let _ = self.tx.send(Arc::new(e));
        }
        Ok(())
    }
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_bus_delivers_auth_changes() {
        let bus = LocalBus::default();
        let mut rx = bus.subscribe();
        let user_id = UserId::new();
        bus.publish(vec![
            Event::AuthChanged {
                user_id: Some(user_id),
            },
            Event::AuthChanged { user_id: None },
        ])
        .await
        .unwrap();
        let first = rx.recv().await.unwrap();
        assert_eq!(
            *first,
            Event::AuthChanged {
                user_id: Some(user_id)
            }
        );
        assert_eq!((first.job_id(), first.execution_id()), (None, None));
        assert_eq!(
            *rx.recv().await.unwrap(),
            Event::AuthChanged { user_id: None }
        );
    }

    #[test]
    fn auth_changes_serialise_small_and_without_a_user_when_unknown() {
        let json = serde_json::to_string(&Event::AuthChanged { user_id: None }).unwrap();
        assert_eq!(json, r#"{"type":"auth_changed","user_id":null}"#);
        let back: Event = serde_json::from_str(r#"{"type":"auth_changed"}"#).unwrap();
        assert_eq!(back, Event::AuthChanged { user_id: None });
        let user_id = UserId::new();
        let e = Event::AuthChanged {
            user_id: Some(user_id),
        };
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
