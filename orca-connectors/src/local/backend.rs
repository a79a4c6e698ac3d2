//! [`LocalConnector`]: the [`Connector`] implementation for `local` systems.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use orca_core::model::{HealthStatus, Shell, SystemType};
use orca_core::{
    CancellationToken, CommandSpec, Connector, ConnectorCapabilities, Error, ErrorKind, OutputSink,
    ProbeReport, Result, RunEnd, RunOutcome, Target, async_trait,
};

use super::config::{FALLBACK_PATH, LocalConfig};
use super::error::{LocalError, check_cwd};
use super::isolation::{RunAs, WorkDir, run_as};
use super::process::drive;

/// The system options the local connector understands.
pub const OPTIONS: &[&str] = &["cwd"];

/// Runs commands on this host, each in its own process group.
///
/// See the [module documentation](super) for what a command sees and how it is stopped.
#[derive(Debug, Clone, Default)]
pub struct LocalConnector {
    config: LocalConfig,
}

impl LocalConnector {
    /// A connector with `config`, checked.
    pub fn new(config: LocalConfig) -> Result<Self> {
        config.validate()?;
        Ok(LocalConnector { config })
    }

    /// Its settings.
    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    /// The shell program for `shell`, or `Unsupported`.
    fn shell_path(&self, shell: Shell) -> Result<&PathBuf> {
        match shell {
            Shell::Default | Shell::Sh => Ok(&self.config.sh_path),
            Shell::Bash => Ok(&self.config.bash_path),
            Shell::Cmd | Shell::Powershell => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the local connector runs POSIX shells only (sh, bash), not {}; \
                     run this job on a Windows system",
                    shell.as_str()
                ),
            )),
        }
    }

    /// Check the target and the command without starting anything; the system's `cwd`
    /// option, if any.
    async fn check<'t>(&self, target: &'t Target, spec: &CommandSpec) -> Result<Option<&'t str>> {
        let system = &target.system;
        if system.system_type != SystemType::Local {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "system '{}' is of type {}; the local connector runs only local systems",
                    system.name,
                    system.system_type.as_str()
                ),
            ));
        }
        if let Some(unknown) = system
            .options
            .keys()
            .find(|k| !OPTIONS.contains(&k.as_str()))
        {
            return Err(Error::invalid(format!(
                "local system '{}' has an unknown option '{unknown}'; supported: {}",
                system.name,
                OPTIONS.join(", ")
            )));
        }
        self.shell_path(spec.shell)?;
        if spec.command.contains('\0') {
            return Err(Error::invalid("the command contains a NUL byte"));
        }
        for (k, v) in &spec.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(Error::invalid(format!(
                    "environment variable {k:?} is not valid: names must be non-empty without \
                     '=' or NUL, values without NUL"
                )));
            }
        }
        let cwd = system.options.get("cwd").map(String::as_str);
        if let Some(cwd) = cwd {
            check_cwd(&system.name, cwd).await?;
        }
        Ok(cwd)
    }

    /// Build the command (checked by [`Self::check`]) to run as `run_as` (or as Orca's own
    /// user) in `cwd`, without starting it.
    fn command(
        &self,
        target: &Target,
        spec: &CommandSpec,
        run_as: Option<&RunAs>,
        cwd: &Path,
        home: &Path,
    ) -> Result<tokio::process::Command> {
        let mut cmd = tokio::process::Command::new(self.shell_path(spec.shell)?);
        cmd.arg("-c")
            .arg(&spec.command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .current_dir(cwd)
            .env_clear();
        for name in &self.config.env_passthrough {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        if let Some(user) = run_as {
            // std drops the supplementary groups (setgroups(0)) when it changes the uid, after
            // setgid and before setuid, in the child before exec.
            cmd.uid(user.uid.as_raw())
                .gid(user.gid.as_raw())
                .env("HOME", home)
                .env("USER", &user.name)
                .env("LOGNAME", &user.name);
        }
        if std::env::var_os("PATH").is_none()
            || !self.config.env_passthrough.iter().any(|n| n == "PATH")
        {
            cmd.env("PATH", FALLBACK_PATH);
        }
        cmd.envs(&spec.env);
        if let Some(id) = target.execution_id {
            cmd.env("ORCA_EXECUTION_ID", id.to_string());
        }
        Ok(cmd)
    }

    async fn run_inner(
        &self,
        target: &Target,
        spec: &CommandSpec,
        sink: OutputSink,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let cwd = self.check(target, spec).await?;
        let (user, allow_root) = (self.config.user.clone(), self.config.allow_root);
        let execution = target.execution_id;
        let (run_as, workdir) = tokio::task::spawn_blocking(move || {
            let run_as = run_as(&user, allow_root)?;
            let dir = WorkDir::create(&std::env::temp_dir(), execution, run_as.as_ref())?;
            Ok::<_, Error>((run_as, dir))
        })
        .await
        .map_err(|e| Error::unexpected(format!("preparing a local command failed: {e}")))??;
        if cancel.is_cancelled() {
            // Nothing started, nothing to kill.
            workdir.remove().await;
            return Ok(RunOutcome {
                end: RunEnd::Cancelled,
                exit_code: None,
                signal: None,
                kill_confirmed: Some(true),
            });
        }
        let cwd = cwd.map(Path::new).unwrap_or(workdir.path());
        let mut cmd = self.command(target, spec, run_as.as_ref(), cwd, workdir.path())?;
        let user = run_as.as_ref().map(|u| u.name.clone());
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(source) => {
                workdir.remove().await;
                return Err(LocalError::Spawn {
                    shell: self.shell_path(spec.shell)?.display().to_string(),
                    user,
                    source,
                }
                .into());
            }
        };
        tracing::debug!(
            system = %target.system.name,
            execution_id = ?target.execution_id,
            pid = ?child.id(),
            user = user.as_deref().unwrap_or("(orca's own)"),
            "started a local command"
        );
        let outcome = drive(child, sink, spec.timeout, cancel, &self.config).await;
        workdir.remove().await;
        outcome
    }
}

#[async_trait]
impl Connector for LocalConnector {
    fn name(&self) -> &'static str {
        "local"
    }

    fn system_types(&self) -> &'static [SystemType] {
        &[SystemType::Local]
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
        let mut result = self.run_inner(target, command, sink, cancel).await;
        if let Err(e) = result {
            let mut e = e.with_system(target.system.id);
            if let Some(id) = target.execution_id {
                e = e.with_execution(id);
            }
            result = Err(e);
        }
        result
    }

    async fn probe(&self, target: &Target) -> ProbeReport {
        let started = Instant::now();
        let (sink, mut rx) = OutputSink::channel(8);
        let spec = CommandSpec::new("true").with_timeout(self.config.probe_timeout);
        let collect = async move {
            let mut said = Vec::new();
            while let Some((_, bytes)) = rx.recv().await {
                if said.len() < 512 {
                    said.extend_from_slice(&bytes[..bytes.len().min(512 - said.len())]);
                }
            }
            said
        };
        let (result, said) = tokio::join!(
            self.run(target, &spec, sink, CancellationToken::new()),
            collect
        );
        let latency = started.elapsed();
        let unhealthy = |reason: String| ProbeReport {
            status: HealthStatus::Unhealthy,
            latency,
            reason: Some(reason),
        };
        match result {
            Ok(o) if o.end == RunEnd::Exited && o.exit_code == Some(0) => ProbeReport {
                status: HealthStatus::Healthy,
                latency,
                reason: None,
            },
            Ok(o) if o.end == RunEnd::TimedOut => unhealthy(format!(
                "`true` did not finish within {:?}",
                self.config.probe_timeout
            )),
            Ok(o) => unhealthy(format!(
                "`true` ended with exit code {:?}, signal {:?}: {}",
                o.exit_code,
                o.signal,
                String::from_utf8_lossy(&said).trim()
            )),
            Err(e) => unhealthy(e.to_string()),
        }
    }
}
