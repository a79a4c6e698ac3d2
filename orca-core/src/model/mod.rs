//! Orca's data model: systems, credentials, jobs, executions, output, audit, users.

mod audit;
mod execution;
mod job;
mod output;
mod system;
mod user;

pub use audit::{AuditFilter, AuditOutcome, AuditRecord};
pub use execution::{Execution, ExecutionStatus, Finish, Lease};
pub use job::{Job, JobFilter, JobOptions, JobSpec, JobStatus, Shell, StatusCounts, Targets};
pub use output::{OutputChunk, Stream};
pub use system::{
    Credential, Health, HealthStatus, HostKey, HostKeyPolicy, NewSystem, SealedSecret, System,
    SystemFilter, SystemPatch, SystemType,
};
pub use user::{Grant, NewUser, Principal, Role, Scope, User};

/// A point in time (UTC). Stores keep at least microsecond precision.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// A page of a listing: at most `limit` items after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    /// How many items to skip.
    pub offset: u64,
    /// How many items at most (1..=1000).
    pub limit: u32,
}

impl Page {
    /// The largest page a listing returns.
    pub const MAX_LIMIT: u32 = 1000;

    /// A page, validated.
    pub fn new(offset: u64, limit: u32) -> crate::Result<Self> {
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(crate::Error::invalid(format!(
                "page limit must be between 1 and {}, got {limit}",
                Self::MAX_LIMIT
            )));
        }
        Ok(Page { offset, limit })
    }
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: 100,
        }
    }
}

/// Truncate a timestamp to microseconds, the precision every store keeps.
pub fn micros(t: Timestamp) -> Timestamp {
    use chrono::{DurationRound, TimeDelta};
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}
