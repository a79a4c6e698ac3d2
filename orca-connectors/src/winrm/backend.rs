//! [`WinRmConnector`]: the [`Connector`] for Windows systems.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use orca_core::model::{Credential, HealthStatus, Shell, Stream, SystemType};
use orca_core::{
    CommandSpec, Connector, ConnectorCapabilities, Error, OutputSink, ProbeReport, Result, RunEnd,
    RunOutcome, Target,
};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::client::ShellOps;
use super::clixml::ClixmlDecoder;
use super::config::{CertCheck, WinRmConfig};
use super::error::{FaultKind, WinRmError};
use super::pool::{self, Lease, Pool, PoolKey, Warm, WarmShell};
use super::protocol::{self, ShellSpec, Signal};
use super::tls;
use super::transport::Endpoint;

/// Finished commands are not terminated one by one (that would cost a third round trip per
/// command); instead a shell is replaced after this many commands, which frees them all.
const MAX_COMMANDS_PER_SHELL: u32 = 100;

/// How many times a Receive is retried on a fresh connection after the connection failed.
const RECEIVE_RECONNECTS: u32 = 3;

/// Runs cmd and PowerShell commands on Windows systems over WinRM.
///
/// Settings come from the system's options (see [`super::config`]); the credential must be a
/// password. Sessions and shells are pooled per system, user and settings.
#[derive(Debug, Default)]
pub struct WinRmConnector {
    pool: Pool,
    tls: Mutex<HashMap<CertCheck, Arc<rustls::ClientConfig>>>,
}

/// Everything a run needs about its target.
struct Prepared {
    cfg: Arc<WinRmConfig>,
    endpoint: Endpoint,
    user: String,
    password: SecretString,
    key: PoolKey,
}

enum Stop {
    Cancelled,
    TimedOut,
}

impl WinRmConnector {
    /// A connector with an empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    fn prepare(&self, target: &Target) -> std::result::Result<Prepared, WinRmError> {
        let cfg = Arc::new(WinRmConfig::from_system(&target.system)?);
        let password = match &target.credential {
            Credential::Password(p) => p.clone(),
            other => {
                return Err(WinRmError::Config(format!(
                    "WinRM needs a password credential, system '{}' has a {} credential",
                    target.system.name,
                    other.kind()
                )));
            }
        };
        let user = target.system.username.trim().to_string();
        if user.is_empty() {
            return Err(WinRmError::Config(format!(
                "system '{}' has no user name; set one (USER, DOMAIN\\USER or USER@DOMAIN)",
                target.system.name
            )));
        }
        let tls = if cfg.https {
            let mut cache = self.tls.lock().unwrap_or_else(|p| p.into_inner());
            Some(match cache.get(&cfg.cert) {
                Some(c) => c.clone(),
                None => {
                    let c = tls::client_config(&cfg.cert)?;
                    cache.insert(cfg.cert.clone(), c.clone());
                    c
                }
            })
        } else {
            None
        };
        let key = PoolKey::new(target.system.id, &cfg, &user, &password);
        Ok(Prepared {
            endpoint: Endpoint {
                config: cfg.clone(),
                tls,
            },
            cfg,
            user,
            password,
            key,
        })
    }

    /// Delete the shells of idle sessions and close them (best effort).
    pub async fn close(&self) {
        for mut w in self.pool.drain() {
            if let Some(shell) = w.shell.take() {
                let cfg = w.session_config();
                let ops = ShellOps::new(&cfg);
                let _ = ops.delete(&mut w.session, &shell.id).await;
            }
        }
    }

    async fn checkout(&self, p: &Prepared) -> std::result::Result<(Lease, Warm), WinRmError> {
        let mut lease = self.pool.checkout(&p.key, &p.cfg).await?;
        let warm = match lease.warm.take() {
            Some(w) => w,
            None => pool::open(&p.endpoint, &p.user, &p.password).await?,
        };
        Ok((lease, warm))
    }

    /// Make sure `warm` has a fresh shell with `env`, then start `line`. Retries once, and
    /// only when the server said the request was not processed (shell gone, 401, not sent).
    async fn start(
        &self,
        p: &Prepared,
        warm: &mut Warm,
        line: &str,
        env: &std::collections::BTreeMap<String, String>,
        sent: &AtomicBool,
    ) -> std::result::Result<(String, String), WinRmError> {
        let ops = ShellOps::new(&p.cfg);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let stale = warm.shell.as_ref().is_some_and(|s| {
                &s.env != env
                    || s.last_used.elapsed() > p.cfg.shell_idle
                    || s.commands >= MAX_COMMANDS_PER_SHELL
            });
            if stale && let Some(old) = warm.shell.take() {
                if old.last_used.elapsed() <= p.cfg.shell_idle {
                    let _ = ops.delete(&mut warm.session, &old.id).await;
                }
                if !warm.session.is_usable() {
                    *warm = pool::open(&p.endpoint, &p.user, &p.password).await?;
                }
            }
            let shell_id = match &warm.shell {
                Some(s) => s.id.clone(),
                None => {
                    let spec = ShellSpec {
                        codepage: p.cfg.codepage,
                        working_dir: p.cfg.working_dir.clone(),
                        env: env.clone(),
                        ..ShellSpec::default()
                    };
                    let id = match ops.create(&mut warm.session, &spec).await {
                        Ok(id) => id,
                        Err(e) if attempt == 1 && not_processed(&e) => {
                            *warm = pool::open(&p.endpoint, &p.user, &p.password).await?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    warm.shell = Some(WarmShell {
                        id: id.clone(),
                        env: env.clone(),
                        last_used: Instant::now(),
                        commands: 0,
                    });
                    id
                }
            };
            sent.store(true, Ordering::SeqCst);
            if let Some(s) = warm.shell.as_mut() {
                s.commands += 1;
            }
            match ops.command(&mut warm.session, &shell_id, line).await {
                Ok(cmd) => return Ok((shell_id, cmd)),
                Err(e) if attempt == 1 && e.fault_kind() == Some(FaultKind::ShellNotFound) => {
                    tracing::debug!("WinRM shell expired on the server; creating a new one");
                    warm.shell = None;
                }
                Err(e) if attempt == 1 && not_processed(&e) => {
                    let shell = warm.shell.take();
                    *warm = pool::open(&p.endpoint, &p.user, &p.password).await?;
                    warm.shell = shell;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn run_inner(
        &self,
        p: &Prepared,
        command: &CommandSpec,
        sink: OutputSink,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let line = command_line(command)?;
        let deadline = command.timeout.map(|t| tokio::time::Instant::now() + t);
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until_deadline);

        let sent = AtomicBool::new(false);
        let setup = async {
            let (lease, mut warm) = self.checkout(p).await?;
            let ids = self.start(p, &mut warm, &line, &command.env, &sent).await;
            Ok::<_, WinRmError>((lease, warm, ids))
        };
        tokio::pin!(setup);
        // Until the Command is sent nothing runs and a stop has nothing to kill. Once it is on
        // its way, a stop waits for the command id (bounded by the read timeout) to terminate it.
        let mut early_stop = None;
        let (lease, mut warm, ids) = loop {
            tokio::select! {
                r = &mut setup => break r.map_err(|e| e.into_error(false))?,
                _ = cancel.cancelled(), if early_stop.is_none() => {
                    if !sent.load(Ordering::SeqCst) {
                        return Ok(stopped(RunEnd::Cancelled, true));
                    }
                    early_stop = Some(Stop::Cancelled);
                }
                _ = &mut until_deadline, if early_stop.is_none() => {
                    if !sent.load(Ordering::SeqCst) {
                        return Ok(stopped(RunEnd::TimedOut, true));
                    }
                    early_stop = Some(Stop::TimedOut);
                }
            }
        };
        let (shell_id, cmd_id) = match ids {
            Ok(ids) => ids,
            Err(e) => {
                let reached = !not_processed(&e) && e.fault_kind().is_none();
                return Err(e.into_error(reached));
            }
        };

        let ops = ShellOps::new(&p.cfg);
        let mut clixml = ClixmlDecoder::new();
        let mut reconnects = 0;
        let stop = loop {
            if let Some(s) = early_stop.take() {
                break s;
            }
            let r = tokio::select! {
                biased;
                _ = cancel.cancelled() => break Stop::Cancelled,
                _ = &mut until_deadline => break Stop::TimedOut,
                r = ops.receive(&mut warm.session, &shell_id, &cmd_id) => r,
            };
            match r {
                Ok(rec) => {
                    let mut gone = false;
                    for (stream, data) in rec.chunks {
                        let data = match stream {
                            Stream::Stderr => clixml.push(&data),
                            Stream::Stdout => data,
                        };
                        if sink.send(stream, Bytes::from(data)).await.is_err() {
                            gone = true;
                            break;
                        }
                    }
                    if gone {
                        break Stop::Cancelled;
                    }
                    if let Some(code) = rec.done {
                        let _ = sink
                            .send(Stream::Stderr, Bytes::from(clixml.finish()))
                            .await;
                        if let Some(s) = warm.shell.as_mut() {
                            s.last_used = Instant::now();
                        }
                        lease.release(warm);
                        return Ok(RunOutcome {
                            end: RunEnd::Exited,
                            exit_code: code,
                            signal: None,
                            kill_confirmed: None,
                        });
                    }
                }
                Err(e) if reconnects < RECEIVE_RECONNECTS && transient(&e) => {
                    reconnects += 1;
                    tracing::warn!(
                        error = %e,
                        "WinRM: Receive failed; reconnecting to keep reading the running command \
                         (output in the lost answer, if any, is lost)"
                    );
                    let shell = warm.shell.take();
                    let reopened = tokio::select! {
                        r = pool::open(&p.endpoint, &p.user, &p.password) => r,
                        _ = cancel.cancelled() => break Stop::Cancelled,
                        _ = &mut until_deadline => break Stop::TimedOut,
                    };
                    match reopened {
                        Ok(w) => {
                            warm = w;
                            warm.shell = shell;
                        }
                        Err(e) => return Err(e.into_error(true)),
                    }
                }
                Err(e) => {
                    // The command may still run; try to stop it before reporting.
                    let _ = self.terminate(p, &mut warm, &shell_id, &cmd_id).await;
                    return Err(e.into_error(true));
                }
            }
        };
        let confirmed = self.terminate(p, &mut warm, &shell_id, &cmd_id).await;
        let _ = sink
            .send(Stream::Stderr, Bytes::from(clixml.finish()))
            .await;
        if confirmed {
            lease.release(warm);
        }
        Ok(stopped(
            match stop {
                Stop::Cancelled => RunEnd::Cancelled,
                Stop::TimedOut => RunEnd::TimedOut,
            },
            confirmed,
        ))
    }

    /// Send Signal terminate, on the same session if it is still usable, else on a new one.
    /// Returns whether the server acknowledged it (or said the command was already gone).
    async fn terminate(&self, p: &Prepared, warm: &mut Warm, shell: &str, cmd: &str) -> bool {
        let bound = p.cfg.connect_timeout + p.cfg.read_timeout;
        let work = async {
            if !warm.session.is_usable() {
                let s = warm.shell.take();
                *warm = pool::open(&p.endpoint, &p.user, &p.password).await?;
                warm.shell = s;
            }
            let ops = ShellOps::new(&p.cfg);
            ops.signal(&mut warm.session, shell, cmd, Signal::Terminate)
                .await
        };
        match tokio::time::timeout(bound, work).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) if e.fault_kind() == Some(FaultKind::ShellNotFound) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "WinRM: Signal terminate failed; the command may still run");
                false
            }
            Err(_) => {
                tracing::warn!("WinRM: Signal terminate timed out; the command may still run");
                false
            }
        }
    }

    async fn probe_inner(&self, target: &Target) -> std::result::Result<(), WinRmError> {
        let p = self.prepare(target)?;
        let (sink, mut rx) = OutputSink::channel(16);
        let spec =
            CommandSpec::new("hostname").with_timeout(p.cfg.read_timeout + p.cfg.connect_timeout);
        let drain = tokio::spawn(async move {
            let mut out = Vec::new();
            while let Some((s, b)) = rx.recv().await {
                if s == Stream::Stdout {
                    out.extend_from_slice(&b);
                }
            }
            out
        });
        let r = self
            .run_inner(&p, &spec, sink, CancellationToken::new())
            .await
            .map_err(|e| WinRmError::Connect(e.message().to_string()))?;
        let out = drain.await.unwrap_or_default();
        match r.exit_code {
            Some(0) if !out.is_empty() => Ok(()),
            _ => Err(WinRmError::Protocol(format!("`hostname` ended with {r:?}"))),
        }
    }
}

fn stopped(end: RunEnd, confirmed: bool) -> RunOutcome {
    RunOutcome {
        end,
        exit_code: None,
        signal: None,
        kill_confirmed: Some(confirmed),
    }
}

/// Errors after which the request certainly did not run: safe to repeat on a new session.
fn not_processed(e: &WinRmError) -> bool {
    matches!(e, WinRmError::NotSent(_) | WinRmError::Http(401, _))
}

/// Errors of the connection rather than of the server's answer.
fn transient(e: &WinRmError) -> bool {
    matches!(
        e,
        WinRmError::NotSent(_)
            | WinRmError::Connect(_)
            | WinRmError::Timeout(_)
            | WinRmError::Http(401, _)
    )
}

/// The command line for the shell the job asked for.
pub fn command_line(c: &CommandSpec) -> Result<String> {
    if c.command.trim().is_empty() {
        return Err(Error::invalid("the command is empty"));
    }
    match c.shell {
        Shell::Default | Shell::Cmd => Ok(c.command.clone()),
        Shell::Powershell => Ok(protocol::powershell_command(&c.command)),
        Shell::Sh | Shell::Bash => Err(Error::new(
            orca_core::ErrorKind::Unsupported,
            format!(
                "the WinRM connector runs cmd or powershell, not {}; choose shell cmd or powershell",
                c.shell.as_str()
            ),
        )),
    }
}

impl Warm {
    fn session_config(&self) -> WinRmConfig {
        self.session.config().clone()
    }
}

#[async_trait::async_trait]
impl Connector for WinRmConnector {
    fn name(&self) -> &'static str {
        "winrm"
    }
    fn system_types(&self) -> &'static [SystemType] {
        &[SystemType::Windows]
    }
    fn capabilities(&self) -> ConnectorCapabilities {
        ConnectorCapabilities {
            pty: false,
            file_transfer: false,
            powershell: true,
            posix_shell: false,
            env: true,
        }
    }

    async fn run(
        &self,
        target: &Target,
        command: &CommandSpec,
        sink: OutputSink,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let p = self
            .prepare(target)
            .map_err(|e| e.into_error(false).with_system(target.system.id))?;
        self.run_inner(&p, command, sink, cancel)
            .await
            .map_err(|e| e.with_system(target.system.id))
    }

    async fn probe(&self, target: &Target) -> ProbeReport {
        let started = Instant::now();
        let r = self.probe_inner(target).await;
        let latency = started.elapsed();
        match r {
            Ok(()) => ProbeReport {
                status: HealthStatus::Healthy,
                latency,
                reason: None,
            },
            Err(e) => ProbeReport {
                status: HealthStatus::Unhealthy,
                latency,
                reason: Some(e.to_string()),
            },
        }
    }
}
