//! Conversion of russh and I/O failures into [`orca_core::Error`] with precise kinds.

use std::fmt;
use std::io;

use orca_core::{Error, ErrorKind, Retry};

/// The phase a failure happened in, for messages and retry classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// TCP connect, SSH version exchange, key exchange, host key check.
    Connect,
    /// User authentication.
    Auth,
    /// Opening a channel / starting the command.
    Start,
}

impl Phase {
    fn what(self) -> &'static str {
        match self {
            Phase::Connect => "while connecting",
            Phase::Auth => "during authentication",
            Phase::Start => "while starting the command",
        }
    }
    fn retry(self) -> Retry {
        // Nothing ran yet in any of these phases.
        Retry::Safe
    }
}

/// The error type of the russh client handler: russh's own, or our host key verdict.
#[derive(Debug)]
pub(crate) enum ClientError {
    /// A protocol or I/O error.
    Russh(russh::Error),
    /// The host key was refused (the message says why).
    Rejected(Error),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Russh(e)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Russh(e) => write!(f, "{e}"),
            ClientError::Rejected(e) => write!(f, "{e}"),
        }
    }
}

impl ClientError {
    /// Into an Orca error for `addr` in `phase`.
    pub(crate) fn into_error(self, addr: &str, phase: Phase) -> Error {
        match self {
            ClientError::Rejected(e) => e,
            ClientError::Russh(e) => russh_error(&e, addr, phase),
        }
    }
}

/// An I/O error talking to `addr`.
pub(crate) fn io_error(e: &io::Error, addr: &str, phase: Phase) -> Error {
    let msg = match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!("connection to {addr} refused: is sshd running and listening on that port?")
        }
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => format!(
            "{addr} closed the connection {} ({e}); an sshd over its MaxStartups limit drops \
             new connections like this",
            phase.what()
        ),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            format!("{addr} is unreachable ({e}): check the address and the network route")
        }
        _ => format!("I/O error with {addr} {}: {e}", phase.what()),
    };
    Error::new(ErrorKind::ConnectionFailed, msg).with_retry(phase.retry())
}

/// A russh error talking to `addr` in `phase`.
pub(crate) fn russh_error(e: &russh::Error, addr: &str, phase: Phase) -> Error {
    use russh::Error as R;
    let conn = |msg: String| Error::new(ErrorKind::ConnectionFailed, msg).with_retry(phase.retry());
    match e {
        R::NoCommonAlgo { kind, ours, theirs } => Error::new(
            ErrorKind::Unsupported,
            format!(
                "no common {} algorithm with {addr}: Orca offers [{}], the server offers [{}]; \
                 enable one of Orca's on the server",
                algorithm_kind(kind),
                ours.join(", "),
                theirs.join(", ")
            ),
        ),
        R::UnknownKey => Error::new(
            ErrorKind::HostKeyRejected,
            format!("the host key of {addr} was rejected"),
        ),
        R::WrongServerSig => Error::new(
            ErrorKind::HostKeyRejected,
            format!("{addr} sent an invalid host key signature: the server may be impersonated"),
        ),
        R::IO(io) => io_error(io, addr, phase),
        R::Version => conn(format!(
            "{addr} did not answer with an SSH version string: is it an SSH server?"
        )),
        R::Disconnect | R::HUP | R::SendError | R::RecvError => conn(format!(
            "{addr} closed the connection {}; an sshd over its MaxStartups limit drops new \
             connections like this",
            phase.what()
        )),
        R::KeepaliveTimeout => conn(format!(
            "{addr} stopped answering keepalives {}",
            phase.what()
        )),
        R::InactivityTimeout | R::ConnectionTimeout | R::Elapsed(_) => Error::new(
            ErrorKind::Timeout,
            format!("{addr} did not answer in time {}", phase.what()),
        )
        .with_retry(phase.retry()),
        R::ChannelOpenFailure(f) => conn(format!(
            "{addr} refused to open a session channel ({f:?}): lower the connector's \
             max_channels_per_connection below the server's MaxSessions"
        )),
        R::Keys(k) => Error::invalid(format!("the private key cannot be used: {k}")),
        other => conn(format!("SSH error with {addr} {}: {other}", phase.what())),
    }
}

fn algorithm_kind(kind: &russh::AlgorithmKind) -> &'static str {
    use russh::AlgorithmKind as K;
    match kind {
        K::Kex => "key exchange",
        K::Key => "host key",
        K::Cipher => "cipher",
        K::Compression => "compression",
        K::Mac => "MAC",
    }
}
