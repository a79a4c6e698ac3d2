//! [`Database`]: an open store with its event bus and work waker, and the facade built over it.

use std::fmt;
use std::sync::Arc;

use orca_core::location::DatabaseLocation;
use orca_core::{Error, EventBus, KeyRing, Orca, OrcaBuilder, Result, Store};

use crate::keys;
use crate::options::{Keys, OpenOptions};

/// An open database: the store, and on PostgreSQL the event bus between nodes and the wake-up
/// when another node submits work. [`OpenOptions::open`] does every step; a frontend that
/// wraps the store (audit layers...) takes them one by one:
///
/// 1. [`Database::open`]: parse the location, open (and migrate) the store;
/// 2. [`Database::key_ring`]: the key ring, by the key-file rule;
/// 3. [`Database::builder`]: the facade's builder with the store, the bus, the key ring, the
///    clock, the engine settings and every connector of this build's features;
/// 4. [`Database::start`]: start the engine and let other nodes wake it (if this process runs
///    it).
pub struct Database {
    store: Arc<dyn Store>,
    bus: Option<Arc<dyn EventBus>>,
    location: DatabaseLocation,
    options: OpenOptions,
    #[cfg(feature = "postgres")]
    waker: Option<orca_store::postgres::WorkWaker>,
    #[cfg(feature = "postgres")]
    pg: Option<orca_store::postgres::PostgresStore>,
}

impl Database {
    /// Open the store at the options' location, migrating it if needed.
    pub async fn open(options: OpenOptions) -> Result<Database> {
        let location = options.location()?;
        match &location {
            DatabaseLocation::Sqlite(path) => open_sqlite(path.clone(), location, options).await,
            DatabaseLocation::Postgres(url) => open_postgres(url.clone(), location, options).await,
        }
    }

    /// Where the data is (`Display` hides a password).
    pub fn location(&self) -> &DatabaseLocation {
        &self.location
    }

    /// Whether several processes may share this database (PostgreSQL).
    pub fn is_postgres(&self) -> bool {
        matches!(self.location, DatabaseLocation::Postgres(_))
    }

    /// Whether this process runs the engine.
    pub fn is_engine(&self) -> bool {
        self.options.engine
    }

    /// The store underneath, with no policy check, no audit record and no announcement of
    /// changes: for tests, benchmarks and store tooling. Applications and frontends use the
    /// facade ([`Database::builder`], [`Database::into_orca`]).
    pub fn raw_store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The event bus between nodes (PostgreSQL, when opened `live`).
    pub fn bus(&self) -> Option<&Arc<dyn EventBus>> {
        self.bus.as_ref()
    }

    /// The key ring, by the key-file rule (see [`crate::keys`]): the ring given to
    /// [`OpenOptions::keyring`], else the key file loaded (or created, when allowed and the
    /// database holds no credentials yet) and checked against the credentials in the
    /// database. A ring given to the options is handed out once; later calls read the key
    /// file of the location.
    pub async fn key_ring(&mut self) -> Result<KeyRing> {
        let file = match std::mem::replace(&mut self.options.keys, Keys::Beside) {
            Keys::Ring(ring) => return Ok(ring),
            Keys::File(path) => {
                self.options.keys = Keys::File(path.clone());
                path
            }
            Keys::Beside => self.location.key_file(),
        };
        let create = self.options.create_keys.unwrap_or(self.options.engine);
        keys::key_ring(&*self.store, &file, create, &self.options.key_file_hint).await
    }

    /// The facade's builder over this database's store: the event bus (if any), `ring`, the
    /// clock, the engine settings and the connectors of this build's features (`local`,
    /// `ssh`, `winrm`).
    pub fn builder(&self, ring: KeyRing) -> Result<OrcaBuilder> {
        let mut b = Orca::builder()
            .store(self.store.clone())
            .keyring(ring)
            .clock(self.options.clock.clone())
            .engine_config(self.options.engine_config.clone());
        b = crate::register::register(b, &self.options)?;
        if let Some(bus) = &self.bus {
            b = b.bus(bus.clone());
        }
        Ok(b)
    }

    /// If this process runs the engine: start it, and on PostgreSQL let submissions on other
    /// nodes wake it at once (without waiting for its next poll).
    pub async fn start(&mut self, orca: &Orca) -> Result<()> {
        if !self.options.engine {
            return Ok(());
        }
        orca.start().await?;
        self.wake_on_submit(orca);
        Ok(())
    }

    /// On PostgreSQL with an engine: wake `orca`'s engine whenever another node submits work.
    /// [`Database::start`] does it; call this alone when starting the engine yourself.
    pub fn wake_on_submit(&mut self, orca: &Orca) {
        #[cfg(feature = "postgres")]
        if let Some(mut waker) = self.waker.take() {
            let o = orca.clone();
            tokio::spawn(async move {
                while waker.notified().await {
                    orca_core::Executor::wake(o.engine());
                }
            });
        }
        #[cfg(not(feature = "postgres"))]
        let _ = orca;
    }

    /// Every step after [`Database::open`]: key ring, facade, engine.
    pub async fn into_orca(mut self) -> Result<Orca> {
        let ring = self.key_ring().await?;
        let orca = self.builder(ring)?.build()?;
        self.start(&orca).await?;
        Ok(orca)
    }

    /// Close the connections (PostgreSQL's LISTEN connection included).
    pub async fn close(&self) {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("location", &self.location)
            .field("engine", &self.options.engine)
            .field("bus", &self.bus.is_some())
            .finish_non_exhaustive()
    }
}

/// The error of a store that did not open, naming the location.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn cannot_open(location: &DatabaseLocation, e: Error) -> Error {
    Error::new(
        e.kind(),
        format!("cannot open the database {location}: {}", e.message()),
    )
}

#[cfg(any(not(feature = "sqlite"), not(feature = "postgres")))]
fn not_built(what: &str, feature: &str) -> Error {
    Error::new(
        orca_core::ErrorKind::Unsupported,
        format!(
            "this build of Orca cannot open {what} databases: enable the `{feature}` feature of \
             the `orca` crate"
        ),
    )
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(
    path: std::path::PathBuf,
    location: DatabaseLocation,
    options: OpenOptions,
) -> Result<Database> {
    use orca_store::sqlite::{SqliteOptions, SqliteStore};
    if options.schema.is_some() {
        return Err(Error::invalid(
            "schema applies to PostgreSQL only; a SQLite database is one file",
        ));
    }
    let mut o = SqliteOptions::new(path);
    if let Some(s) = options.synchronous {
        o = o.synchronous(s);
    }
    if !options.engine {
        o = o.client();
    }
    let store = SqliteStore::open(o, options.clock.clone())
        .await
        .map_err(|e| cannot_open(&location, e))?;
    Ok(Database {
        store: Arc::new(store),
        bus: None,
        location,
        options,
        #[cfg(feature = "postgres")]
        waker: None,
        #[cfg(feature = "postgres")]
        pg: None,
    })
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(
    _path: std::path::PathBuf,
    _location: DatabaseLocation,
    _options: OpenOptions,
) -> Result<Database> {
    Err(not_built("SQLite", "sqlite"))
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    url: String,
    location: DatabaseLocation,
    options: OpenOptions,
) -> Result<Database> {
    use orca_store::postgres::{PgEventBus, PostgresOptions, PostgresStore};
    let mut o = PostgresOptions::new(url);
    o.schema = options.schema.clone();
    if let Some(n) = options.max_connections {
        o = o.max_connections(n);
    }
    if let Some(t) = options.connect_timeout {
        o.connect_timeout = t;
    }
    let store = PostgresStore::connect(o, options.clock.clone())
        .await
        .map_err(|e| cannot_open(&location, e))?;
    let (bus, waker) = if options.live {
        let bus: Arc<dyn EventBus> = Arc::new(PgEventBus::new(&store).await?);
        let waker = if options.engine {
            Some(store.work_waker().await?)
        } else {
            None
        };
        (Some(bus), waker)
    } else {
        (None, None)
    };
    Ok(Database {
        store: Arc::new(store.clone()),
        bus,
        location,
        options,
        waker,
        pg: Some(store),
    })
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _url: String,
    _location: DatabaseLocation,
    _options: OpenOptions,
) -> Result<Database> {
    Err(not_built("PostgreSQL", "postgres"))
}
