//! WinRS shell operations on one [`Session`]: each is one round trip.

use super::config::WinRmConfig;
use super::error::{FaultKind, WinRmError};
use super::protocol::{self, Header, Request, ShellSpec, Signal};
use super::response::{self, Answer, Received};
use super::transport::Session;

/// A shell client over a session.
#[derive(Debug)]
pub struct ShellOps<'a> {
    cfg: &'a WinRmConfig,
    endpoint: String,
}

impl<'a> ShellOps<'a> {
    /// Operations for `cfg`.
    pub fn new(cfg: &'a WinRmConfig) -> Self {
        ShellOps {
            cfg,
            endpoint: cfg.endpoint(),
        }
    }

    fn header(&self) -> Header<'_> {
        Header {
            to: &self.endpoint,
            max_envelope: self.cfg.max_envelope,
            operation_timeout: self.cfg.operation_timeout,
            locale: &self.cfg.locale,
        }
    }

    async fn exchange(&self, s: &mut Session, req: Request) -> Result<Answer, WinRmError> {
        tracing::trace!(action = req.action, "WinRM request");
        let bytes = s.call(req.body.as_bytes()).await?;
        response::parse(&bytes, &req.message_id)
    }

    /// Create a shell; returns its id.
    pub async fn create(&self, s: &mut Session, spec: &ShellSpec) -> Result<String, WinRmError> {
        let a = self
            .exchange(s, protocol::create_shell(&self.header(), spec))
            .await?;
        response::shell_id(&a)
    }

    /// Start a command line; returns the command id.
    pub async fn command(
        &self,
        s: &mut Session,
        shell: &str,
        line: &str,
    ) -> Result<String, WinRmError> {
        let a = self
            .exchange(s, protocol::command(&self.header(), shell, line, &[]))
            .await?;
        response::command_id(&a)
    }

    /// One Receive poll. A `w:TimedOut` fault is an empty poll.
    pub async fn receive(
        &self,
        s: &mut Session,
        shell: &str,
        command: &str,
    ) -> Result<Received, WinRmError> {
        match self
            .exchange(s, protocol::receive(&self.header(), shell, command))
            .await
        {
            Ok(a) => response::received(&a, command),
            Err(e) if e.fault_kind() == Some(FaultKind::TimedOut) => Ok(Received::default()),
            Err(e) => Err(e),
        }
    }

    /// Send stdin.
    pub async fn send(
        &self,
        s: &mut Session,
        shell: &str,
        command: &str,
        data: &[u8],
        end: bool,
    ) -> Result<(), WinRmError> {
        self.exchange(s, protocol::send(&self.header(), shell, command, data, end))
            .await
            .map(|_| ())
    }

    /// Signal a command.
    pub async fn signal(
        &self,
        s: &mut Session,
        shell: &str,
        command: &str,
        sig: Signal,
    ) -> Result<(), WinRmError> {
        self.exchange(s, protocol::signal(&self.header(), shell, command, sig))
            .await
            .map(|_| ())
    }

    /// Delete a shell.
    pub async fn delete(&self, s: &mut Session, shell: &str) -> Result<(), WinRmError> {
        self.exchange(s, protocol::delete_shell(&self.header(), shell))
            .await
            .map(|_| ())
    }
}
