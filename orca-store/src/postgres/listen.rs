//! The LISTEN side: one connection per store that receives "new work" and event-bus
//! notifications, reconnecting by itself, and fans them out in-process.
//!
//! Notifications sent while the connection is down are lost. Once it is back, the task wakes
//! idle workers once and delivers an [`Event::AuthChanged`] without a user to this node's
//! subscribers, so caches of users, grants and tokens do not outlive a change they missed.

use std::sync::Arc;
use std::time::Duration;

use orca_core::{Event, Result};
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPool, PgPoolOptions};
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;
use uuid::Uuid;

use super::Channels;
use super::error::db;

/// How many events a slow subscriber may lag behind before it sees `Lagged`.
const EVENT_CAPACITY: usize = 8192;

/// An event-bus notification: the publisher and its events (output without chunks).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Envelope {
    /// Publisher (a [`Notifier`] id): a node skips its own, delivered in-process already.
    pub p: Uuid,
    /// The events, in publication order.
    pub e: Vec<Event>,
}

/// The shared LISTEN task of a store.
#[derive(Debug)]
pub(crate) struct Notifier {
    pub id: Uuid,
    work: watch::Sender<u64>,
    pub events: broadcast::Sender<Arc<Event>>,
    task: AbortHandle,
}

impl Notifier {
    /// Open the LISTEN connection (errors surface here) and start the task that keeps it.
    pub async fn start(connect: PgConnectOptions, channels: Channels) -> Result<Notifier> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(connect);
        let listener = listen(&pool, &channels).await?;
        let id = Uuid::now_v7();
        let (work, _) = watch::channel(0u64);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let task = tokio::spawn(run(
            listener,
            pool,
            channels,
            id,
            work.clone(),
            events.clone(),
        ))
        .abort_handle();
        Ok(Notifier {
            id,
            work,
            events,
            task,
        })
    }

    pub fn work_waker(&self) -> WorkWaker {
        let mut rx = self.work.subscribe();
        rx.mark_unchanged();
        WorkWaker { rx }
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(pool: &PgPool, channels: &Channels) -> Result<PgListener> {
    let mut l = PgListener::connect_with(pool)
        .await
        .map_err(db("opening the LISTEN connection"))?;
    l.listen_all([channels.work.as_str(), channels.events.as_str()])
        .await
        .map_err(db("subscribing to notifications"))?;
    Ok(l)
}

async fn run(
    first: PgListener,
    pool: PgPool,
    channels: Channels,
    id: Uuid,
    work: watch::Sender<u64>,
    events: broadcast::Sender<Arc<Event>>,
) {
    let mut next = Some(first);
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut l = match next.take() {
            Some(l) => l,
            None => match listen(&pool, &channels).await {
                Ok(l) => {
                    tracing::info!(channel = %channels.work, "LISTEN connection re-established");
                    // Notifications sent while we were away are lost: wake everyone once, and
                    // tell subscribers that users, grants or tokens may have changed meanwhile
                    // (credential caches read the store again).
                    work.send_modify(|n| *n += 1);
                    let _ = events.send(Arc::new(Event::AuthChanged { user_id: None }));
                    backoff = Duration::from_millis(50);
                    l
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "LISTEN connection failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        loop {
            match l.try_recv().await {
                Ok(Some(n)) => dispatch(&n, &channels, id, &work, &events),
                Ok(None) => {
                    // Reconnect here rather than inside `try_recv`, so the "you may have
                    // missed notifications" signals above go out once LISTEN is back.
                    tracing::info!("LISTEN connection lost; reconnecting");
                    work.send_modify(|n| *n += 1);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    break;
                }
            }
        }
        drop(l);
        tokio::time::sleep(backoff).await;
    }
}

fn dispatch(
    n: &PgNotification,
    channels: &Channels,
    id: Uuid,
    work: &watch::Sender<u64>,
    events: &broadcast::Sender<Arc<Event>>,
) {
    if n.channel() == channels.work {
        work.send_modify(|c| *c += 1);
    } else if n.channel() == channels.events {
        match serde_json::from_str::<Envelope>(n.payload()) {
            Ok(env) if env.p == id => {}
            Ok(env) => {
                for e in env.e {
                    let _ = events.send(Arc::new(e));
                }
            }
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed event notification"),
        }
    }
}

/// Wakes an idle worker when new pending work was committed (see
/// [`super::PostgresStore::work_waker`]).
#[derive(Debug, Clone)]
pub struct WorkWaker {
    rx: watch::Receiver<u64>,
}

impl WorkWaker {
    /// Wait for the next "new work" notification since the last call (several notifications
    /// in between count once). Returns `false` once the store is closed.
    pub async fn notified(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// [`Self::notified`] with a timeout: `true` if notified within `timeout` (use it as the
    /// slow poll's sleep).
    pub async fn notified_within(&mut self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.rx.changed()).await,
            Ok(Ok(()))
        )
    }
}
