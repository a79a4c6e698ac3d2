//! Rows to model values and back: ids are UUID blobs, times integer microseconds, lists JSON.
//!
//! The decoders read a [`Record`]: a sqlx row (reads through the pools) or a rusqlite row (the
//! inline point reads of [`super::inline`]), so both paths share one mapping. The column lists
//! are macros as well as constants, so that fixed statements are `concat!`ed into static SQL.

use orca_core::ids::{AuditId, ExecutionId, HostKeyId, JobId, LeaseToken, SystemId, UserId};
use orca_core::model::{
    AuditOutcome, AuditRecord, Execution, ExecutionStatus, Health, HealthStatus, HostKey,
    HostKeyPolicy, Job, JobStatus, Lease, OutputChunk, Role, Scope, SealedSecret, StatusCounts,
    Stream, System, SystemType, Timestamp, User,
};
use orca_core::{Result, TokenKind, TokenRecord};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};
use uuid::Uuid;

use super::error::{corrupt, db_err, inline_err};

/// A column type that both drivers decode alike: UUID blobs, text, integers, booleans, blobs
/// and their `Option`s (NULL).
pub(crate) trait Value:
    for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql
{
}

impl<T> Value for T where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql
{
}

/// A row being decoded, from either driver.
pub(crate) trait Record {
    /// The value of the column named `col`.
    fn value<T: Value>(&self, col: &str) -> Result<T>;
}

impl Record for SqliteRow {
    fn value<T: Value>(&self, col: &str) -> Result<T> {
        self.try_get(col).map_err(db_err)
    }
}

/// A rusqlite row. Its columns are looked up by name from just after the last one found: the
/// decoders read them in about the order of the column lists, so a lookup is mostly one
/// comparison rather than a scan of the names through SQLite's C API (which showed up in
/// profiles of the hot reads).
pub(crate) struct InlineRow<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    next: std::cell::Cell<usize>,
}

impl<'r, 's> InlineRow<'r, 's> {
    pub(crate) fn new(row: &'r rusqlite::Row<'s>) -> Self {
        InlineRow {
            row,
            next: std::cell::Cell::new(0),
        }
    }
}

impl Record for InlineRow<'_, '_> {
    fn value<T: Value>(&self, col: &str) -> Result<T> {
        let stmt = self.row.as_ref();
        let n = stmt.column_count();
        let start = self.next.get();
        for k in 0..n {
            let i = (start + k) % n;
            if stmt.column_name(i).is_ok_and(|name| name == col) {
                self.next.set(i + 1);
                return self.row.get(i).map_err(inline_err);
            }
        }
        Err(inline_err(rusqlite::Error::InvalidColumnName(col.into())))
    }
}

/// A model value read from one row.
pub(crate) trait FromRecord: Sized {
    /// Decode `row`.
    fn from_record<R: Record>(row: &R) -> Result<Self>;
}

macro_rules! from_record {
    ($($t:ty => $f:ident),* $(,)?) => {$(
        impl FromRecord for $t {
            fn from_record<R: Record>(row: &R) -> Result<Self> {
                $f(row)
            }
        }
    )*};
}

from_record! {
    System => system,
    Job => job,
    StatusCounts => counts,
    Execution => execution,
    User => user,
    Scope => scope,
    TokenRecord => token,
}

/// Microseconds since the epoch.
pub(crate) fn us(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// A timestamp from microseconds since the epoch.
pub(crate) fn ts(v: i64) -> Result<Timestamp> {
    chrono::DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt("timestamp", v))
}

fn opt_ts(v: Option<i64>) -> Result<Option<Timestamp>> {
    v.map(ts).transpose()
}

/// A `u64` as SQLite's `INTEGER` (saturating).
pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn get<T: Value>(row: &impl Record, col: &str) -> Result<T> {
    row.value(col)
}

fn json<T: serde::de::DeserializeOwned>(row: &impl Record, col: &str) -> Result<T> {
    let text: String = get(row, col)?;
    serde_json::from_str(&text).map_err(|e| corrupt(col, e))
}

/// JSON text of a value that always serialises.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| orca_core::Error::unexpected(format!("JSON: {e}")))
}

/// Columns of `systems` read by [`system`].
macro_rules! system_cols {
    () => {
        "id, name, hostname, port, system_type, username, \
        credential, tags, active, health_status, health_checked_at, health_latency_ms, \
        health_reason, host_key_policy, options, created_at, updated_at"
    };
}
pub(crate) use system_cols;
pub(crate) const SYSTEM_COLS: &str = system_cols!();

pub(crate) fn system(row: &impl Record) -> Result<System> {
    let port: i64 = get(row, "port")?;
    Ok(System {
        id: SystemId(get(row, "id")?),
        name: get(row, "name")?,
        hostname: get(row, "hostname")?,
        port: u16::try_from(port).map_err(|e| corrupt("port", e))?,
        system_type: SystemType::parse(&get::<String>(row, "system_type")?)?,
        username: get(row, "username")?,
        credential: get::<Option<String>>(row, "credential")?.map(SealedSecret),
        tags: json(row, "tags")?,
        active: get(row, "active")?,
        health: Health {
            status: HealthStatus::parse(&get::<String>(row, "health_status")?)?,
            checked_at: opt_ts(get(row, "health_checked_at")?)?,
            latency_ms: get::<Option<i64>>(row, "health_latency_ms")?.map(u),
            reason: get(row, "health_reason")?,
        },
        host_key_policy: HostKeyPolicy::parse(&get::<String>(row, "host_key_policy")?)?,
        options: json(row, "options")?,
        created_at: ts(get(row, "created_at")?)?,
        updated_at: ts(get(row, "updated_at")?)?,
    })
}

pub(crate) const HOST_KEY_COLS: &str = "id, system_id, algorithm, fingerprint, created_at";

pub(crate) fn host_key(row: &impl Record) -> Result<HostKey> {
    Ok(HostKey {
        id: HostKeyId(get(row, "id")?),
        system_id: SystemId(get(row, "system_id")?),
        algorithm: get(row, "algorithm")?,
        fingerprint: get(row, "fingerprint")?,
        created_at: ts(get(row, "created_at")?)?,
    })
}

/// Columns of `jobs` read by [`job`].
macro_rules! job_cols {
    () => {
        "id, name, command, created_by, created_by_id, targets, \
        options, status, created_at, updated_at"
    };
}
pub(crate) use job_cols;
pub(crate) const JOB_COLS: &str = job_cols!();

pub(crate) fn job(row: &impl Record) -> Result<Job> {
    Ok(Job {
        id: JobId(get(row, "id")?),
        name: get(row, "name")?,
        command: get(row, "command")?,
        created_by: get(row, "created_by")?,
        created_by_id: get::<Option<Uuid>>(row, "created_by_id")?.map(UserId),
        targets: json(row, "targets")?,
        options: json(row, "options")?,
        status: JobStatus::parse(&get::<String>(row, "status")?)?,
        created_at: ts(get(row, "created_at")?)?,
        updated_at: ts(get(row, "updated_at")?)?,
    })
}

/// Columns of `jobs` read by [`counts`].
macro_rules! count_cols {
    () => {
        "n_pending, n_running, n_completed, n_failed, n_timeout, n_cancelled, n_lost"
    };
}
pub(crate) use count_cols;
pub(crate) const COUNT_COLS: &str = count_cols!();

pub(crate) fn counts(row: &impl Record) -> Result<StatusCounts> {
    Ok(StatusCounts {
        pending: u(get(row, "n_pending")?),
        running: u(get(row, "n_running")?),
        completed: u(get(row, "n_completed")?),
        failed: u(get(row, "n_failed")?),
        timeout: u(get(row, "n_timeout")?),
        cancelled: u(get(row, "n_cancelled")?),
        lost: u(get(row, "n_lost")?),
    })
}

/// Columns of `executions` read by [`execution`].
macro_rules! exec_cols {
    () => {
        "id, job_id, system_id, attempt, status, created_at, \
        not_before, started_at, completed_at, exit_code, signal, error, lease_owner, lease_token, \
        lease_expires_at, cancel_requested, output_bytes, output_dropped, next_seq"
    };
}
pub(crate) use exec_cols;
pub(crate) const EXEC_COLS: &str = exec_cols!();

pub(crate) fn execution(row: &impl Record) -> Result<Execution> {
    let id = ExecutionId(get(row, "id")?);
    let status = ExecutionStatus::parse(&get::<String>(row, "status")?)?;
    let owner: Option<String> = get(row, "lease_owner")?;
    let token: Option<Uuid> = get(row, "lease_token")?;
    let expires: Option<i64> = get(row, "lease_expires_at")?;
    let lease = match (status, owner, token, expires) {
        (ExecutionStatus::Running, Some(owner), Some(token), Some(exp)) => Some(Lease {
            execution_id: id,
            owner,
            token: LeaseToken(token),
            expires_at: ts(exp)?,
        }),
        _ => None,
    };
    let attempt: i64 = get(row, "attempt")?;
    let exit_code: Option<i64> = get(row, "exit_code")?;
    Ok(Execution {
        id,
        job_id: JobId(get(row, "job_id")?),
        system_id: SystemId(get(row, "system_id")?),
        attempt: u32::try_from(attempt).map_err(|e| corrupt("attempt", e))?,
        status,
        created_at: ts(get(row, "created_at")?)?,
        not_before: ts(get(row, "not_before")?)?,
        started_at: opt_ts(get(row, "started_at")?)?,
        completed_at: opt_ts(get(row, "completed_at")?)?,
        exit_code: exit_code
            .map(i32::try_from)
            .transpose()
            .map_err(|e| corrupt("exit code", e))?,
        signal: get(row, "signal")?,
        error: get(row, "error")?,
        lease,
        cancel_requested: get(row, "cancel_requested")?,
        output_bytes: u(get(row, "output_bytes")?),
        output_dropped: u(get(row, "output_dropped")?),
    })
}

pub(crate) fn chunk(row: &impl Record) -> Result<OutputChunk> {
    let data: Vec<u8> = get(row, "data")?;
    Ok(OutputChunk {
        execution_id: ExecutionId(get(row, "execution_id")?),
        seq: u(get(row, "seq")?),
        stream: Stream::parse(&get::<String>(row, "stream")?)?,
        data: data.into(),
        at: ts(get(row, "at")?)?,
    })
}

pub(crate) const AUDIT_COLS: &str = "id, at, event_type, actor, actor_id, resource_type, \
    resource_id, action, outcome, details";

pub(crate) fn audit(row: &impl Record) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: AuditId(get(row, "id")?),
        at: ts(get(row, "at")?)?,
        event_type: get(row, "event_type")?,
        actor: get(row, "actor")?,
        actor_id: get::<Option<Uuid>>(row, "actor_id")?.map(UserId),
        resource_type: get(row, "resource_type")?,
        resource_id: get(row, "resource_id")?,
        action: get(row, "action")?,
        outcome: AuditOutcome::parse(&get::<String>(row, "outcome")?)?,
        details: json(row, "details")?,
    })
}

macro_rules! user_cols {
    () => {
        "id, username, role, password_hash, active, created_at, updated_at"
    };
}
pub(crate) use user_cols;
pub(crate) const USER_COLS: &str = user_cols!();

pub(crate) fn user(row: &impl Record) -> Result<User> {
    Ok(User {
        id: UserId(get(row, "id")?),
        username: get(row, "username")?,
        role: Role::parse(&get::<String>(row, "role")?)?,
        password_hash: get(row, "password_hash")?,
        active: get(row, "active")?,
        created_at: ts(get(row, "created_at")?)?,
        updated_at: ts(get(row, "updated_at")?)?,
    })
}

/// A scope as (kind, value) columns.
pub(crate) fn scope_cols(s: &Scope) -> (&'static str, Option<String>) {
    match s {
        Scope::All => ("all", None),
        Scope::System(id) => ("system", Some(id.to_string())),
        Scope::Tag(t) => ("tag", Some(t.clone())),
    }
}

pub(crate) fn scope(row: &impl Record) -> Result<Scope> {
    let kind: String = get(row, "scope_kind")?;
    let value: Option<String> = get(row, "scope_value")?;
    match (kind.as_str(), value) {
        ("all", _) => Ok(Scope::All),
        ("system", Some(v)) => Ok(Scope::System(v.parse()?)),
        ("tag", Some(v)) => Ok(Scope::Tag(v)),
        (k, _) => Err(corrupt("grant scope", k)),
    }
}

pub(crate) fn token_kind(k: TokenKind) -> &'static str {
    match k {
        TokenKind::Refresh => "refresh",
        TokenKind::Api => "api",
    }
}

macro_rules! token_cols {
    () => {
        "id, user_id, kind, family, hash, name, scopes, created_at, \
        expires_at, used_at, revoked_at"
    };
}
pub(crate) use token_cols;
pub(crate) const TOKEN_COLS: &str = token_cols!();

pub(crate) fn token(row: &impl Record) -> Result<TokenRecord> {
    let kind: String = get(row, "kind")?;
    Ok(TokenRecord {
        id: get(row, "id")?,
        user_id: UserId(get(row, "user_id")?),
        kind: match kind.as_str() {
            "refresh" => TokenKind::Refresh,
            "api" => TokenKind::Api,
            k => return Err(corrupt("token kind", k)),
        },
        family: get(row, "family")?,
        hash: get(row, "hash")?,
        name: get(row, "name")?,
        scopes: json(row, "scopes")?,
        created_at: ts(get(row, "created_at")?)?,
        expires_at: opt_ts(get(row, "expires_at")?)?,
        used_at: opt_ts(get(row, "used_at")?)?,
        revoked_at: opt_ts(get(row, "revoked_at")?)?,
    })
}
