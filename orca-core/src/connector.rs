//! The Connector seam: run one command on one target and stream what it prints.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::ids::{ExecutionId, SystemId};
use crate::model::{Credential, HealthStatus, HostKey, Shell, Stream, System, SystemType};

/// What a connector can do, declared up front so the engine refuses unsupported requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectorCapabilities {
    /// Can allocate a PTY.
    pub pty: bool,
    /// Can transfer files.
    pub file_transfer: bool,
    /// Supports `Shell::Powershell`.
    pub powershell: bool,
    /// Supports POSIX shells (`sh`, `bash`).
    pub posix_shell: bool,
    /// Can set environment variables for the command.
    pub env: bool,
}

/// Access to the pinned host keys of systems, for connectors that verify them (SSH).
/// Backed by the Store through the facade, so pins are shared by all nodes and audited.
#[async_trait]
pub trait HostKeyStore: Debug + Send + Sync + 'static {
    /// The keys pinned for `system`.
    async fn pinned(&self, system: SystemId) -> Result<Vec<HostKey>>;
    /// Pin `algorithm`/`fingerprint` for `system` if no key is pinned yet (trust on first use).
    /// Returns the keys pinned after the call: when two callers race, exactly one key wins and
    /// both see it.
    async fn pin_first(
        &self,
        system: SystemId,
        algorithm: &str,
        fingerprint: &str,
    ) -> Result<Vec<HostKey>>;
}

/// Everything a connector needs to reach one system.
#[derive(Debug, Clone)]
pub struct Target {
    /// The system (its credential field is still sealed; use `credential`).
    pub system: System,
    /// The decrypted credential, in memory only.
    pub credential: Credential,
    /// The execution this is for (exported as `ORCA_EXECUTION_ID` where possible).
    pub execution_id: Option<ExecutionId>,
    /// Host key pins, for connectors that verify host keys.
    pub host_keys: Option<Arc<dyn HostKeyStore>>,
}

/// The command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Command text.
    pub command: String,
    /// How to interpret it.
    pub shell: Shell,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Kill it after this long.
    pub timeout: Option<Duration>,
}

impl CommandSpec {
    /// A command with the default shell and no timeout.
    pub fn new(command: impl Into<String>) -> Self {
        CommandSpec {
            command: command.into(),
            shell: Shell::Default,
            env: BTreeMap::new(),
            timeout: None,
        }
    }
    /// With a timeout.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// The command exited by itself (see exit code / signal).
    Exited,
    /// The connector killed it after the timeout.
    TimedOut,
    /// It was cancelled.
    Cancelled,
}

/// The outcome of a run. A command that ran is an outcome, not an error, whatever its exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// How it ended.
    pub end: RunEnd,
    /// Exit code, if it exited. `None` with no signal means unknown (never assume 0).
    pub exit_code: Option<i32>,
    /// Signal name, if it was killed by one (e.g. `TERM`, `KILL`).
    pub signal: Option<String>,
    /// For timeouts and cancels: whether the connector confirmed the remote command is gone.
    pub kill_confirmed: Option<bool>,
}

impl RunOutcome {
    /// A normal exit with `code`.
    pub fn exited(code: i32) -> Self {
        RunOutcome {
            end: RunEnd::Exited,
            exit_code: Some(code),
            signal: None,
            kill_confirmed: None,
        }
    }
}

/// The result of a health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Healthy or unhealthy.
    pub status: HealthStatus,
    /// How long the probe took.
    pub latency: Duration,
    /// Why it failed.
    pub reason: Option<String>,
}

/// Where a connector writes output. Bounded: `send` waits when the engine is behind, so output
/// never piles up in memory. An error from `send` means nobody reads any more: stop the command.
#[derive(Debug, Clone)]
pub struct OutputSink {
    tx: mpsc::Sender<(Stream, Bytes)>,
}

/// The engine's end of an [`OutputSink`].
pub type OutputReceiver = mpsc::Receiver<(Stream, Bytes)>;

impl OutputSink {
    /// A sink and its receiver, buffering at most `capacity` pieces.
    pub fn channel(capacity: usize) -> (OutputSink, OutputReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (OutputSink { tx }, rx)
    }
    /// Send bytes of `stream`. Empty input is ignored.
    pub async fn send(&self, stream: Stream, data: Bytes) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.tx
            .send((stream, data))
            .await
            .map_err(|_| crate::Error::unexpected("the output receiver is gone"))
    }
}

/// Runs commands on systems of some types.
///
/// # Contract
/// - `run` streams stdout and stderr separately, in order, as they arrive, to `sink`, and
///   returns when the command has ended. Exit codes are returned faithfully; a command that
///   ended without an exit status is `exit_code: None, signal: None` (unknown), never 0.
/// - `run` enforces `command.timeout` and `cancel` by stopping the command on the target (its
///   whole process group where the platform allows) and returns `RunEnd::TimedOut` or
///   `RunEnd::Cancelled`, with `kill_confirmed` saying whether the kill was confirmed.
/// - Failures to reach, authenticate or verify the target are `Err` with a precise kind
///   (`ConnectionFailed`, `AuthFailed`, `HostKeyRejected`, `Timeout`...) and retry class
///   `Safe` only if nothing reached the host.
/// - Connections may be pooled inside the connector; a connector holds no retry loop.
/// - `probe` checks reachability and authentication and reports latency; it never errors for
///   an unhealthy target (that is a report), only for a misuse.
#[async_trait]
pub trait Connector: Debug + Send + Sync + 'static {
    /// A short name (`local`, `ssh`, `winrm`).
    fn name(&self) -> &'static str;
    /// The system types it serves.
    fn system_types(&self) -> &'static [SystemType];
    /// What it can do.
    fn capabilities(&self) -> ConnectorCapabilities;
    /// Run `command` on `target`.
    async fn run(
        &self,
        target: &Target,
        command: &CommandSpec,
        sink: OutputSink,
        cancel: CancellationToken,
    ) -> Result<RunOutcome>;
    /// Probe `target`'s health.
    async fn probe(&self, target: &Target) -> ProbeReport;
}

/// A shared connector.
pub type DynConnector = dyn Connector;
