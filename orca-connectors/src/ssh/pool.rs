//! Connection reuse: one authenticated connection per (system, address, user, credential),
//! shared by concurrent commands through several channels, below the server's `MaxSessions`.
//!
//! - Concurrent first uses of a key share one connection attempt (and its error).
//! - A connection that broke (keepalives unanswered, server gone) is dropped and replaced on
//!   next use.
//! - A connection with no running command for `idle_timeout` is closed by a reaper task.
//! - All connections together stay under `max_connections`: at the cap, the least recently
//!   used idle connection is closed, otherwise new connections wait for a free place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use orca_core::ids::SystemId;
use orca_core::{Error, ErrorKind, Result};
use russh::Channel;
use russh::client::{Handle, Msg};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::SshConfig;
use super::client::ClientHandler;

/// Channels per connection kept free for stopping commands.
const KILL_CHANNELS: usize = 2;

/// What makes two targets share a connection. `credential` is a SHA-256 digest of the secret,
/// kept in memory only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub system: SystemId,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub policy: &'static str,
    pub credential: [u8; 32],
}

type Connecting = Shared<BoxFuture<'static, Result<Arc<Conn>>>>;

enum Slot {
    Ready(Arc<Conn>),
    Connecting(Connecting),
}

/// One authenticated connection.
pub(crate) struct Conn {
    handle: Handle<ClientHandler>,
    run_slots: Arc<Semaphore>,
    capacity: AtomicUsize,
    kill_slots: Arc<Semaphore>,
    last_used: Mutex<Instant>,
    broken: AtomicBool,
    _global: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("alive", &self.alive())
            .field("capacity", &self.capacity.load(Ordering::Relaxed))
            .finish()
    }
}

impl Conn {
    /// Whether the connection can take new channels.
    pub(crate) fn alive(&self) -> bool {
        !self.broken.load(Ordering::Relaxed) && !self.handle.is_closed()
    }
    fn idle(&self) -> bool {
        self.run_slots.available_permits() >= self.capacity.load(Ordering::Relaxed)
            && self.kill_slots.available_permits() == KILL_CHANNELS
    }
    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
    /// Mark broken so nobody starts new commands on it.
    pub(crate) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
        self.run_slots.close();
    }
    /// Open a session channel.
    pub(crate) async fn open(&self) -> std::result::Result<Channel<Msg>, russh::Error> {
        self.handle.channel_open_session().await
    }
    /// Open a channel from the reserve kept for stopping commands (waits up to `wait` for a
    /// free one).
    pub(crate) async fn open_reserved(
        &self,
        wait: Duration,
    ) -> Option<(Channel<Msg>, OwnedSemaphorePermit)> {
        let permit = tokio::time::timeout(wait, self.kill_slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        let ch = self.open().await.ok()?;
        Some((ch, permit))
    }
    async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "idle", "en")
            .await;
    }
}

/// A place on a connection for one command.
pub(crate) struct Lease {
    pub conn: Arc<Conn>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Lease {
    /// The server refused a channel although we were under our limit: its `MaxSessions` is
    /// lower. Shrink this connection's capacity by one (keeping at least one) and wait for a
    /// place again. Returns false if the capacity cannot shrink further.
    pub(crate) async fn shrink(&mut self) -> bool {
        let cap = self.conn.capacity.load(Ordering::Relaxed);
        if cap <= 1 {
            return false;
        }
        self.conn.capacity.store(cap - 1, Ordering::Relaxed);
        if let Some(p) = self.permit.take() {
            p.forget();
        }
        match self.conn.run_slots.clone().acquire_owned().await {
            Ok(p) => {
                self.permit = Some(p);
                true
            }
            Err(_) => false,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.conn.touch();
    }
}

struct PoolInner {
    cfg: SshConfig,
    slots: Mutex<HashMap<PoolKey, Slot>>,
    global: Arc<Semaphore>,
    reaper: AtomicBool,
    connects: AtomicU64,
}

/// The pool.
pub(crate) struct Pool {
    inner: Arc<PoolInner>,
}

impl Pool {
    pub(crate) fn new(cfg: SshConfig) -> Self {
        Pool {
            inner: Arc::new(PoolInner {
                global: Arc::new(Semaphore::new(cfg.max_connections)),
                cfg,
                slots: Mutex::new(HashMap::new()),
                reaper: AtomicBool::new(false),
                connects: AtomicU64::new(0),
            }),
        }
    }

    /// Connections open now.
    pub(crate) fn open_connections(&self) -> usize {
        self.inner.cfg.max_connections - self.inner.global.available_permits()
    }

    /// Connections opened since the start.
    pub(crate) fn connects(&self) -> u64 {
        self.inner.connects.load(Ordering::Relaxed)
    }

    /// Close every connection that runs nothing.
    pub(crate) fn close_idle(&self) {
        self.inner.reap(Duration::ZERO);
    }

    /// A place on a connection for `key`, connecting with `connect` if needed.
    pub(crate) async fn acquire<F>(&self, key: &PoolKey, connect: F) -> Result<Lease>
    where
        F: Fn() -> BoxFuture<'static, Result<Handle<ClientHandler>>>,
    {
        self.start_reaper();
        for _ in 0..3 {
            let waiting = {
                let mut map = self.inner.lock();
                match map.get(key) {
                    Some(Slot::Ready(c)) if c.alive() => Ok(c.clone()),
                    Some(Slot::Connecting(f)) => Err(f.clone()),
                    _ => {
                        let f = self.inner.clone().connecting(key.clone(), connect());
                        map.insert(key.clone(), Slot::Connecting(f.clone()));
                        Err(f)
                    }
                }
            };
            let conn = match waiting {
                Ok(c) => c,
                Err(f) => f.await?,
            };
            match conn.run_slots.clone().acquire_owned().await {
                Ok(permit) if conn.alive() => {
                    return Ok(Lease {
                        conn,
                        permit: Some(permit),
                    });
                }
                _ => self.discard(key, &conn),
            }
        }
        Err(Error::new(
            ErrorKind::ConnectionFailed,
            format!(
                "the connection to {}:{} broke again right after it was opened",
                key.host, key.port
            ),
        ))
    }

    /// Drop `conn` from the pool (it broke).
    pub(crate) fn discard(&self, key: &PoolKey, conn: &Arc<Conn>) {
        conn.mark_broken();
        let mut map = self.inner.lock();
        if matches!(map.get(key), Some(Slot::Ready(c)) if Arc::ptr_eq(c, conn)) {
            map.remove(key);
        }
    }

    fn start_reaper(&self) {
        if self.inner.reaper.swap(true, Ordering::Relaxed) {
            return;
        }
        let weak: Weak<PoolInner> = Arc::downgrade(&self.inner);
        let idle = self.inner.cfg.idle_timeout;
        let period = (idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { break };
                inner.reap(idle);
            }
        });
    }
}

impl PoolInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A shared connection attempt that files its result in the map.
    fn connecting(
        self: Arc<Self>,
        key: PoolKey,
        connect: BoxFuture<'static, Result<Handle<ClientHandler>>>,
    ) -> Connecting {
        async move {
            let global = self.global_permit().await?;
            let result = connect.await;
            let mut map = self.lock();
            match result {
                Ok(handle) => {
                    self.connects.fetch_add(1, Ordering::Relaxed);
                    let cap = self.cfg.max_channels_per_connection;
                    let conn = Arc::new(Conn {
                        handle,
                        run_slots: Arc::new(Semaphore::new(cap)),
                        capacity: AtomicUsize::new(cap),
                        kill_slots: Arc::new(Semaphore::new(KILL_CHANNELS)),
                        last_used: Mutex::new(Instant::now()),
                        broken: AtomicBool::new(false),
                        _global: global,
                    });
                    map.insert(key, Slot::Ready(conn.clone()));
                    Ok(conn)
                }
                Err(e) => {
                    if matches!(map.get(&key), Some(Slot::Connecting(_))) {
                        map.remove(&key);
                    }
                    Err(e)
                }
            }
        }
        .boxed()
        .shared()
    }

    /// A place under the global cap; at the cap, closes the least recently used idle
    /// connection first, then waits.
    async fn global_permit(&self) -> Result<OwnedSemaphorePermit> {
        if let Ok(p) = self.global.clone().try_acquire_owned() {
            return Ok(p);
        }
        let victim = {
            let mut map = self.lock();
            let lru = map
                .iter()
                .filter_map(|(k, s)| match s {
                    Slot::Ready(c) if c.idle() && Arc::strong_count(c) == 1 => {
                        Some((k.clone(), c.idle_for()))
                    }
                    _ => None,
                })
                .max_by_key(|(_, d)| *d)
                .map(|(k, _)| k);
            lru.and_then(|k| map.remove(&k))
        };
        if let Some(Slot::Ready(c)) = victim {
            tokio::spawn(async move { c.close().await });
        }
        self.global
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::unexpected("the SSH connection pool was shut down"))
    }

    /// Close connections idle for at least `idle`, and forget broken ones.
    fn reap(&self, idle: Duration) {
        let gone: Vec<Arc<Conn>> = {
            let mut map = self.lock();
            let keys: Vec<PoolKey> = map
                .iter()
                .filter(|(_, s)| match s {
                    Slot::Ready(c) => {
                        !c.alive()
                            || (c.idle() && c.idle_for() >= idle && Arc::strong_count(c) == 1)
                    }
                    Slot::Connecting(_) => false,
                })
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter()
                .filter_map(|k| match map.remove(k) {
                    Some(Slot::Ready(c)) => Some(c),
                    _ => None,
                })
                .collect()
        };
        for c in gone {
            c.mark_broken();
            tokio::spawn(async move { c.close().await });
        }
    }
}
