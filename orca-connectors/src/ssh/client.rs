//! One SSH connection: DNS, TCP (`TCP_NODELAY`), handshake with the host key checked inside
//! the key exchange, then authentication. Each step has its own limit and its own error.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orca_core::model::Credential;
use orca_core::{Error, ErrorKind, Result};
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PublicKeyOrCertificate};
use russh::{Preferred, cipher, compression, kex};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::SshConfig;
use super::auth;
use super::error::{ClientError, Phase, io_error};
use super::hostkey::HostKeyCheck;

/// Key exchanges, cheapest first: curve25519 costs a fraction of the DH groups and of the
/// post-quantum hybrid, which stays available for servers that insist on it.
const KEX_ORDER: &[kex::Name] = &[
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::MLKEM768X25519_SHA256,
    kex::ECDH_SHA2_NISTP256,
    kex::ECDH_SHA2_NISTP384,
    kex::DH_GEX_SHA256,
    kex::DH_G16_SHA512,
    kex::DH_G14_SHA256,
    kex::EXTENSION_SUPPORT_AS_CLIENT,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

/// AEAD ciphers first (one pass, hardware AES where the CPU has it).
const CIPHER_ORDER: &[cipher::Name] = &[
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_128_CTR,
    cipher::AES_256_CTR,
];

/// No compression: it costs CPU on both sides and commands print little.
const COMPRESSION_ORDER: &[compression::Name] = &[compression::NONE];

/// The russh client handler: it only judges the host key.
pub(crate) struct ClientHandler {
    check: Arc<HostKeyCheck>,
}

impl client::Handler for ClientHandler {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, ClientError> {
        match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self
                .check
                .verify(key)
                .await
                .map(|()| true)
                .map_err(ClientError::Rejected),
            PublicKeyOrCertificate::Certificate(_) => Err(ClientError::Rejected(Error::new(
                ErrorKind::HostKeyRejected,
                format!(
                    "{} presented a host certificate; Orca pins plain host keys",
                    self.check.label
                ),
            ))),
        }
    }
}

/// Where and as whom to connect.
pub(crate) struct Endpoint<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub credential: &'a Credential,
    pub key: Option<Arc<PrivateKey>>,
}

impl Endpoint<'_> {
    pub(crate) fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn russh_config(cfg: &SshConfig, check: &HostKeyCheck) -> client::Config {
    client::Config {
        preferred: Preferred {
            kex: Cow::Borrowed(KEX_ORDER),
            key: Cow::Owned(check.preferred_algorithms()),
            cipher: Cow::Borrowed(CIPHER_ORDER),
            compression: Cow::Borrowed(COMPRESSION_ORDER),
            ..Preferred::DEFAULT
        },
        // Broken connections are found by keepalives; idle ones are closed by the pool.
        inactivity_timeout: None,
        keepalive_interval: Some(cfg.keepalive_interval),
        keepalive_max: cfg.keepalive_max,
        nodelay: true,
        // Windows and buffers sized for command output, not bulk transfer: a pooled idle
        // connection stays small.
        window_size: 1 << 20,
        channel_buffer_size: 64,
        ..Default::default()
    }
}

fn timed_out(what: &str, addr: &str, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "{what} {addr} did not finish within {:.1}s (connector setting {})",
            limit.as_secs_f64(),
            if what.starts_with("authentication") {
                "auth_timeout"
            } else {
                "connect_timeout"
            }
        ),
    )
}

/// Resolve and connect TCP, trying each address until the deadline.
async fn tcp(ep: &Endpoint<'_>, cfg: &SshConfig, deadline: Instant) -> Result<TcpStream> {
    let addr = ep.addr();
    let lookup = tokio::time::timeout_at(deadline, tokio::net::lookup_host((ep.host, ep.port)))
        .await
        .map_err(|_| timed_out("resolving", &addr, cfg.connect_timeout))?;
    let addrs: Vec<SocketAddr> = lookup
        .map_err(|e| {
            Error::new(
                ErrorKind::ConnectionFailed,
                format!("cannot resolve host name '{}': {e}", ep.host),
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::new(
            ErrorKind::ConnectionFailed,
            format!("host name '{}' has no addresses", ep.host),
        ));
    }
    let mut last = None;
    for a in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(a)).await {
            Err(_) => return Err(timed_out("TCP connection to", &addr, cfg.connect_timeout)),
            Ok(Ok(s)) => {
                // Without it small packets wait for ACKs: one RTT lost per command.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = Some(io_error(&e, &addr, Phase::Connect)),
        }
    }
    Err(last.unwrap_or_else(|| Error::unexpected("no address tried")))
}

/// Connect, verify the host key (inside the handshake, before any credential is sent) and
/// authenticate.
pub(crate) async fn connect(
    cfg: &SshConfig,
    ep: &Endpoint<'_>,
    check: HostKeyCheck,
) -> Result<Handle<ClientHandler>> {
    let addr = ep.addr();
    let deadline = Instant::now() + cfg.connect_timeout;
    let stream = tcp(ep, cfg, deadline).await?;
    let config = Arc::new(russh_config(cfg, &check));
    let handler = ClientHandler {
        check: Arc::new(check),
    };
    let mut handle =
        tokio::time::timeout_at(deadline, client::connect_stream(config, stream, handler))
            .await
            .map_err(|_| timed_out("SSH handshake with", &addr, cfg.connect_timeout))?
            .map_err(|e| e.into_error(&addr, Phase::Connect))?;
    timeout(
        cfg.auth_timeout,
        auth::authenticate(&mut handle, &addr, ep.user, ep.credential, ep.key.clone()),
    )
    .await
    .map_err(|_| timed_out("authentication at", &addr, cfg.auth_timeout))??;
    Ok(handle)
}
