//! [`SshConnector`]: the [`Connector`] implementation.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use orca_core::model::{HealthStatus, SystemType};
use orca_core::{
    CommandSpec, Connector, ConnectorCapabilities, Error, ErrorKind, OutputSink, ProbeReport,
    Result, RunEnd, RunOutcome, Target,
};
use russh::ChannelMsg;
use russh::client::Handle;
use russh::keys::PrivateKey;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::SshConfig;
use super::auth::KeyCache;
use super::client::{self, ClientHandler, Endpoint};
use super::error::{Phase, russh_error};
use super::exec::{self, ExecParams, Reopen};
use super::hostkey::HostKeyCheck;
use super::pool::{Lease, Pool, PoolKey};
use super::wrapper;

/// Runs commands on Linux systems over SSH (russh), with verified host keys, pooled
/// connections and commands that are really stopped on cancel and timeout.
///
/// Cloning is cheap and clones share the pool.
#[derive(Clone)]
pub struct SshConnector {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: SshConfig,
    pool: Pool,
    keys: KeyCache,
}

impl fmt::Debug for SshConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshConnector")
            .field("config", &self.inner.cfg)
            .field("open_connections", &self.inner.pool.open_connections())
            .finish()
    }
}

impl SshConnector {
    /// A connector with `config` (validated).
    pub fn new(config: SshConfig) -> Result<Self> {
        config.validate()?;
        Ok(SshConnector {
            inner: Arc::new(Inner {
                pool: Pool::new(config.clone()),
                cfg: config,
                keys: KeyCache::default(),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &SshConfig {
        &self.inner.cfg
    }

    /// Connections open now (pooled, in use or idle).
    pub fn open_connections(&self) -> usize {
        self.inner.pool.open_connections()
    }

    /// Connections opened since this connector was created.
    pub fn connections_opened(&self) -> u64 {
        self.inner.pool.connects()
    }

    /// Close every pooled connection that runs nothing now. Call it inside a Tokio runtime.
    pub fn close_idle(&self) {
        self.inner.pool.close_idle();
    }

    async fn lease(&self, target: &Target, key: Option<Arc<PrivateKey>>) -> Result<Lease> {
        let pool_key = pool_key(target);
        self.inner
            .pool
            .acquire(&pool_key, || {
                let inner = self.inner.clone();
                let t = target.clone();
                let key = key.clone();
                async move { inner.connect(&t, key).await }.boxed()
            })
            .await
    }
}

impl Inner {
    /// A fresh authenticated connection to `t`.
    async fn connect(
        &self,
        t: &Target,
        key: Option<Arc<PrivateKey>>,
    ) -> Result<Handle<ClientHandler>> {
        let s = &t.system;
        let ep = Endpoint {
            host: &s.hostname,
            port: s.port,
            user: &s.username,
            credential: &t.credential,
            key,
        };
        let label = format!("system '{}' ({})", s.name, ep.addr());
        let check = HostKeyCheck::load(s.id, label, s.host_key_policy, t.host_keys.clone()).await?;
        client::connect(&self.cfg, &ep, check).await
    }
}

/// Pool identity of a target: the system, where and as whom, the policy, and a digest of the
/// credential (so a changed credential gets a new connection).
fn pool_key(t: &Target) -> PoolKey {
    let mut h = Sha256::new();
    h.update(t.credential.kind().as_bytes());
    for s in t.credential.secrets() {
        h.update([0u8]);
        h.update(s.expose_secret().as_bytes());
    }
    PoolKey {
        system: t.system.id,
        host: t.system.hostname.clone(),
        port: t.system.port,
        user: t.system.username.clone(),
        policy: t.system.host_key_policy.as_str(),
        credential: h.finalize().into(),
    }
}

fn check_target(t: &Target) -> Result<()> {
    let s = &t.system;
    if s.system_type != SystemType::Linux {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "the ssh connector serves linux systems; system '{}' is {}",
                s.name,
                s.system_type.as_str()
            ),
        ));
    }
    if s.hostname.trim().is_empty() || s.port == 0 {
        return Err(Error::invalid(format!(
            "system '{}' needs a host name and a port for SSH",
            s.name
        )));
    }
    if s.username.is_empty() {
        return Err(Error::invalid(format!(
            "system '{}' needs a user name for SSH",
            s.name
        )));
    }
    Ok(())
}

fn with_context(e: Error, t: &Target) -> Error {
    let e = e.with_system(t.system.id);
    match t.execution_id {
        Some(x) => e.with_execution(x),
        None => e,
    }
}

fn not_started(end: RunEnd) -> RunOutcome {
    RunOutcome {
        end,
        exit_code: None,
        signal: None,
        // Nothing was started, so nothing is left running.
        kill_confirmed: Some(true),
    }
}

#[async_trait::async_trait]
impl Connector for SshConnector {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn system_types(&self) -> &'static [SystemType] {
        &[SystemType::Linux]
    }

    fn capabilities(&self) -> ConnectorCapabilities {
        ConnectorCapabilities {
            pty: false,
            file_transfer: false,
            powershell: false,
            posix_shell: true,
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
        check_target(target)?;
        let mut env = command.env.clone();
        if let Some(id) = target.execution_id {
            env.insert("ORCA_EXECUTION_ID".to_string(), id.to_string());
        }
        let line = wrapper::wrap(&command.command, command.shell, &env)?;
        if cancel.is_cancelled() {
            return Ok(not_started(RunEnd::Cancelled));
        }
        let key = self
            .inner
            .keys
            .key(&target.credential)
            .await
            .map_err(|e| with_context(e, target))?;
        let reopen: Reopen = {
            let this = self.clone();
            let t = target.clone();
            let key = key.clone();
            Arc::new(move || {
                let this = this.clone();
                let t = t.clone();
                let key = key.clone();
                async move { this.lease(&t, key).await.ok() }.boxed()
            })
        };
        let params = ExecParams {
            addr: format!("{}:{}", target.system.hostname, target.system.port),
            timeout: command.timeout,
            open_timeout: self.inner.cfg.connect_timeout,
            kill_grace: self.inner.cfg.kill_grace,
            reopen,
        };
        // A pooled connection may have died since its last use: if opening the channel finds
        // it broken, nothing reached the host, so one fresh connection is tried.
        let mut fresh_tried = false;
        let (lease, ch) = loop {
            let mut lease = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(not_started(RunEnd::Cancelled)),
                r = self.lease(target, key.clone()) => r.map_err(|e| with_context(e, target))?,
            };
            match exec::open_channel(&mut lease, &params).await {
                Ok(ch) => break (lease, ch),
                Err(_) if !fresh_tried && !lease.conn.alive() => fresh_tried = true,
                Err(e) => return Err(with_context(e, target)),
            }
        };
        exec::execute(lease, ch, line, params, sink, cancel)
            .await
            .map_err(|e| with_context(e, target))
    }

    async fn probe(&self, target: &Target) -> ProbeReport {
        let start = Instant::now();
        let result = self.probe_once(target).await;
        let latency = start.elapsed();
        match result {
            Ok(()) => ProbeReport {
                status: HealthStatus::Healthy,
                latency,
                reason: None,
            },
            Err(e) => ProbeReport {
                status: HealthStatus::Unhealthy,
                latency,
                reason: Some(format!("{}: {}", e.kind().code(), e.message())),
            },
        }
    }
}

impl SshConnector {
    /// Connect afresh (not through the pool), verify, authenticate and run `true`.
    async fn probe_once(&self, target: &Target) -> Result<()> {
        check_target(target)?;
        let key = self.inner.keys.key(&target.credential).await?;
        let handle = self.inner.connect(target, key).await?;
        let addr = format!("{}:{}", target.system.hostname, target.system.port);
        let limit = self.inner.cfg.connect_timeout;
        let run = async {
            let mut ch = handle
                .channel_open_session()
                .await
                .map_err(|e| russh_error(&e, &addr, Phase::Start))?;
            ch.exec(true, "true")
                .await
                .map_err(|e| russh_error(&e, &addr, Phase::Start))?;
            let mut code = None;
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            let _ = ch.close().await;
            match code {
                Some(0) => Ok(()),
                Some(c) => Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("`true` exited with {c} on {addr}: the login shell is broken"),
                )),
                None => Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("`true` on {addr} ended without an exit status"),
                )),
            }
        };
        let r = tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{addr} did not run `true` within {:.1}s",
                    limit.as_secs_f64()
                ),
            ))
        });
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "probe done", "en")
            .await;
        r
    }
}
