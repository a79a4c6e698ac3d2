//! Converting SQLite and sqlx failures into [`orca_core::Error`].

use std::path::Path;

use orca_core::{Error, ErrorKind};
use sqlx::error::ErrorKind as DbKind;

/// SQLite primary result codes we treat specially.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// The primary SQLite result code of a database error, if it is one.
pub(crate) fn primary_code(e: &sqlx::Error) -> Option<i64> {
    let db = e.as_database_error()?;
    let code: i64 = db.code()?.parse().ok()?;
    Some(code & 0xff)
}

/// Whether `e` says the file is not an SQLite database.
pub(crate) fn is_not_a_database(e: &sqlx::Error) -> bool {
    primary_code(e) == Some(SQLITE_NOTADB)
}

/// A friendlier text for a unique constraint, from SQLite's `UNIQUE constraint failed: t.c`.
fn unique_message(msg: &str) -> String {
    let what = msg.rsplit(": ").next().unwrap_or(msg);
    let nice = match what {
        "systems.name" => "a system with this name exists already: choose another name",
        "users.username" | "index 'users_username_lower'" => {
            "a user with this name (in any letter case) exists already: choose another name"
        }
        "tokens.hash" => "a token with this hash exists already",
        "systems.id" => "a system with this id exists already",
        "jobs.id" => "a job with this id exists already",
        "executions.id" => "an execution with this id exists already",
        "users.id" => "a user with this id exists already",
        "tokens.id" => "a token with this id exists already",
        "audit.id" => "an audit record with this id exists already",
        "host_keys.id" => "a host key with this id exists already",
        "output_chunks.execution_id, output_chunks.seq" => {
            "an output chunk with this seq exists already"
        }
        _ => "",
    };
    if nice.is_empty() {
        format!("already exists ({what})")
    } else {
        nice.to_string()
    }
}

/// Convert a sqlx error raised while using the database at `path`.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) => {
            let msg = db.message().to_string();
            match db.kind() {
                DbKind::UniqueViolation => return Error::already_exists(unique_message(&msg)),
                DbKind::ForeignKeyViolation => {
                    return Error::not_found(format!("a referenced record does not exist ({msg})"));
                }
                DbKind::NotNullViolation | DbKind::CheckViolation => {
                    return Error::invalid(format!("the database refused the value: {msg}"));
                }
                _ => {}
            }
            failure(primary_code(&e), &msg)
        }
        sqlx::Error::RowNotFound => Error::not_found("no such record"),
        sqlx::Error::PoolTimedOut => {
            Error::storage("timed out waiting for a SQLite connection: the store is overloaded")
        }
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Error::storage("the SQLite store is closed").with_retry(orca_core::Retry::Never)
        }
        sqlx::Error::Io(io) => Error::storage(format!("I/O error on the SQLite database: {io}")),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => Error::unexpected(format!(
            "a row of the SQLite database could not be read: {e}"
        )),
        _ => Error::storage(format!("SQLite error: {e}")),
    }
}

/// An SQLite failure (primary result code `primary`, message `msg`) as an error that says
/// what to do; the same for both drivers.
fn failure(primary: Option<i64>, msg: &str) -> Error {
    match primary {
        Some(SQLITE_BUSY | SQLITE_LOCKED) => Error::storage(format!(
            "the SQLite database stayed locked by another writer beyond the busy timeout \
             ({msg}); retry, or raise the busy timeout"
        )),
        Some(SQLITE_READONLY) => Error::storage(format!(
            "the SQLite database is read-only ({msg}): check the file's permissions"
        ))
        .with_retry(orca_core::Retry::Never),
        Some(SQLITE_FULL) => Error::storage(format!(
            "the disk holding the SQLite database is full ({msg}): free some space"
        )),
        Some(SQLITE_CORRUPT) => Error::storage(format!(
            "the SQLite database is corrupt ({msg}): restore it from a backup"
        ))
        .with_retry(orca_core::Retry::Never),
        Some(SQLITE_NOTADB) => Error::new(
            ErrorKind::Incompatible,
            format!("the file is not an SQLite database ({msg})"),
        ),
        Some(SQLITE_IOERR | SQLITE_CANTOPEN) => {
            Error::storage(format!("SQLite could not read or write its files: {msg}"))
        }
        _ => Error::storage(format!("SQLite error: {msg}")),
    }
}

/// Convert a rusqlite error of an inline read (see [`super::inline`]).
pub(crate) fn inline_err(e: rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    match &e {
        E::SqliteFailure(f, msg) => {
            let msg = msg.clone().unwrap_or_else(|| f.to_string());
            failure(Some(i64::from(f.extended_code) & 0xff), &msg)
        }
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..)
        | E::InvalidColumnIndex(_)
        | E::InvalidColumnName(_)
        | E::InvalidColumnType(..) => Error::unexpected(format!(
            "a row of the SQLite database could not be read: {e}"
        )),
        _ => Error::storage(format!("SQLite error: {e}")),
    }
}

/// A stored value that does not parse (a row written by something else, or a bug).
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::unexpected(format!("stored {what} could not be read: {detail}"))
}

/// The database at `path` is not Orca's.
pub(crate) fn not_orca(path: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::Incompatible,
        format!(
            "{} is not an Orca database ({why}); nothing was written to it: point Orca at \
             another file or a new path",
            path.display()
        ),
    )
}

/// The database at `path` was written by a newer Orca.
pub(crate) fn too_new(path: &Path, found: &str, known: i64) -> Error {
    Error::new(
        ErrorKind::Incompatible,
        format!(
            "{} has Orca schema {found}, newer than this build knows (up to {known}); \
             nothing was written to it: upgrade Orca to open it",
            path.display()
        ),
    )
}

/// Another engine holds the database.
pub(crate) fn engine_in_use(path: &Path, lock: &Path) -> Error {
    Error::new(
        ErrorKind::Incompatible,
        format!(
            "another Orca engine uses the database {} (it holds the lock {}): stop that engine, \
             or open this one as a client",
            path.display(),
            lock.display()
        ),
    )
}

/// An I/O failure on a file next to the database.
pub(crate) fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::storage(format!("could not {what} {}: {e}", path.display()))
}
