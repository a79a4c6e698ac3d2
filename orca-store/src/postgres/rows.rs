//! Column lists and conversions between rows and the model.

use std::collections::BTreeMap;

use orca_core::ids::{AuditId, ExecutionId, HostKeyId, JobId, LeaseToken, SystemId, UserId};
use orca_core::model::{
    AuditOutcome, AuditRecord, Execution, ExecutionStatus, Health, HealthStatus, HostKey,
    HostKeyPolicy, Job, JobOptions, JobStatus, Lease, OutputChunk, Role, SealedSecret,
    StatusCounts, Stream, System, SystemType, Targets, Timestamp, User,
};
use orca_core::{Result, TokenKind, TokenRecord};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::error::corrupt;

macro_rules! system_cols {
    () => {
        "id, name, hostname, port, system_type, username, credential, tags, active, \
         health_status, health_checked_at, health_latency_ms, health_reason, host_key_policy, \
         options, created_at, updated_at"
    };
}
macro_rules! job_cols {
    () => {
        "id, name, command, created_by, created_by_id, targets, options, status, created_at, \
         updated_at"
    };
}
macro_rules! execution_cols {
    () => {
        "id, job_id, system_id, attempt, status, created_at, not_before, started_at, \
         completed_at, exit_code, signal, error, lease_owner, lease_token, lease_expires_at, \
         cancel_requested, output_bytes, output_dropped"
    };
}
macro_rules! audit_cols {
    () => {
        "id, at, event_type, actor, actor_id, resource_type, resource_id, action, outcome, details"
    };
}
macro_rules! user_cols {
    () => {
        "id, username, role, password_hash, active, created_at, updated_at"
    };
}
macro_rules! token_cols {
    () => {
        "id, user_id, kind, family, hash, name, scopes, created_at, expires_at, used_at, \
         revoked_at"
    };
}
pub(crate) use {audit_cols, execution_cols, job_cols, system_cols, token_cols, user_cols};

fn get<'r, T>(row: &'r PgRow, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col)
        .map_err(|e| corrupt("column", format!("{col}: {e}")))
}

/// `u64` → `bigint`, refusing values PostgreSQL cannot hold.
pub(crate) fn i64_of(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| orca_core::Error::invalid(format!("{what} {v} is too large")))
}

fn u64_of(v: i64, what: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(what, format!("negative value {v}")))
}

pub(crate) fn system(row: &PgRow) -> Result<System> {
    let port: i32 = get(row, "port")?;
    let latency: Option<i64> = get(row, "health_latency_ms")?;
    let options: Json<BTreeMap<String, String>> = get(row, "options")?;
    Ok(System {
        id: SystemId(get(row, "id")?),
        name: get(row, "name")?,
        hostname: get(row, "hostname")?,
        port: u16::try_from(port).map_err(|_| corrupt("system port", port))?,
        system_type: SystemType::parse(&get::<String>(row, "system_type")?)?,
        username: get(row, "username")?,
        credential: get::<Option<String>>(row, "credential")?.map(SealedSecret),
        tags: get(row, "tags")?,
        active: get(row, "active")?,
        health: Health {
            status: HealthStatus::parse(&get::<String>(row, "health_status")?)?,
            checked_at: get(row, "health_checked_at")?,
            latency_ms: latency.map(|v| u64_of(v, "health latency")).transpose()?,
            reason: get(row, "health_reason")?,
        },
        host_key_policy: HostKeyPolicy::parse(&get::<String>(row, "host_key_policy")?)?,
        options: options.0,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn host_key(row: &PgRow) -> Result<HostKey> {
    Ok(HostKey {
        id: HostKeyId(get(row, "id")?),
        system_id: SystemId(get(row, "system_id")?),
        algorithm: get(row, "algorithm")?,
        fingerprint: get(row, "fingerprint")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn job(row: &PgRow) -> Result<Job> {
    let targets: Json<Targets> = get(row, "targets")?;
    let options: Json<JobOptions> = get(row, "options")?;
    Ok(Job {
        id: JobId(get(row, "id")?),
        name: get(row, "name")?,
        command: get(row, "command")?,
        created_by: get(row, "created_by")?,
        created_by_id: get::<Option<Uuid>>(row, "created_by_id")?.map(UserId),
        targets: targets.0,
        options: options.0,
        status: JobStatus::parse(&get::<String>(row, "status")?)?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// The per-state counters of a `jobs` row (`n_pending` ...).
pub(crate) fn counts(row: &PgRow) -> Result<StatusCounts> {
    let n = |c: &'static str| -> Result<u64> { u64_of(get::<i64>(row, c)?, "job counter") };
    Ok(StatusCounts {
        pending: n("n_pending")?,
        running: n("n_running")?,
        completed: n("n_completed")?,
        failed: n("n_failed")?,
        timeout: n("n_timeout")?,
        cancelled: n("n_cancelled")?,
        lost: n("n_lost")?,
    })
}

pub(crate) fn execution(row: &PgRow) -> Result<Execution> {
    let id = ExecutionId(get(row, "id")?);
    let attempt: i32 = get(row, "attempt")?;
    let token: Option<Uuid> = get(row, "lease_token")?;
    let lease = match token {
        Some(token) => Some(Lease {
            execution_id: id,
            owner: get::<Option<String>>(row, "lease_owner")?.unwrap_or_default(),
            token: LeaseToken(token),
            expires_at: get::<Option<Timestamp>>(row, "lease_expires_at")?
                .ok_or_else(|| corrupt("lease", "a lease without expiry"))?,
        }),
        None => None,
    };
    Ok(Execution {
        id,
        job_id: JobId(get(row, "job_id")?),
        system_id: SystemId(get(row, "system_id")?),
        attempt: u32::try_from(attempt).map_err(|_| corrupt("attempt", attempt))?,
        status: ExecutionStatus::parse(&get::<String>(row, "status")?)?,
        created_at: get(row, "created_at")?,
        not_before: get(row, "not_before")?,
        started_at: get(row, "started_at")?,
        completed_at: get(row, "completed_at")?,
        exit_code: get(row, "exit_code")?,
        signal: get(row, "signal")?,
        error: get(row, "error")?,
        lease,
        cancel_requested: get(row, "cancel_requested")?,
        output_bytes: u64_of(get(row, "output_bytes")?, "output bytes")?,
        output_dropped: u64_of(get(row, "output_dropped")?, "output dropped")?,
    })
}

pub(crate) fn chunk(row: &PgRow) -> Result<OutputChunk> {
    let data: Vec<u8> = get(row, "data")?;
    Ok(OutputChunk {
        execution_id: ExecutionId(get(row, "execution_id")?),
        seq: u64_of(get(row, "seq")?, "output seq")?,
        stream: Stream::parse(&get::<String>(row, "stream")?)?,
        data: data.into(),
        at: get(row, "at")?,
    })
}

pub(crate) fn audit(row: &PgRow) -> Result<AuditRecord> {
    let details: Json<serde_json::Value> = get(row, "details")?;
    Ok(AuditRecord {
        id: AuditId(get(row, "id")?),
        at: get(row, "at")?,
        event_type: get(row, "event_type")?,
        actor: get(row, "actor")?,
        actor_id: get::<Option<Uuid>>(row, "actor_id")?.map(UserId),
        resource_type: get(row, "resource_type")?,
        resource_id: get(row, "resource_id")?,
        action: get(row, "action")?,
        outcome: AuditOutcome::parse(&get::<String>(row, "outcome")?)?,
        details: details.0,
    })
}

pub(crate) fn user(row: &PgRow) -> Result<User> {
    Ok(User {
        id: UserId(get(row, "id")?),
        username: get(row, "username")?,
        role: Role::parse(&get::<String>(row, "role")?)?,
        password_hash: get(row, "password_hash")?,
        active: get(row, "active")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn token_kind_str(k: TokenKind) -> &'static str {
    match k {
        TokenKind::Refresh => "refresh",
        TokenKind::Api => "api",
    }
}

pub(crate) fn token(row: &PgRow) -> Result<TokenRecord> {
    let kind: String = get(row, "kind")?;
    let kind = match kind.as_str() {
        "refresh" => TokenKind::Refresh,
        "api" => TokenKind::Api,
        other => return Err(corrupt("token kind", other)),
    };
    Ok(TokenRecord {
        id: get(row, "id")?,
        user_id: UserId(get(row, "user_id")?),
        kind,
        family: get(row, "family")?,
        hash: get(row, "hash")?,
        name: get(row, "name")?,
        scopes: get(row, "scopes")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        used_at: get(row, "used_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}
