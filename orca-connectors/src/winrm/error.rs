//! The WinRM backend's private errors and their conversion into [`orca_core::Error`].

use std::fmt;

use orca_core::{Error, ErrorKind, Retry};

/// A SOAP fault as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `s:Code/s:Value` without prefix (`Sender`, `Receiver`).
    pub code: String,
    /// `s:Subcode/s:Value` without prefix (`TimedOut`, `AccessDenied`, ...).
    pub subcode: String,
    /// The `WSManFault` code, if any (e.g. 2150858793).
    pub wsman_code: Option<u64>,
    /// The server's message (WSManFault message or the fault reason), truncated.
    pub reason: String,
}

/// What a fault means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `w:TimedOut`: the operation timeout passed with nothing to report (an empty poll).
    TimedOut,
    /// The user may not use WinRM / the shell.
    AccessDenied,
    /// The shell is gone (idle timeout, deleted, server restarted).
    ShellNotFound,
    /// A quota (shells per user, concurrent operations...) is exhausted.
    QuotaExceeded,
    /// Anything else.
    Other,
}

/// `ERROR_WSMAN_OPERATION_TIMEDOUT` (0x80338029).
pub const CODE_TIMED_OUT: u64 = 2150858793;
/// `ERROR_WSMAN_SHELL_NOT_FOUND`-style code Windows sends for an unknown ShellId (0x8033805B).
pub const CODE_SHELL_NOT_FOUND: u64 = 2150858843;
/// `ERROR_ACCESS_DENIED`.
pub const CODE_ACCESS_DENIED: u64 = 5;

impl Fault {
    /// Classify the fault by its subcode and WS-Management code (never by its text).
    pub fn kind(&self) -> FaultKind {
        match (self.subcode.as_str(), self.wsman_code) {
            ("TimedOut", _) | (_, Some(CODE_TIMED_OUT)) => FaultKind::TimedOut,
            ("AccessDenied", _) | (_, Some(CODE_ACCESS_DENIED)) => FaultKind::AccessDenied,
            ("InvalidSelectors", _) | (_, Some(CODE_SHELL_NOT_FOUND)) => FaultKind::ShellNotFound,
            ("QuotaLimit", _) => FaultKind::QuotaExceeded,
            _ => FaultKind::Other,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SOAP fault {}/{}", self.code, self.subcode)?;
        if let Some(c) = self.wsman_code {
            write!(f, " (WS-Management code {c})")?;
        }
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking WinRM.
#[derive(Debug, Clone)]
pub enum WinRmError {
    /// Bad configuration of the system (options, credential).
    Config(String),
    /// TCP connect / TLS / a dropped connection.
    Connect(String),
    /// The certificate was refused.
    Certificate(String),
    /// Authentication failed (401 after the handshake, bad NTLM messages).
    Auth(String),
    /// A network operation took longer than allowed.
    Timeout(String),
    /// The connection closed before the request left: nothing reached the server.
    NotSent(String),
    /// The answer broke the protocol (bad XML, wrong RelatesTo, bad base64, bad sealing...).
    Protocol(String),
    /// An HTTP error without a SOAP fault.
    Http(u16, String),
    /// A SOAP fault.
    Fault(Fault),
}

impl fmt::Display for WinRmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WinRmError::Config(m) => write!(f, "invalid WinRM settings: {m}"),
            WinRmError::Connect(m) => write!(f, "WinRM connection failed: {m}"),
            WinRmError::Certificate(m) => {
                write!(f, "the WinRM server certificate was refused: {m}")
            }
            WinRmError::Auth(m) => write!(f, "WinRM authentication failed: {m}"),
            WinRmError::Timeout(m) => write!(f, "WinRM timed out: {m}"),
            WinRmError::NotSent(m) => write!(f, "WinRM connection failed: {m}"),
            WinRmError::Protocol(m) => write!(f, "WinRM protocol error: {m}"),
            WinRmError::Http(s, m) => write!(f, "WinRM HTTP error {s}: {m}"),
            WinRmError::Fault(x) => write!(f, "WinRM {x}"),
        }
    }
}

impl WinRmError {
    /// The fault's kind, if this is a fault.
    pub fn fault_kind(&self) -> Option<FaultKind> {
        match self {
            WinRmError::Fault(f) => Some(f.kind()),
            _ => None,
        }
    }

    /// Convert into Orca's error. `reached` says whether the command may have reached the host
    /// (then a transient failure is `Retry::Unsafe`).
    pub fn into_error(self, reached: bool) -> Error {
        // Text from the server ends up here: keep it printable and bounded, so a hostile or
        // broken peer cannot put control bytes (NUL breaks PostgreSQL text) or megabytes into
        // an execution's failure reason.
        let msg: String = self
            .to_string()
            .chars()
            .take(1024)
            .map(|c| {
                if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect();
        let (kind, retry) = match &self {
            WinRmError::Config(_) => (ErrorKind::InvalidInput, Retry::Never),
            WinRmError::Connect(_) => (ErrorKind::ConnectionFailed, transient(reached)),
            WinRmError::Certificate(_) => (ErrorKind::HostKeyRejected, Retry::Never),
            WinRmError::Auth(_) => (ErrorKind::AuthFailed, Retry::Never),
            WinRmError::Timeout(_) => (ErrorKind::Timeout, transient(reached)),
            WinRmError::NotSent(_) => (ErrorKind::ConnectionFailed, transient(reached)),
            WinRmError::Protocol(_) => (ErrorKind::Unexpected, Retry::Never),
            WinRmError::Http(s, _) if *s == 401 => (ErrorKind::AuthFailed, Retry::Never),
            WinRmError::Http(s, _) if *s == 403 => (ErrorKind::PermissionDenied, Retry::Never),
            WinRmError::Http(s, _) if *s >= 500 => {
                (ErrorKind::ConnectionFailed, transient(reached))
            }
            WinRmError::Http(..) => (ErrorKind::Unexpected, Retry::Never),
            WinRmError::Fault(f) => match f.kind() {
                FaultKind::TimedOut => (ErrorKind::Timeout, transient(reached)),
                FaultKind::AccessDenied => (ErrorKind::PermissionDenied, Retry::Never),
                FaultKind::ShellNotFound => (ErrorKind::NotFound, transient(reached)),
                FaultKind::QuotaExceeded => (ErrorKind::Conflict, transient(reached)),
                FaultKind::Other => (ErrorKind::Unexpected, Retry::Never),
            },
        };
        Error::new(kind, msg).with_retry(retry)
    }
}

fn transient(reached: bool) -> Retry {
    if reached { Retry::Unsafe } else { Retry::Safe }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_retry_classes() {
        let f = |sub: &str| {
            WinRmError::Fault(Fault {
                code: "Receiver".into(),
                subcode: sub.into(),
                wsman_code: None,
                reason: "r".into(),
            })
        };
        assert_eq!(
            f("AccessDenied").into_error(false).kind(),
            ErrorKind::PermissionDenied
        );
        let q = f("QuotaLimit").into_error(false);
        assert_eq!((q.kind(), q.retry()), (ErrorKind::Conflict, Retry::Safe));
        let c = WinRmError::Connect("x".into()).into_error(true);
        assert_eq!(
            (c.kind(), c.retry()),
            (ErrorKind::ConnectionFailed, Retry::Unsafe)
        );
        assert_eq!(
            WinRmError::Http(401, "x".into()).into_error(false).kind(),
            ErrorKind::AuthFailed
        );
        assert!(
            f("AccessDenied")
                .into_error(false)
                .message()
                .contains("AccessDenied")
        );
    }
}
