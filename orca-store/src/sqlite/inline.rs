//! Inline point reads: a few rusqlite connections used on the calling task.
//!
//! **Why.** sqlx runs each SQLite connection on a thread of its own: a query is a message to
//! that thread and its rows come back over a channel, after a connection was acquired from the
//! pool. For a lookup by primary key, which SQLite answers in a few microseconds, those
//! hand-offs (futex wake-ups and context switches on both sides) cost several times the query:
//! on the HTTP benchmark they were about 45 % of the server's CPU for an authenticated
//! `GET /api/v1/executions/{id}`.
//!
//! **What.** [`InlineReaders`] holds `read_connections` more connections to the file, opened
//! like the pooled readers (`query_only`, `foreign_keys`, `temp_store`, `cache_size`), each
//! behind a `std::sync::Mutex`. A point read takes the first idle one with `try_lock`, runs a
//! cached prepared statement and decodes the row with the decoders of the pooled path
//! ([`super::rows`]), without leaving the calling thread. Only lookups by primary key or unique
//! index (a system, job, job counts, execution, user, token, and a user's grants) go this way;
//! scans, lists and anything that may return many rows stay on the pool.
//!
//! **Trade-off.** Such a read blocks the calling Tokio worker while SQLite works: in WAL mode a
//! reader never waits for the writer, and a lookup by key in a warm page cache takes a few
//! microseconds (a cold page is one `read(2)`, from the OS cache or the disk). These
//! connections never wait for anything else:
//! - when every inline connection is in use (by other threads), the read goes through the pool
//!   instead of waiting for one;
//! - their busy timeout is zero, so when SQLite reports `SQLITE_BUSY`/`SQLITE_LOCKED` (a WAL
//!   recovery by another process, a checkpoint that truncates the WAL...) it does so at once,
//!   and the read is done again through the pool, whose connections wait up to the store's
//!   busy timeout on their own threads, as before.
//!
//! So the answers and the errors are those of the pooled path; only where the work happens
//! changes. Storage whose reads may block for long (a network file system) should turn this
//! off with [`super::SqliteOptions::inline_reads`].
//!
//! **Effect.** On the HTTP benchmark (`benches/http/run.sh`, 2 shared cores, load average
//! about 5) the authenticated `GET /api/v1/executions/{id}` over SQLite went from 10,300 and
//! 11,500 req/s (32-34 % of the same request over the in-memory store, same runs) to 25,800
//! and 27,400 req/s (70-77 %). What is left is mostly SQLite's own work per read transaction
//! (the file and WAL-index locks: `fcntl` calls and its VFS mutex).
//!
//! **Consistency.** Each statement is its own read transaction (autocommit), as on the pool,
//! and sees every transaction committed before it began: a read after a write that returned
//! sees that write.

use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use orca_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use sqlx::{Sqlite, SqlitePool};

use super::SqliteStore;
use super::config::SqliteOptions;
use super::error::{db_err, inline_err};
use super::rows::{FromRecord, InlineRow};

/// Prepared statements kept per inline connection (there are about ten point reads).
const STATEMENT_CACHE: usize = 32;

/// A key bound to a point read: both drivers encode it the same way (UUID blob, text).
pub(crate) trait Key:
    rusqlite::ToSql + for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send + Sync
{
}

impl<T> Key for T where
    T: rusqlite::ToSql + for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send + Sync
{
}

/// Why an inline read gave no answer.
#[derive(Debug)]
pub(crate) enum Miss {
    /// SQLite was busy: do the read through the pool, which waits for it.
    Busy,
    /// A failure to report as it is (the pool would report the same).
    Failed(Error),
}

impl From<rusqlite::Error> for Miss {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked) => Miss::Busy,
            _ => Miss::Failed(inline_err(e)),
        }
    }
}

impl From<Error> for Miss {
    fn from(e: Error) -> Self {
        Miss::Failed(e)
    }
}

/// One inline connection, lent to [`InlineReaders::run`]'s closure.
pub(crate) struct Reader<'c>(&'c Connection);

impl Reader<'_> {
    /// The row that `sql` finds for `key`, if any.
    pub(crate) fn one<T: FromRecord>(&self, sql: &str, key: &impl Key) -> Result<Option<T>, Miss> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let mut rows = stmt.query([key])?;
        match rows.next()? {
            Some(row) => Ok(Some(T::from_record(&InlineRow::new(row))?)),
            None => Ok(None),
        }
    }

    /// Every row that `sql` finds for `key`, in its order.
    pub(crate) fn all<T: FromRecord>(&self, sql: &str, key: &impl Key) -> Result<Vec<T>, Miss> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let mut rows = stmt.query([key])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push(T::from_record(&InlineRow::new(row))?);
        }
        Ok(found)
    }

    /// Whether `sql` finds a row for `key`.
    pub(crate) fn exists(&self, sql: &str, key: &impl Key) -> Result<bool, Miss> {
        Ok(self.0.prepare_cached(sql)?.exists([key])?)
    }
}

/// The inline read connections of a store (none when `inline_reads` is off).
pub(crate) struct InlineReaders {
    conns: Vec<Mutex<Connection>>,
}

impl InlineReaders {
    /// Open `read_connections` connections to the (existing, migrated) database, or none.
    pub(crate) fn open(opts: &SqliteOptions) -> Result<Self> {
        let n = if opts.inline_reads {
            opts.read_connections.max(1)
        } else {
            0
        };
        let conns = (0..n)
            .map(|_| connect(opts).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(InlineReaders { conns })
    }

    /// Run `f` on an idle inline connection. `None` when there is none (all in use, or
    /// `inline_reads` off) or SQLite was busy: the caller then reads through the pool.
    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce(&Reader<'_>) -> Result<T, Miss>,
    ) -> Option<Result<T>> {
        for slot in &self.conns {
            let conn = match slot.try_lock() {
                Ok(conn) => conn,
                Err(TryLockError::WouldBlock) => continue,
                // A panic on another thread while it held the connection: its statements were
                // reset when they were dropped, so the connection is fine.
                Err(TryLockError::Poisoned(p)) => {
                    slot.clear_poison();
                    p.into_inner()
                }
            };
            return match f(&Reader(&conn)) {
                Ok(v) => Some(Ok(v)),
                Err(Miss::Busy) => None,
                Err(Miss::Failed(e)) => Some(Err(e)),
            };
        }
        None
    }

    /// How many inline connections there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Take every inline connection (as another thread would), waiting for each.
    #[cfg(test)]
    pub(crate) fn take_all(&self) -> Vec<std::sync::MutexGuard<'_, Connection>> {
        self.conns
            .iter()
            .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            .collect()
    }
}

/// One inline connection, set up like the pooled readers (see `open::readers`) except for the
/// busy timeout.
fn connect(opts: &SqliteOptions) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        &opts.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(inline_err)?;
    // Never wait: a busy database sends the read to the pool (see the module docs).
    conn.busy_timeout(Duration::ZERO).map_err(inline_err)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32000; \
         PRAGMA query_only = ON;",
    )
    .map_err(inline_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// At most one row by `key`: inline when a connection is idle, else through the pool.
pub(crate) async fn one<T, K>(s: &SqliteStore, sql: &'static str, key: K) -> Result<Option<T>>
where
    T: FromRecord + Send,
    K: Key,
{
    if let Some(found) = s.inline.run(|r| r.one(sql, &key)) {
        return found;
    }
    pooled_one(&s.reader, sql, key).await
}

/// At most one row by `key`, through the pool.
pub(crate) async fn pooled_one<T, K>(
    pool: &SqlitePool,
    sql: &'static str,
    key: K,
) -> Result<Option<T>>
where
    T: FromRecord + Send,
    K: Key,
{
    let row = sqlx::query(sql)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(T::from_record).transpose()
}
