//! Opening the configured database for every verb, through the `orca` crate (which opens the
//! store, the PostgreSQL event bus and work waker, applies the key-file rule and registers the
//! connectors). What stays here is the binary's own: options from the config file, the hint
//! when another server holds a SQLite database, and private database files.

use orca::location::DatabaseLocation;
use orca::{Database, Error, OpenOptions, Result};

use crate::config::Config;

/// How a command uses the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the engine (claims work). On SQLite, only one process may.
    Engine,
    /// Reads and writes records beside a running server (admin verbs).
    Client,
}

/// How the binary's users name the key file, in messages of the key-file rule.
const KEY_FILE_HINT: &str = "--data-dir (or security.key_file)";

/// Open the configured database (migrating it if needed). With `live`, a PostgreSQL database
/// also gets its event bus and, for the engine, its work waker (for processes that run the
/// engine or serve live updates). The key file is `security.key_file` (or the data
/// directory's), created when the database holds no credentials yet.
pub async fn open(cfg: &Config, role: Role, live: bool) -> Result<Database> {
    let location = cfg.database()?;
    let mut o = OpenOptions::at(location.clone())
        .engine(role == Role::Engine)
        .live(live)
        .key_file(cfg.key_file())
        .create_keys(true)
        .key_file_hint(KEY_FILE_HINT)
        .engine_config(cfg.engine())
        .local(cfg.local.connector())
        .synchronous(cfg.database.synchronous)
        .max_connections(cfg.database.max_connections)
        .connect_timeout(std::time::Duration::from_secs_f64(
            cfg.database.connect_timeout,
        ));
    if let (DatabaseLocation::Postgres(_), Some(schema)) = (&location, &cfg.database.schema) {
        o = o.schema(schema.clone());
    }
    let db = Database::open(o).await.map_err(|e| {
        if role == Role::Engine && e.message().contains("holds the lock") {
            Error::new(
                e.kind(),
                format!(
                    "{} (is `orca serve` already running on this data directory? stop it, or \
                     give this one its own --data-dir)",
                    e.message()
                ),
            )
        } else {
            e
        }
    })?;
    if let DatabaseLocation::Sqlite(path) = &location {
        crate::datadir::make_database_private(path);
    }
    Ok(db)
}
