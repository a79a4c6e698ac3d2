//! How to open a SQLite store.

use std::path::PathBuf;
use std::time::Duration;

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// Durable against application crashes; a power loss may undo the last commits (WAL
    /// `NORMAL`). The default: fast and never corrupts the database.
    #[default]
    Normal,
    /// Every commit is on disk before it returns (`FULL`), at a cost in throughput.
    Full,
}

impl Synchronous {
    /// The pragma value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Options for [`super::SqliteStore::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The database file. Created (with its parent directories) if missing.
    pub path: PathBuf,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// Open as the engine of this database: takes an exclusive lock on `<path>.lock` for the
    /// life of the store (one engine per database) and allows the queue verbs `claim`,
    /// `heartbeat` and `rescue_expired`. A client (`false`) can do everything else, next to a
    /// running engine.
    pub engine: bool,
    /// How long a statement waits for another process's write lock before it fails.
    pub busy_timeout: Duration,
    /// Connections used for reads (writes go through one connection: SQLite has one writer).
    /// There are this many pooled read connections and, with `inline_reads`, as many again
    /// for the inline reads.
    pub read_connections: u32,
    /// Run point reads by id or unique name (a system, job, execution, user, token, a user's
    /// grants) inline on the calling task, over `read_connections` connections of their own,
    /// instead of through the pool's connection threads: the lookup blocks the calling thread
    /// for a few microseconds (in WAL mode a reader never waits for the writer) instead of
    /// paying two thread hand-offs. When those connections are all taken, or SQLite reports
    /// that it is busy, the read goes through the pool as before. On by default; turn it off
    /// when the database sits on storage whose reads may block for long (a network file
    /// system).
    pub inline_reads: bool,
}

impl SqliteOptions {
    /// Defaults for an engine at `path`: `NORMAL` sync, 5 s busy timeout, 4 readers, inline
    /// point reads.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            synchronous: Synchronous::Normal,
            engine: true,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            inline_reads: true,
        }
    }
    /// Same options as a client (no engine lock, no queue verbs).
    pub fn client(mut self) -> Self {
        self.engine = false;
        self
    }
    /// Same options with another durability.
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }
    /// Same options with inline point reads on or off (see [`SqliteOptions::inline_reads`]).
    pub fn inline_reads(mut self, on: bool) -> Self {
        self.inline_reads = on;
        self
    }
    /// The side file that holds the engine lock: `<path>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }
}
