//! SQLite store, the embedded default (feature `sqlite`).
//!
//! One file holds everything: systems, jobs, executions, output, audit, users and tokens.
//! The database runs in WAL mode with one writer connection and a small read pool; ids are
//! UUID blobs and times integer microseconds (UTC). Each job keeps its per-state counts, so its
//! status never needs a scan of its executions.
//!
//! Point reads by id or unique name (those of every authenticated request) run inline on the
//! calling task, over a few connections of their own, rather than through the pool and its
//! connection threads; they fall back to the pool whenever those connections are taken or
//! SQLite is busy ([`SqliteOptions::inline_reads`]).
//!
//! **One engine per database.** [`SqliteStore::open`] with `engine: true` takes an exclusive
//! lock on `<db>.lock` for the life of the store; a second engine gets
//! [`orca_core::ErrorKind::Incompatible`]. Clients (`engine: false`, e.g. a script next to a
//! running server) can do everything except the queue verbs `claim`, `heartbeat` and
//! `rescue_expired`.
//!
//! ```no_run
//! # async fn demo() -> orca_core::Result<()> {
//! use std::sync::Arc;
//! use orca_store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
//!
//! let clock = Arc::new(orca_core::SystemClock);
//! let engine = SqliteStore::open_path("/var/lib/orca/orca.db", clock.clone()).await?;
//! let client = SqliteStore::open(
//!     SqliteOptions::new("/var/lib/orca/orca.db").client().synchronous(Synchronous::Full),
//!     clock,
//! )
//! .await?;
//! # Ok(()) }
//! ```

mod audit;
mod backend;
mod config;
mod error;
mod inline;
#[cfg(test)]
mod inline_tests;
mod jobs;
mod leases;
mod open;
mod output;
mod queue;
mod queue_write;
mod rows;
mod systems;
mod tx;
mod users;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use orca_core::model::Timestamp;
use orca_core::{Clock, Error, ErrorKind, Result};
use sqlx::SqlitePool;

pub use config::{SqliteOptions, Synchronous};

/// What SQLite reports about an open store (see [`SqliteStore::settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// `wal`.
    pub journal_mode: String,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// Whether foreign keys are enforced.
    pub foreign_keys: bool,
    /// How long a statement waits for the write lock.
    pub busy_timeout: std::time::Duration,
    /// The Orca schema version of the file.
    pub schema_version: i64,
}

/// An [`orca_core::Store`] in one SQLite file.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Connections for inline point reads (see `inline`).
    inline: inline::InlineReaders,
    clock: Arc<dyn Clock>,
    options: SqliteOptions,
    /// The engine lock, held for the life of the store.
    _lock: Option<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.options.path)
            .field("engine", &self.options.engine)
            .field("synchronous", &self.options.synchronous)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (or create) the database described by `options`, with time from `clock`.
    ///
    /// Errors: [`ErrorKind::Incompatible`] if the file is not an Orca database, comes from a
    /// newer Orca, or (for an engine) another engine uses it; nothing is written in those
    /// cases. [`ErrorKind::Storage`] if it cannot be read or created.
    pub async fn open(options: SqliteOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        open::inspect(&options).await?;
        let lock = if options.engine {
            if let Some(parent) = options.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| error::io_err("create the directory", parent, e))?;
            }
            Some(open::lock_engine(&options)?)
        } else {
            None
        };
        let writer = open::writer(&options).await?;
        let reader = match open::readers(&options).await {
            Ok(r) => r,
            Err(e) => {
                writer.close().await;
                return Err(e);
            }
        };
        // After the writer: the file exists and has the current schema.
        let inline = match inline::InlineReaders::open(&options) {
            Ok(i) => i,
            Err(e) => {
                reader.close().await;
                writer.close().await;
                return Err(e);
            }
        };
        tracing::debug!(path = %options.path.display(), engine = options.engine, "opened SQLite store");
        Ok(SqliteStore {
            writer,
            reader,
            inline,
            clock,
            options,
            _lock: lock,
        })
    }

    /// Open (or create) the database at `path` as its engine, with the default options.
    pub async fn open_path(path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::open(SqliteOptions::new(path), clock).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.options.path
    }

    /// Whether this store is the database's engine (holds the engine lock).
    pub fn is_engine(&self) -> bool {
        self.options.engine
    }

    /// The options it was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// The settings SQLite reports for the writer connection (for diagnostics and tests).
    pub async fn settings(&self) -> Result<SqliteSettings> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode, \
             (SELECT synchronous FROM pragma_synchronous) AS synchronous, \
             (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys, \
             (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout, \
             (SELECT value FROM orca_meta WHERE key = 'schema_version') AS schema_version",
        )
        .fetch_one(&self.writer)
        .await
        .map_err(error::db_err)?;
        let get_i = |c: &str| row.try_get::<i64, _>(c).map_err(error::db_err);
        Ok(SqliteSettings {
            journal_mode: row.try_get("journal_mode").map_err(error::db_err)?,
            synchronous: match get_i("synchronous")? {
                2 | 3 => Synchronous::Full,
                _ => Synchronous::Normal,
            },
            foreign_keys: get_i("foreign_keys")? == 1,
            busy_timeout: std::time::Duration::from_millis(get_i("busy_timeout")?.max(0) as u64),
            schema_version: row
                .try_get::<String, _>("schema_version")
                .map_err(error::db_err)?
                .parse()
                .map_err(|e| error::corrupt("schema version", e))?,
        })
    }

    /// Close the connections and release the engine lock.
    pub async fn close(self) {
        let SqliteStore {
            writer,
            reader,
            inline,
            _lock,
            ..
        } = self;
        // The writer closes last (it may checkpoint the WAL), then the engine lock goes.
        drop(inline);
        reader.close().await;
        writer.close().await;
        drop(_lock);
    }

    fn now(&self) -> Timestamp {
        orca_core::model::micros(self.clock.now())
    }

    fn require_engine(&self, verb: &str) -> Result<()> {
        if self.options.engine {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{verb} needs the engine of {}, and this store was opened as a client: \
                     open it with `engine: true` (only one engine per database)",
                    self.options.path.display()
                ),
            ))
        }
    }
}
