//! A scripted connector for tests, examples and engine benchmarks: it "runs" a tiny command
//! language in-process, so the engine can be exercised without processes or networks.
//!
//! Commands, separated by `;`:
//! - `true` / `noop`: nothing; `echo TEXT` / `stderr TEXT`: a line on stdout / stderr;
//! - `bytes N`: N bytes of `x` on stdout; `exit N`: end with exit code N;
//! - `sleep MS`: wait (cancel and timeout apply); `hang`: wait until cancelled or timed out;
//! - `connect-fail`: a `ConnectionFailed` error (retryable); `fail-times N`: `ConnectionFailed`
//!   for the first N runs of the same execution, then success;
//! - `print-secret`: print the target's password (to test masking); `panic`: panic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::connector::{
    CommandSpec, Connector, ConnectorCapabilities, OutputSink, ProbeReport, RunEnd, RunOutcome,
    Target,
};
use crate::ids::ExecutionId;
use crate::model::{Credential, HealthStatus, Stream, SystemType};
use crate::{Error, ErrorKind, Result};

/// See the module docs.
#[derive(Debug, Default)]
pub struct ScriptedConnector {
    attempts: Mutex<HashMap<ExecutionId, u32>>,
}

impl ScriptedConnector {
    /// A new scripted connector.
    pub fn new() -> Self {
        Self::default()
    }
}

enum Step {
    Continue,
    End(RunOutcome),
}

impl ScriptedConnector {
    async fn step(
        &self,
        target: &Target,
        part: &str,
        sink: &OutputSink,
        stop: &CancellationToken,
    ) -> Result<Step> {
        let (verb, arg) = part.split_once(' ').unwrap_or((part, ""));
        let num = |a: &str| -> Result<u64> {
            a.trim()
                .parse()
                .map_err(|_| Error::invalid(format!("scripted: '{part}' needs a number")))
        };
        match verb {
            "" | "true" | "noop" => {}
            "echo" => {
                sink.send(Stream::Stdout, Bytes::from(format!("{arg}\n")))
                    .await?
            }
            "stderr" => {
                sink.send(Stream::Stderr, Bytes::from(format!("{arg}\n")))
                    .await?
            }
            "bytes" => {
                let mut left = num(arg)? as usize;
                let block = Bytes::from(vec![b'x'; 64 * 1024]);
                while left > 0 {
                    let n = left.min(block.len());
                    sink.send(Stream::Stdout, block.slice(..n)).await?;
                    left -= n;
                }
            }
            "exit" => return Ok(Step::End(RunOutcome::exited(num(arg)? as i32))),
            "sleep" => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(num(arg)?)) => {}
                    _ = stop.cancelled() => {}
                }
            }
            "hang" => stop.cancelled().await,
            "connect-fail" => {
                return Err(Error::new(
                    ErrorKind::ConnectionFailed,
                    format!("scripted: cannot connect to {}", target.system.hostname),
                ));
            }
            "fail-times" => {
                let id = target.execution_id.unwrap_or_default();
                let n = {
                    let mut m = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
                    let c = m.entry(id).or_insert(0);
                    *c += 1;
                    *c
                };
                if u64::from(n) <= num(arg)? {
                    return Err(Error::new(
                        ErrorKind::ConnectionFailed,
                        format!("scripted: attempt {n} fails"),
                    ));
                }
            }
            "print-secret" => {
                if let Credential::Password(p) = &target.credential {
                    sink.send(
                        Stream::Stdout,
                        Bytes::from(format!("the password is {}\n", p.expose_secret())),
                    )
                    .await?;
                }
            }
            "panic" => panic!("scripted panic"),
            other => {
                return Err(Error::invalid(format!(
                    "scripted: unknown command '{other}'"
                )));
            }
        }
        Ok(Step::Continue)
    }
}

#[async_trait]
impl Connector for ScriptedConnector {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn system_types(&self) -> &'static [SystemType] {
        &[SystemType::Local, SystemType::Linux, SystemType::Windows]
    }
    fn capabilities(&self) -> ConnectorCapabilities {
        ConnectorCapabilities {
            posix_shell: true,
            powershell: true,
            env: true,
            ..Default::default()
        }
    }
    async fn run(
        &self,
        target: &Target,
        command: &CommandSpec,
        sink: OutputSink,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let stop = cancel.child_token();
        let timed_out = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(t) = command.timeout {
            let (stop, flag) = (stop.clone(), timed_out.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(t) => {
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        stop.cancel();
                    }
                    _ = stop.cancelled() => {}
                }
            });
        }
        let mut outcome = RunOutcome::exited(0);
        for part in command.command.split(';').map(str::trim) {
            if stop.is_cancelled() {
                break;
            }
            match self.step(target, part, &sink, &stop).await? {
                Step::Continue => {}
                Step::End(o) => {
                    outcome = o;
                    break;
                }
            }
        }
        if stop.is_cancelled() {
            let end = if timed_out.load(std::sync::atomic::Ordering::SeqCst) {
                RunEnd::TimedOut
            } else {
                RunEnd::Cancelled
            };
            outcome = RunOutcome {
                end,
                exit_code: None,
                signal: Some("TERM".into()),
                kill_confirmed: Some(true),
            };
        }
        stop.cancel();
        Ok(outcome)
    }
    async fn probe(&self, target: &Target) -> ProbeReport {
        let start = Instant::now();
        let bad = target.system.hostname.contains("unreachable");
        ProbeReport {
            status: if bad {
                HealthStatus::Unhealthy
            } else {
                HealthStatus::Healthy
            },
            latency: start.elapsed(),
            reason: bad.then(|| format!("scripted: {} is unreachable", target.system.hostname)),
        }
    }
}
