//! [`OpenOptions`]: where the data is and how to open it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orca_core::location::DatabaseLocation;
use orca_core::{Clock, EngineConfig, KeyRing, Result, SystemClock};

/// Where the key ring that encrypts credentials comes from.
pub(crate) enum Keys {
    /// The key file of the location (beside a SQLite database, `./orca-data` for PostgreSQL).
    Beside,
    /// This key file.
    File(PathBuf),
    /// This ring, as given (no key file).
    Ring(KeyRing),
}

/// How to open an Orca: the database location and the settings of the store, the key ring,
/// the engine and the connectors. Start with [`OpenOptions::new`], then
/// [`OpenOptions::open`] (or [`crate::Database::open`] to wire the facade yourself).
///
/// ```no_run
/// # async fn f() -> orca::Result<()> {
/// let orca = orca::OpenOptions::new("postgres://orca@db.internal/orca")
///     .schema("staging")
///     .key_file("/etc/orca/keys.json")
///     .open()
///     .await?;
/// # Ok(()) }
/// ```
pub struct OpenOptions {
    pub(crate) location: Option<String>,
    pub(crate) parsed: Option<DatabaseLocation>,
    pub(crate) engine: bool,
    pub(crate) live: bool,
    pub(crate) keys: Keys,
    pub(crate) create_keys: Option<bool>,
    pub(crate) key_file_hint: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) engine_config: EngineConfig,
    pub(crate) schema: Option<String>,
    pub(crate) max_connections: Option<u32>,
    pub(crate) connect_timeout: Option<Duration>,
    #[cfg(feature = "sqlite")]
    pub(crate) synchronous: Option<orca_store::sqlite::Synchronous>,
    #[cfg(feature = "local")]
    pub(crate) local: orca_connectors::local::LocalConfig,
    #[cfg(feature = "ssh")]
    pub(crate) ssh: orca_connectors::ssh::SshConfig,
}

impl OpenOptions {
    /// Open `location`: a path (an existing directory means `<dir>/orca.db`), `sqlite://PATH`,
    /// or `postgres://USER@HOST/DB`. It is parsed when opened (see [`orca_core::location`]);
    /// an empty one is an error ([`OpenOptions::default_location`] is `./orca-data/orca.db`).
    pub fn new(location: impl Into<String>) -> Self {
        Self::with_location(Some(location.into()), None)
    }

    /// Open the default location, `./orca-data/orca.db`.
    pub fn default_location() -> Self {
        Self::with_location(None, None)
    }

    /// Open a location parsed already.
    pub fn at(location: DatabaseLocation) -> Self {
        Self::with_location(None, Some(location))
    }

    fn with_location(location: Option<String>, parsed: Option<DatabaseLocation>) -> Self {
        OpenOptions {
            location,
            parsed,
            engine: true,
            live: true,
            keys: Keys::Beside,
            create_keys: None,
            key_file_hint: "OpenOptions::key_file".to_string(),
            clock: Arc::new(SystemClock),
            engine_config: EngineConfig::default(),
            schema: None,
            max_connections: None,
            connect_timeout: None,
            #[cfg(feature = "sqlite")]
            synchronous: None,
            #[cfg(feature = "local")]
            local: Default::default(),
            #[cfg(feature = "ssh")]
            ssh: Default::default(),
        }
    }

    /// Whether this process runs the engine (default `true`). With `false` it only reads
    /// records and submits work that another process (a server) runs: a SQLite database is
    /// opened as a client beside that process, and no key file is created.
    pub fn engine(mut self, engine: bool) -> Self {
        self.engine = engine;
        self
    }

    /// Whether to listen to other nodes (default `true`): on PostgreSQL, the event bus between
    /// nodes and, for an engine, the wake-up when another node submits work. Without it a
    /// PostgreSQL engine still finds new work by polling.
    pub fn live(mut self, live: bool) -> Self {
        self.live = live;
        self
    }

    /// The key file (default: `keys.json` beside a SQLite database, `./orca-data/keys.json`
    /// for PostgreSQL).
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.keys = Keys::File(path.into());
        self
    }

    /// Use this key ring and no key file (e.g. [`KeyRing::ephemeral`] for a throw-away
    /// database: credentials stored with it cannot be read after the process ends).
    pub fn keyring(mut self, ring: KeyRing) -> Self {
        self.keys = Keys::Ring(ring);
        self
    }

    /// Whether a missing key file may be created, when the database holds no credentials yet
    /// (default: when this process runs the engine).
    pub fn create_keys(mut self, create: bool) -> Self {
        self.create_keys = Some(create);
        self
    }

    /// How the user of a frontend names the key file, for error messages (e.g.
    /// `"--data-dir or security.key_file"`, `"keys="`).
    pub fn key_file_hint(mut self, hint: impl Into<String>) -> Self {
        self.key_file_hint = hint.into();
        self
    }

    /// The clock of the store and the engine (default: the wall clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Engine settings (concurrency, leases, retries...).
    pub fn engine_config(mut self, config: EngineConfig) -> Self {
        self.engine_config = config;
        self
    }

    /// PostgreSQL: the schema that holds Orca's tables (created if missing; default
    /// `public`). An error on SQLite.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// PostgreSQL: the most connections of the store's pool (default 10).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// PostgreSQL: how long to wait for a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// SQLite: the `synchronous` setting (default `NORMAL`).
    #[cfg(feature = "sqlite")]
    pub fn synchronous(mut self, synchronous: orca_store::sqlite::Synchronous) -> Self {
        self.synchronous = Some(synchronous);
        self
    }

    /// Settings of the local connector.
    #[cfg(feature = "local")]
    pub fn local(mut self, config: orca_connectors::local::LocalConfig) -> Self {
        self.local = config;
        self
    }

    /// Settings of the SSH connector.
    #[cfg(feature = "ssh")]
    pub fn ssh(mut self, config: orca_connectors::ssh::SshConfig) -> Self {
        self.ssh = config;
        self
    }

    /// The location, parsed.
    pub fn location(&self) -> Result<DatabaseLocation> {
        match &self.parsed {
            Some(l) => Ok(l.clone()),
            None => match &self.location {
                Some(l) => DatabaseLocation::parse(l),
                None => Ok(DatabaseLocation::default_sqlite()),
            },
        }
    }

    /// Open the database and the facade, and start the engine (if this process runs it).
    /// See [`crate::Database`] for the steps.
    pub async fn open(self) -> Result<orca_core::Orca> {
        crate::Database::open(self).await?.into_orca().await
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = match self.location() {
            Ok(l) => l.to_string(),
            Err(_) => "(invalid)".to_string(),
        };
        f.debug_struct("OpenOptions")
            .field("location", &location)
            .field("engine", &self.engine)
            .field("live", &self.live)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_a_password() {
        let o = OpenOptions::new("postgres://orca:s3cret@db.internal/orca");
        let shown = format!("{o:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://orca:***@db.internal/orca"),
            "{shown}"
        );
        let bad = format!("{:?}", OpenOptions::new("mysql://orca:s3cret@db/orca"));
        assert!(!bad.contains("s3cret"), "{bad}");
    }

    #[test]
    fn locations() {
        assert!(
            OpenOptions::new("").location().is_err(),
            "empty is an error"
        );
        assert_eq!(
            OpenOptions::default_location().location().unwrap(),
            DatabaseLocation::default_sqlite()
        );
        assert_eq!(
            OpenOptions::new("sqlite://x/orca.db").location().unwrap(),
            DatabaseLocation::Sqlite("x/orca.db".into())
        );
        assert!(matches!(
            OpenOptions::new("postgresql://h/db").location().unwrap(),
            DatabaseLocation::Postgres(_)
        ));
    }
}
