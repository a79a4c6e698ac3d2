//! Opening a database: recognise it, take the engine lock, migrate, build the pools.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::str::FromStr;

use orca_core::{Error, Result};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};

use super::config::{SqliteOptions, Synchronous};
use super::error::{db_err, engine_in_use, io_err, is_not_a_database, not_orca, too_new};

/// The embedded migrations.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// What is at the path before we open it for real.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing (or an empty file): a new database.
    Nothing,
    /// An Orca database this build can open.
    Orca,
}

/// Look at the file without writing to it.
pub(crate) async fn inspect(opts: &SqliteOptions) -> Result<Found> {
    let path = &opts.path;
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(io_err("read", path, e)),
        Ok(m) if m.is_dir() => {
            return Err(Error::invalid(format!(
                "{} is a directory: give the path of a database file inside it, e.g. {}",
                path.display(),
                path.join("orca.db").display()
            )));
        }
        Ok(m) if m.len() == 0 => return Ok(Found::Nothing),
        Ok(_) => {}
    }
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(opts.busy_timeout);
    let mut conn = match SqliteConnection::connect_with(&connect).await {
        Ok(c) => c,
        Err(e) if is_not_a_database(&e) => return Err(not_orca(path, "not an SQLite file")),
        Err(e) => return Err(db_err(e)),
    };
    let found = check_schema(&mut conn, path).await;
    let _ = conn.close().await;
    found
}

async fn check_schema(conn: &mut SqliteConnection, path: &Path) -> Result<Found> {
    let tables: Vec<String> =
        match sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')")
            .fetch_all(&mut *conn)
            .await
        {
            Ok(t) => t,
            Err(e) if is_not_a_database(&e) => return Err(not_orca(path, "not an SQLite file")),
            Err(e) => return Err(db_err(e)),
        };
    if tables.is_empty() {
        return Ok(Found::Nothing);
    }
    if !tables.iter().any(|t| t == "orca_meta") {
        let mut names = tables.clone();
        names.truncate(5);
        return Err(not_orca(
            path,
            &format!(
                "an SQLite database with other tables ({}) and no Orca marker",
                names.join(", ")
            ),
        ));
    }
    let rows = sqlx::query("SELECT key, value FROM orca_meta")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let meta = |k: &str| {
        rows.iter()
            .find(|r| r.get::<String, _>("key") == k)
            .map(|r| r.get::<String, _>("value"))
    };
    if meta("application").as_deref() != Some("orca") {
        return Err(not_orca(path, "its orca_meta table has no Orca marker"));
    }
    let known = latest_version();
    let version = meta("schema_version").unwrap_or_default();
    match i64::from_str(&version) {
        Ok(v) if v <= known => {}
        _ => return Err(too_new(path, &version, known)),
    }
    if tables.iter().any(|t| t == "_sqlx_migrations") {
        let max: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        if let Some(v) = max.filter(|v| *v > known) {
            return Err(too_new(path, &v.to_string(), known));
        }
    }
    Ok(Found::Orca)
}

/// Take the engine lock on `<path>.lock`, or say who holds it.
pub(crate) fn lock_engine(opts: &SqliteOptions) -> Result<File> {
    let lock = opts.lock_path();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(|e| io_err("create the engine lock file", &lock, e))?;
    match file.try_lock() {
        Ok(()) => {
            // The holder's pid helps whoever is refused; failure to write it is harmless.
            let _ = file.set_len(0);
            let _ = file.write_all(format!("{}\n", std::process::id()).as_bytes());
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.rewind();
            let _ = file.read_to_string(&mut holder);
            let err = engine_in_use(&opts.path, &lock);
            match holder.trim() {
                "" => Err(err),
                pid => Err(Error::new(
                    err.kind(),
                    format!("{} [pid {pid}]", err.message()),
                )),
            }
        }
        Err(TryLockError::Error(e)) => Err(io_err("lock", &lock, e)),
    }
}

fn connect_options(opts: &SqliteOptions) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(&opts.path)
        .busy_timeout(opts.busy_timeout)
        .foreign_keys(true)
        .statement_cache_capacity(256)
        // Batches return thousands of rows: fewer hand-offs from the SQLite thread.
        .row_buffer_size(4096)
        .pragma("temp_store", "MEMORY")
        .pragma("cache_size", "-32000")
}

/// The single writer (creates the file, sets WAL) and runs the migrations.
pub(crate) async fn writer(opts: &SqliteOptions) -> Result<SqlitePool> {
    if let Some(parent) = opts.path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_err("create the directory", parent, e))?;
    }
    let sync = match opts.synchronous {
        Synchronous::Normal => SqliteSynchronous::Normal,
        Synchronous::Full => SqliteSynchronous::Full,
    };
    let connect = connect_options(opts)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sync);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(connect)
        .await
        .map_err(db_err)?;
    if let Err(e) = MIGRATOR.run(&pool).await {
        pool.close().await;
        return Err(migrate_err(&opts.path, e));
    }
    Ok(pool)
}

/// The read pool.
pub(crate) async fn readers(opts: &SqliteOptions) -> Result<SqlitePool> {
    let connect = connect_options(opts).pragma("query_only", "ON");
    SqlitePoolOptions::new()
        .max_connections(opts.read_connections.max(1))
        .min_connections(1)
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(connect)
        .await
        .map_err(db_err)
}

fn migrate_err(path: &Path, e: MigrateError) -> Error {
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => db_err(e),
        MigrateError::VersionMissing(v) => too_new(path, &v.to_string(), latest_version()),
        other => Error::storage(format!(
            "could not bring {} to the current Orca schema: {other}",
            path.display()
        )),
    }
}
