//! Opening the database and building the [`Orca`] facade over it, the same way for every verb.

use std::sync::Arc;
use std::time::Duration;

use orca_connectors::local::LocalConnector;
use orca_connectors::ssh::{SshConfig, SshConnector};
use orca_connectors::winrm::WinRmConnector;
use orca_core::location::DatabaseLocation;
use orca_core::{Clock, Error, EventBus, KeyRing, Orca, Result, Store, SystemClock};
use orca_store::postgres::{PgEventBus, PostgresOptions, PostgresStore, WorkWaker};
use orca_store::sqlite::{SqliteOptions, SqliteStore};

use crate::config::Config;

/// How a command uses the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the engine (claims work). On SQLite, only one process may.
    Engine,
    /// Reads and writes records beside a running server (admin verbs).
    Client,
}

/// An open database.
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The event bus across nodes (PostgreSQL), if any.
    pub bus: Option<Arc<dyn EventBus>>,
    /// Wake-ups when another node submits work (PostgreSQL).
    pub waker: Option<WorkWaker>,
    /// Where it is, for messages (no password).
    pub location: DatabaseLocation,
    pg: Option<PostgresStore>,
}

impl Opened {
    /// Whether several processes may share this database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.location, DatabaseLocation::Postgres(_))
    }

    /// Close connections (PostgreSQL's LISTEN connection included).
    pub async fn close(&self) {
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }
}

/// Open the configured database (migrating it if needed). With `live`, a PostgreSQL database
/// also gets its event bus and work waker (for processes that run the engine or serve live
/// updates).
pub async fn open(cfg: &Config, role: Role, live: bool, clock: Arc<dyn Clock>) -> Result<Opened> {
    let location = cfg.database()?;
    match &location {
        DatabaseLocation::Sqlite(path) => {
            let mut o = SqliteOptions::new(path.clone()).synchronous(cfg.database.synchronous);
            if role == Role::Client {
                o = o.client();
            }
            let store = SqliteStore::open(o, clock).await.map_err(|e| {
                let hint = if role == Role::Engine && e.message().contains("holds the lock") {
                    " (is `orca serve` already running on this data directory? stop it, or \
                     give this one its own --data-dir)"
                } else {
                    ""
                };
                Error::new(
                    e.kind(),
                    format!("cannot open the database {location}: {}{hint}", e.message()),
                )
            })?;
            crate::datadir::make_database_private(path);
            Ok(Opened {
                store: Arc::new(store),
                bus: None,
                waker: None,
                location,
                pg: None,
            })
        }
        DatabaseLocation::Postgres(url) => {
            let mut o =
                PostgresOptions::new(url.clone()).max_connections(cfg.database.max_connections);
            o.schema = cfg.database.schema.clone();
            o.connect_timeout = Duration::from_secs_f64(cfg.database.connect_timeout);
            let store = PostgresStore::connect(o, clock).await.map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("cannot open the database {location}: {}", e.message()),
                )
            })?;
            let (bus, waker) = if live {
                let bus: Arc<dyn EventBus> = Arc::new(PgEventBus::new(&store).await?);
                (Some(bus), Some(store.work_waker().await?))
            } else {
                (None, None)
            };
            Ok(Opened {
                store: Arc::new(store.clone()),
                bus,
                waker,
                location,
                pg: Some(store),
            })
        }
    }
}

/// Build the facade over `store` with every connector, the key ring and the engine settings.
pub fn build(
    cfg: &Config,
    store: Arc<dyn Store>,
    bus: Option<Arc<dyn EventBus>>,
    ring: KeyRing,
    clock: Arc<dyn Clock>,
) -> Result<Orca> {
    let mut b = Orca::builder()
        .store(store)
        .keyring(ring)
        .clock(clock)
        .engine_config(cfg.engine())
        .connector(Arc::new(LocalConnector::new(cfg.local.connector())?))
        .connector(Arc::new(SshConnector::new(SshConfig::default())?))
        .connector(Arc::new(WinRmConnector::new()));
    if let Some(bus) = bus {
        b = b.bus(bus);
    }
    b.build()
}

/// The wall clock, shared.
pub fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
