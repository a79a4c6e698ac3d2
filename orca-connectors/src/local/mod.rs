//! Local process connector: runs commands on the machine Orca itself runs on.
//!
//! ```
//! use std::sync::Arc;
//! use orca_connectors::local::{LocalConfig, LocalConnector};
//! use orca_core::{CancellationToken, CommandSpec, Connector, OutputSink};
//! # async fn example(target: orca_core::Target) -> orca_core::Result<()> {
//! let connector: Arc<dyn Connector> = Arc::new(LocalConnector::new(LocalConfig::default())?);
//! let (sink, mut output) = OutputSink::channel(64);
//! let printer = tokio::spawn(async move {
//!     while let Some((stream, bytes)) = output.recv().await {
//!         println!("{}: {}", stream.as_str(), String::from_utf8_lossy(&bytes));
//!     }
//! });
//! let outcome = connector
//!     .run(&target, &CommandSpec::new("uname -a"), sink, CancellationToken::new())
//!     .await?;
//! printer.await.ok();
//! assert_eq!(outcome.exit_code, Some(0));
//! # Ok(()) }
//! ```
//!
//! # What a command sees
//! - `sh -c <command>` (`Shell::Default`, `Shell::Sh`) or `bash -c <command>` (`Shell::Bash`);
//!   `Cmd` and `Powershell` are refused with `Unsupported`.
//! - Standard input is `/dev/null`; stdout and stderr are separate pipes, forwarded to the
//!   sink as they arrive, in pieces of at most [`LocalConfig::read_chunk`] bytes, byte for byte
//!   (not necessarily UTF-8). The sink is bounded, so a command that prints faster than the
//!   engine stores waits on its pipe: memory stays flat whatever the output size.
//! - A clean environment: the variables named in [`LocalConfig::env_passthrough`] (by
//!   default `PATH`, `HOME`, `LANG`... see [`config::DEFAULT_ENV_PASSTHROUGH`]), then the job's
//!   `env`, then `ORCA_EXECUTION_ID` when the run belongs to an execution. Orca's own secrets in
//!   its environment never reach commands. When the command runs as another user, `HOME` is
//!   the run's own directory (below) and `USER`/`LOGNAME` that user's name.
//! - Its user: when Orca runs as root, [`LocalConfig::user`] (default `nobody`), with that
//!   user's uid and primary group and no supplementary groups, so the command cannot read
//!   Orca's data directory (key ring, JWT secret, database). A user that resolves to uid 0 is
//!   refused with `PermissionDenied` unless [`LocalConfig::allow_root`] is set; an unknown user
//!   is `InvalidInput`. Probes follow the same rule. When Orca does not run as root, commands
//!   run as Orca's own user (there is nothing to drop to).
//! - A working directory of its own: a fresh directory under Orca's temporary directory
//!   (`orca-<execution id>-XXXXXX`, mode `0700`, owned by the command's user), removed with
//!   everything in it when the run ends (also when it is abandoned). The system option `cwd`
//!   (an absolute path) replaces it as the working directory; a `cwd` that does not exist
//!   fails the run with `ConnectionFailed` before anything starts. Other options are refused
//!   with `InvalidInput` so a typo is not ignored.
//!
//! # How a command is stopped
//! Each command leads its own process group. On timeout or cancel the whole group gets
//! `SIGTERM`, then `SIGKILL` after [`LocalConfig::kill_grace`]; the run reports
//! `kill_confirmed: Some(true)` once no live process is left in the group. If the command's
//! main process exits while others in its group still hold the output pipes, they may write
//! for [`LocalConfig::drain_grace`] and are then killed the same way; processes that detached
//! from the pipes (`nohup job >log 2>&1 &`) are left running on purpose. If the output
//! receiver goes away, the group is killed and `run` returns an error. If the `run` future is
//! dropped, the group is killed with `SIGKILL`.
//!
//! A command killed by a signal reports its name (`TERM`, `KILL`, `SEGV`) and no exit code.

mod backend;
pub mod config;
mod error;
mod group;
mod isolation;
mod process;

pub use backend::{LocalConnector, OPTIONS};
pub use config::LocalConfig;
