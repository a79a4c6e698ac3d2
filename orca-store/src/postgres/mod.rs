//! PostgreSQL store and event bus (feature `postgres`): one or many Orca nodes on one database.
//!
//! The database is the only coordinator. Nodes claim work with `FOR UPDATE SKIP LOCKED`,
//! leases carry a fencing token that every worker write checks, lease expiry uses one clock
//! (the database's, by default), and a trigger refuses any illegal execution state change, so
//! a terminal state never changes even if a buggy or partitioned node tries.
//!
//! - [`PostgresStore`]: the [`orca_core::Store`]. Each job keeps its per-state counts, so its
//!   status never needs a scan of its executions. New pending work sends one `NOTIFY` per
//!   statement; [`PostgresStore::work_waker`] turns those into wake-ups for idle workers (keep a
//!   slow poll as a safety net: notifications sent while the LISTEN connection is down are
//!   lost, and a reconnect wakes waiters once).
//! - [`PgEventBus`]: the [`orca_core::EventBus`] across nodes, over `LISTEN`/`NOTIFY`. Output
//!   events travel by reference (first/last seq); readers fetch the chunks from the store.
//!
//! ```no_run
//! # async fn demo() -> orca_core::Result<()> {
//! use std::sync::Arc;
//! use orca_store::postgres::{PgEventBus, PostgresOptions, PostgresStore};
//!
//! let clock = Arc::new(orca_core::SystemClock);
//! let store = PostgresStore::connect(
//!     PostgresOptions::new("postgres://orca@db.example/orca").max_connections(20),
//!     clock,
//! )
//! .await?;
//! let bus = PgEventBus::new(&store).await?;
//! let mut waker = store.work_waker().await?;
//! tokio::spawn(async move {
//!     while waker.notified().await {
//!         // executor.wake();
//!     }
//! });
//! # let _ = bus;
//! # Ok(()) }
//! ```

mod audit;
mod backend;
mod bus;
mod claim;
mod config;
mod connect;
mod error;
mod jobs;
mod listen;
mod output;
mod queue;
mod rows;
mod systems;
mod users;

use std::fmt;
use std::sync::Arc;

use orca_core::model::{AuditRecord, Timestamp};
use orca_core::{Clock, Result};
use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::types::Json;

pub use bus::PgEventBus;
pub use config::{ClockSource, PostgresOptions, redact_url};
pub use connect::SCHEMA_VERSION;
pub use listen::WorkWaker;

use error::db;
use listen::Notifier;

/// An [`orca_core::Store`] on PostgreSQL, shared by any number of Orca nodes.
///
/// Cloning is cheap (the pool and the LISTEN connection are shared).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    schema: String,
    clock: Arc<dyn Clock>,
    options: PostgresOptions,
    connect: PgConnectOptions,
    channels: Channels,
    notifier: tokio::sync::OnceCell<Arc<Notifier>>,
}

/// The NOTIFY channels of one schema.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    /// New pending work.
    pub work: String,
    /// Event bus.
    pub events: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &connect::describe(&self.inner.connect))
            .field("schema", &self.inner.schema)
            .field("clock", &self.inner.options.clock)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connect, check the schema and migrate it if needed.
    ///
    /// `clock` is used when `options.clock` is [`ClockSource::Injected`]; with the default
    /// [`ClockSource::Database`] the store stamps times with the database's `now()`.
    ///
    /// Errors, with nothing written: [`orca_core::ErrorKind::InvalidInput`] for a malformed URL
    /// or schema name; [`orca_core::ErrorKind::ConnectionFailed`] (or `AuthFailed`) when the
    /// database cannot be reached; [`orca_core::ErrorKind::Incompatible`] when the schema holds
    /// tables that are not Orca's or was written by a newer Orca.
    pub async fn connect(options: PostgresOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let schema = options.schema_name()?;
        let (pool, connect) = connect::open(&options, &schema).await?;
        tracing::debug!(database = %connect::describe(&connect), %schema, "connected PostgreSQL store");
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                channels: Channels {
                    work: format!("orca_work_{schema}"),
                    events: format!("orca_events_{schema}"),
                },
                schema,
                clock,
                options,
                connect,
                notifier: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The connection pool (for operators' tools and tests).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema holding Orca's tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The options it was connected with.
    pub fn options(&self) -> &PostgresOptions {
        &self.inner.options
    }

    /// Wake-ups for idle workers: [`WorkWaker::notified`] returns each time new pending work
    /// was committed by any node (one notification per statement, however many executions).
    /// Starts this store's LISTEN connection on first use.
    pub async fn work_waker(&self) -> Result<WorkWaker> {
        Ok(self.notifier().await?.work_waker())
    }

    /// Close the pool and the LISTEN connection.
    pub async fn close(&self) {
        if let Some(n) = self.inner.notifier.get() {
            n.stop();
        }
        self.inner.pool.close().await;
    }

    /// The shared LISTEN task, started on first use.
    pub(crate) async fn notifier(&self) -> Result<Arc<Notifier>> {
        self.inner
            .notifier
            .get_or_try_init(|| async {
                Notifier::start(self.inner.connect.clone(), self.inner.channels.clone())
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    pub(crate) fn channels(&self) -> &Channels {
        &self.inner.channels
    }

    /// "Now" to bind into statements as `coalesce($n::timestamptz, now())`: the injected
    /// clock's time, or `None` for the database clock.
    pub(crate) fn now_param(&self) -> Option<Timestamp> {
        match self.inner.options.clock {
            config::ClockSource::Injected => Some(orca_core::model::micros(self.inner.clock.now())),
            config::ClockSource::Database => None,
        }
    }

    /// Send the "new pending work" notification (delivered when the transaction commits).
    pub(crate) async fn notify_work(&self, conn: &mut PgConnection) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(&self.inner.channels.work)
            .execute(conn)
            .await
            .map_err(db("notifying new work"))?;
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(n) = self.notifier.get() {
            n.stop();
        }
        if self.options.ephemeral {
            connect::drop_schema_blocking(self.connect.clone(), self.schema.clone());
        }
    }
}

/// Insert an audit record on `conn` (inside the caller's transaction).
pub(crate) async fn insert_audit(conn: &mut PgConnection, r: &AuditRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (id, at, event_type, actor, actor_id, resource_type, resource_id,
                            action, outcome, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(r.id.0)
    .bind(r.at)
    .bind(&r.event_type)
    .bind(&r.actor)
    .bind(r.actor_id.map(|u| u.0))
    .bind(&r.resource_type)
    .bind(&r.resource_id)
    .bind(&r.action)
    .bind(r.outcome.as_str())
    .bind(Json(&r.details))
    .execute(conn)
    .await
    .map_err(db("writing the audit record"))?;
    Ok(())
}
