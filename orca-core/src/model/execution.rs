use super::Timestamp;
use crate::ids::{ExecutionId, JobId, LeaseToken, SystemId};

/// The state of one execution. Legal moves are encoded once, in
/// [`ExecutionStatus::can_become`], and every Store enforces them:
///
/// ```text
/// pending -> running -> completed | failed | timeout | cancelled | lost
/// pending -> cancelled
/// running -> pending   (re-queued for a retry, attempt + 1)
/// ```
/// Terminal states never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Waiting to be claimed.
    Pending,
    /// Claimed by a worker, running.
    Running,
    /// Exit code 0.
    Completed,
    /// Non-zero exit, or an error.
    Failed,
    /// Killed after its timeout.
    Timeout,
    /// Cancelled by a user.
    Cancelled,
    /// Its worker died; the outcome on the host is unknown.
    Lost,
}

impl ExecutionStatus {
    /// All states.
    pub const ALL: [ExecutionStatus; 7] = [
        ExecutionStatus::Pending,
        ExecutionStatus::Running,
        ExecutionStatus::Completed,
        ExecutionStatus::Failed,
        ExecutionStatus::Timeout,
        ExecutionStatus::Cancelled,
        ExecutionStatus::Lost,
    ];

    /// Whether this is an end state.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutionStatus::Pending | ExecutionStatus::Running)
    }

    /// The legal transitions, encoded once.
    pub fn can_become(self, to: ExecutionStatus) -> bool {
        use ExecutionStatus::*;
        matches!(
            (self, to),
            (Pending, Running)
                | (Pending, Cancelled)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Timeout)
                | (Running, Cancelled)
                | (Running, Lost)
                | (Running, Pending)
        )
    }

    /// `Ok` if the transition is legal, otherwise a `Conflict` error that names both states.
    pub fn check_transition(self, to: ExecutionStatus, id: ExecutionId) -> crate::Result<()> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(crate::Error::conflict(format!(
                "execution {id} cannot go from {} to {}",
                self.as_str(),
                to.as_str()
            ))
            .with_execution(id))
        }
    }

    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Pending => "pending",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Timeout => "timeout",
            ExecutionStatus::Cancelled => "cancelled",
            ExecutionStatus::Lost => "lost",
        }
    }
    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| crate::Error::invalid(format!("unknown execution status '{s}'")))
    }
}

/// A worker's claim on a running execution. Every worker write carries it; a store refuses
/// writes whose token is not the current one ([`crate::ErrorKind::LeaseLost`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The worker that holds it.
    pub owner: String,
    /// Fencing token.
    pub token: LeaseToken,
    /// When it expires unless renewed.
    pub expires_at: Timestamp,
}

/// One run of a job on one system.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Execution {
    /// Id.
    pub id: ExecutionId,
    /// The job.
    pub job_id: JobId,
    /// The system.
    pub system_id: SystemId,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// State.
    pub status: ExecutionStatus,
    /// Created.
    pub created_at: Timestamp,
    /// Not claimed before this time (retry backoff).
    pub not_before: Timestamp,
    /// When it (last) started running.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
    /// Exit code, if the command exited.
    pub exit_code: Option<i32>,
    /// Signal name, if the command was killed by one.
    pub signal: Option<String>,
    /// Why it failed (connection error, timeout, ...).
    pub error: Option<String>,
    /// The current lease, while running.
    pub lease: Option<Lease>,
    /// A user asked to cancel it while it runs.
    pub cancel_requested: bool,
    /// Output bytes kept.
    pub output_bytes: u64,
    /// Output bytes dropped by the output cap.
    pub output_dropped: u64,
}

impl Execution {
    /// A new pending execution.
    pub fn pending(job_id: JobId, system_id: SystemId, now: Timestamp) -> Self {
        let now = super::micros(now);
        Execution {
            id: ExecutionId::new(),
            job_id,
            system_id,
            attempt: 1,
            status: ExecutionStatus::Pending,
            created_at: now,
            not_before: now,
            started_at: None,
            completed_at: None,
            exit_code: None,
            signal: None,
            error: None,
            lease: None,
            cancel_requested: false,
            output_bytes: 0,
            output_dropped: 0,
        }
    }
}

/// How a worker ends (or re-queues) an execution it holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Finish {
    /// The new status: a terminal one, or `Pending` to re-queue for a retry.
    pub status: ExecutionStatus,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal.
    pub signal: Option<String>,
    /// Reason.
    pub error: Option<String>,
    /// For a re-queue: not before this time.
    pub retry_at: Option<Timestamp>,
    /// Bytes dropped by the output cap.
    pub output_dropped: u64,
}

impl Finish {
    /// A terminal finish with `status`.
    pub fn new(status: ExecutionStatus) -> Self {
        Finish {
            status,
            exit_code: None,
            signal: None,
            error: None,
            retry_at: None,
            output_dropped: 0,
        }
    }
    /// Completed (exit 0) or failed (non-zero) from an exit code.
    pub fn exited(code: i32) -> Self {
        let mut f = Self::new(if code == 0 {
            ExecutionStatus::Completed
        } else {
            ExecutionStatus::Failed
        });
        f.exit_code = Some(code);
        f
    }
    /// Failed with a reason.
    pub fn failed(reason: impl Into<String>) -> Self {
        let mut f = Self::new(ExecutionStatus::Failed);
        f.error = Some(reason.into());
        f
    }
    /// Re-queued for a retry at `at`, with the reason of the failed attempt.
    pub fn retry(at: Timestamp, reason: impl Into<String>) -> Self {
        let mut f = Self::new(ExecutionStatus::Pending);
        f.retry_at = Some(super::micros(at));
        f.error = Some(reason.into());
        f
    }
}
