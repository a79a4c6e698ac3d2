//! The one public error type of Orca.
//!
//! Backends keep private error enums and convert at their boundary into [`Error`], choosing
//! an [`ErrorKind`]. Retry policy looks only at [`Error::retry`], never at messages.

use std::fmt;

use crate::ids::{ExecutionId, JobId, SystemId};

/// What went wrong, in terms a caller can act on. Frontends map kinds to transports
/// (HTTP status, Python exception class).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The thing asked for does not exist (or is outside the caller's scope).
    NotFound,
    /// A thing with the same unique key exists already.
    AlreadyExists,
    /// The request conflicts with the current state (for instance an illegal state transition).
    Conflict,
    /// A worker's lease on an execution is no longer valid; its writes were refused.
    LeaseLost,
    /// The input is malformed or violates a rule.
    InvalidInput,
    /// The caller is known but not allowed to do this.
    PermissionDenied,
    /// The caller is not authenticated.
    Unauthenticated,
    /// An operation did not finish in time.
    Timeout,
    /// A remote system or service could not be reached or dropped the connection.
    ConnectionFailed,
    /// Authentication against a remote system failed.
    AuthFailed,
    /// A remote host key was unknown or did not match the pinned one.
    HostKeyRejected,
    /// The backend does not support what was asked.
    Unsupported,
    /// A ciphertext could not be decrypted (wrong key, tampered, or copied to another record).
    Crypto,
    /// The database is not Orca's, is from a newer version, or is in use by another engine.
    Incompatible,
    /// A storage backend failed.
    Storage,
    /// Anything else: a bug or an unexpected condition.
    Unexpected,
}

impl ErrorKind {
    /// A stable snake_case code for transports and logs.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::LeaseLost => "lease_lost",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ConnectionFailed => "connection_failed",
            ErrorKind::AuthFailed => "auth_failed",
            ErrorKind::HostKeyRejected => "host_key_rejected",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Crypto => "crypto",
            ErrorKind::Incompatible => "incompatible",
            ErrorKind::Storage => "storage",
            ErrorKind::Unexpected => "unexpected",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether an operation that failed with this error is worth trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// Trying again cannot help (bad input, permission, host key...).
    Never,
    /// A transient failure that happened before anything reached the remote host: safe to retry.
    Safe,
    /// A transient failure after the command may have started: retry only if the job allows it.
    Unsafe,
}

/// Where an error happened, for messages and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// The system involved, if any.
    pub system: Option<SystemId>,
    /// The job involved, if any.
    pub job: Option<JobId>,
    /// The execution involved, if any.
    pub execution: Option<ExecutionId>,
}

/// Orca's error: a kind, a human message that says what to do, a retry class and context.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    retry: Retry,
    context: ErrorContext,
}

/// Orca's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message`. The retry class defaults from the kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let retry = match kind {
            ErrorKind::ConnectionFailed | ErrorKind::Timeout => Retry::Safe,
            ErrorKind::Storage => Retry::Safe,
            _ => Retry::Never,
        };
        Error {
            kind,
            message: message.into(),
            retry,
            context: ErrorContext::default(),
        }
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// Shorthand for [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// Shorthand for [`ErrorKind::AlreadyExists`].
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    /// Shorthand for [`ErrorKind::PermissionDenied`].
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
    /// Shorthand for [`ErrorKind::Storage`].
    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Storage, message)
    }
    /// Shorthand for [`ErrorKind::Unexpected`].
    pub fn unexpected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unexpected, message)
    }
    /// Shorthand for [`ErrorKind::LeaseLost`].
    pub fn lease_lost(execution: ExecutionId) -> Self {
        Self::new(
            ErrorKind::LeaseLost,
            format!("the lease on execution {execution} is no longer held by this worker"),
        )
        .with_execution(execution)
    }

    /// Replace the retry class.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }
    /// Attach a system.
    pub fn with_system(mut self, id: SystemId) -> Self {
        self.context.system = Some(id);
        self
    }
    /// Attach a job.
    pub fn with_job(mut self, id: JobId) -> Self {
        self.context.job = Some(id);
        self
    }
    /// Attach an execution.
    pub fn with_execution(mut self, id: ExecutionId) -> Self {
        self.context.execution = Some(id);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The retry class.
    pub fn retry(&self) -> Retry {
        self.retry
    }
    /// Whether retrying is safe without the job's permission.
    pub fn is_retryable(&self) -> bool {
        self.retry == Retry::Safe
    }
    /// The context.
    pub fn context(&self) -> &ErrorContext {
        &self.context
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidInput, format!("invalid JSON: {e}"))
    }
}
