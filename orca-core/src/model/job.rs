use std::collections::BTreeMap;

use super::{ExecutionStatus, Timestamp};
use crate::ids::{JobId, UserId};

/// How a command is interpreted on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shell {
    /// The target's default: `sh -c` on Linux/local, `cmd` on Windows.
    #[default]
    Default,
    /// POSIX `sh -c`.
    Sh,
    /// `bash -c`.
    Bash,
    /// Windows `cmd.exe /c`.
    Cmd,
    /// Windows PowerShell (`-EncodedCommand`).
    Powershell,
}

impl Shell {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Shell::Default => "default",
            Shell::Sh => "sh",
            Shell::Bash => "bash",
            Shell::Cmd => "cmd",
            Shell::Powershell => "powershell",
        }
    }
    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        [
            Shell::Default,
            Shell::Sh,
            Shell::Bash,
            Shell::Cmd,
            Shell::Powershell,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| {
            crate::Error::invalid(format!(
                "unknown shell '{s}': use default, sh, bash, cmd or powershell"
            ))
        })
    }
}

/// Which systems a job runs on: named systems (by name or id) and/or every active system
/// carrying one of the tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Targets {
    /// System names or ids.
    #[serde(default)]
    pub systems: Vec<String>,
    /// Tags: every active system with any of them.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// How a job runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobOptions {
    /// At most this many of the job's executions run at once (None: the engine's limit).
    pub concurrency: Option<u32>,
    /// Per-execution timeout in seconds (None: the engine's default).
    pub timeout_seconds: Option<u64>,
    /// How many times a failed execution is retried (connection failures always qualify).
    pub retries: u32,
    /// Whether a non-zero exit also counts as retryable.
    pub retry_on_nonzero_exit: bool,
    /// Whether an execution whose worker died may be re-queued instead of ending `lost`
    /// (only when nothing had reached the host).
    pub requeue_lost: bool,
    /// The shell.
    pub shell: Shell,
    /// Extra environment variables for the command.
    pub env: BTreeMap<String, String>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            concurrency: None,
            timeout_seconds: None,
            retries: 0,
            retry_on_nonzero_exit: false,
            requeue_lost: false,
            shell: Shell::Default,
            env: BTreeMap::new(),
        }
    }
}

/// What a caller submits.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// A name (defaults to the command's first line).
    #[serde(default)]
    pub name: Option<String>,
    /// The command.
    pub command: String,
    /// The targets.
    pub targets: Targets,
    /// Options.
    #[serde(default)]
    pub options: JobOptions,
}

/// A job's status, derived from its executions by [`JobStatus::derive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Nothing has started yet.
    Pending,
    /// Some executions are running or waiting.
    Running,
    /// Every execution completed.
    Completed,
    /// All ended and at least one failed, timed out or was lost.
    Failed,
    /// All ended, none failed and at least one was cancelled.
    Cancelled,
}

/// How many executions of a job are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusCounts {
    /// Pending.
    pub pending: u64,
    /// Running.
    pub running: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// Timed out.
    pub timeout: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Lost.
    pub lost: u64,
}

impl StatusCounts {
    /// Count one execution in `status`.
    pub fn add(&mut self, status: ExecutionStatus, n: u64) {
        match status {
            ExecutionStatus::Pending => self.pending += n,
            ExecutionStatus::Running => self.running += n,
            ExecutionStatus::Completed => self.completed += n,
            ExecutionStatus::Failed => self.failed += n,
            ExecutionStatus::Timeout => self.timeout += n,
            ExecutionStatus::Cancelled => self.cancelled += n,
            ExecutionStatus::Lost => self.lost += n,
        }
    }
    /// Total.
    pub fn total(&self) -> u64 {
        self.pending
            + self.running
            + self.completed
            + self.failed
            + self.timeout
            + self.cancelled
            + self.lost
    }
}

impl JobStatus {
    /// The one rule for a job's status given its executions' states.
    pub fn derive(c: &StatusCounts) -> JobStatus {
        let ended = c.completed + c.failed + c.timeout + c.cancelled + c.lost;
        if c.total() == 0 {
            return JobStatus::Completed;
        }
        if ended < c.total() {
            if c.running == 0 && ended == 0 {
                JobStatus::Pending
            } else {
                JobStatus::Running
            }
        } else if c.failed + c.timeout + c.lost > 0 {
            JobStatus::Failed
        } else if c.cancelled > 0 {
            JobStatus::Cancelled
        } else {
            JobStatus::Completed
        }
    }
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "pending" => Ok(Self::Pending),
            "running" => Ok(Self::Running),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            "cancelled" => Ok(Self::Cancelled),
            o => Err(crate::Error::invalid(format!("unknown job status '{o}'"))),
        }
    }
}

/// A submitted job.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    /// Id.
    pub id: JobId,
    /// Name.
    pub name: String,
    /// Command.
    pub command: String,
    /// Who submitted it.
    pub created_by: String,
    /// The submitting user, if a user.
    pub created_by_id: Option<UserId>,
    /// The targets as given.
    pub targets: Targets,
    /// Options.
    pub options: JobOptions,
    /// Status (derived from the executions; kept up to date by the Store).
    pub status: JobStatus,
    /// Created.
    pub created_at: Timestamp,
    /// Last status change.
    pub updated_at: Timestamp,
}

/// Filter for job listings. Newest first.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobFilter {
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Only by this creator.
    pub created_by: Option<String>,
}

impl JobFilter {
    /// Whether `j` passes the filter.
    pub fn matches(&self, j: &Job) -> bool {
        self.status.is_none_or(|s| j.status == s)
            && self.created_by.as_ref().is_none_or(|c| &j.created_by == c)
    }
}
