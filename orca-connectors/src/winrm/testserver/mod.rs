//! A faithful WinRM test server on loopback (feature `winrm-testserver`), since no Windows host
//! runs in CI.
//!
//! It speaks HTTP/1.1 with the 401 / `Negotiate` handshake and per-connection NTLM state
//! (server side of `sspi`), MS-WSMV message sealing, Basic over HTTPS (or over HTTP when
//! allowed), the WinRS shell operations with MessageID/RelatesTo, quotas, shell idle timeout
//! and Windows' faults, and runs scripted commands (see [`script`]). Faults can be injected
//! (see [`Faults`]). Independent clients (pywinrm, pypsrp) are run against it to check that it
//! behaves like Windows.

mod http;
pub mod script;
pub mod soap;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::winrm::tls::thumbprints;

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct TestServerConfig {
    /// The one account (USER or DOMAIN\USER).
    pub user: String,
    /// Its password.
    pub password: String,
    /// Serve HTTPS with a generated CA and server certificate.
    pub https: bool,
    /// Accept Basic authentication.
    pub allow_basic: bool,
    /// Accept Basic over plain HTTP (Windows' `AllowUnencrypted`).
    pub allow_unencrypted: bool,
    /// Shells per user (Windows: 30).
    pub max_shells_per_user: usize,
    /// Shell idle timeout (Windows: 180 s).
    pub shell_idle_timeout: Duration,
    /// Longest OperationTimeout honoured.
    pub max_operation_timeout: Duration,
    /// Where to listen (port 0 = any free port).
    pub bind: SocketAddr,
}

impl Default for TestServerConfig {
    fn default() -> Self {
        TestServerConfig {
            user: "orca".into(),
            password: "Orca-Test-1".into(),
            https: false,
            allow_basic: false,
            allow_unencrypted: false,
            max_shells_per_user: 30,
            shell_idle_timeout: Duration::from_secs(180),
            max_operation_timeout: Duration::from_secs(60),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// A broken answer to inject into the next Receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAnswer {
    /// Cut the XML in half.
    MalformedXml,
    /// Answer with a RelatesTo of another message.
    WrongRelatesTo,
    /// Put non-base64 text in a stream.
    BadBase64,
    /// A 500 with an `InternalError` SOAP fault.
    InternalError,
}

/// Fault injection. Counters say "the Nth matching request from now" (0 = off).
#[derive(Debug, Default)]
pub struct Faults {
    drop_receive: AtomicU32,
    stall_receive: AtomicU32,
    unauthorized: AtomicU32,
    corrupt_signature: AtomicU32,
    /// Refuse every shell operation with an AccessDenied fault.
    pub deny_access: AtomicBool,
    bad_answer: Mutex<Option<BadAnswer>>,
}

fn countdown(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .map(|prev| prev == 1)
        .unwrap_or(false)
}

impl Faults {
    /// Close the connection without answering the `n`th Receive from now.
    pub fn drop_receive(&self, n: u32) {
        self.drop_receive.store(n, Ordering::SeqCst);
    }
    /// Never answer the `n`th Receive from now (a stalled server).
    pub fn stall_receive(&self, n: u32) {
        self.stall_receive.store(n, Ordering::SeqCst);
    }
    /// Answer the `n`th authenticated request from now with 401 and forget the connection's
    /// authentication.
    pub fn unauthorized(&self, n: u32) {
        self.unauthorized.store(n, Ordering::SeqCst);
    }
    /// Corrupt the signature of the `n`th sealed answer from now.
    pub fn corrupt_signature(&self, n: u32) {
        self.corrupt_signature.store(n, Ordering::SeqCst);
    }
    /// Break the next Receive answer.
    pub fn bad_answer(&self, b: BadAnswer) {
        *self.bad_answer.lock().unwrap_or_else(|p| p.into_inner()) = Some(b);
    }
    pub(crate) fn take_bad_answer(&self) -> Option<BadAnswer> {
        self.bad_answer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Counters, for tests that count round trips.
#[derive(Debug, Default)]
pub struct Stats {
    /// HTTP requests.
    pub requests: AtomicU64,
    /// TCP connections accepted.
    pub connections: AtomicU64,
    /// Completed NTLM handshakes.
    pub ntlm_logons: AtomicU64,
    by_action: Mutex<HashMap<String, u64>>,
}

impl Stats {
    /// Requests with the action ending in `name` (`Create`, `Command`, `Receive`...).
    pub fn action(&self, name: &str) -> u64 {
        let m = self.by_action.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .filter(|(k, _)| k.rsplit('/').next() == Some(name))
            .map(|(_, v)| *v)
            .sum()
    }
}

/// Shared state of a running server.
#[derive(Debug)]
pub struct ServerState {
    /// Settings.
    pub config: TestServerConfig,
    /// Fault injection.
    pub faults: Faults,
    /// Shells.
    pub shells: soap::Shells,
    /// Counters.
    pub stats: Stats,
}

impl ServerState {
    fn count_action(&self, action: &str) {
        let mut m = self
            .stats
            .by_action
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *m.entry(action.to_string()).or_default() += 1;
    }
}

/// The certificates of an HTTPS server.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The CA certificate (PEM) that signed the server certificate.
    pub ca_pem: String,
    /// SHA-1 thumbprint of the server certificate (hex).
    pub sha1: String,
    /// SHA-256 thumbprint of the server certificate (hex).
    pub sha256: String,
}

/// A running test server; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    tls: Option<TlsInfo>,
    stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestServer {
    /// Start a server.
    pub async fn start(config: TestServerConfig) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let (acceptor, tls) = if config.https {
            let (a, info) = http::tls_acceptor().map_err(std::io::Error::other)?;
            (Some(a), Some(info))
        } else {
            (None, None)
        };
        let state = Arc::new(ServerState {
            config,
            faults: Faults::default(),
            shells: soap::Shells::default(),
            stats: Stats::default(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(http::accept_loop(
            listener,
            acceptor,
            state.clone(),
            stop.clone(),
        ));
        Ok(TestServer {
            addr,
            state,
            tls,
            stop,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/wsman", self.addr)
    }
    /// Shared state: faults, shells, counters.
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }
    /// Certificates, for HTTPS servers.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }
    /// Stop accepting and close connections.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}

/// Thumbprints of a DER certificate (re-exported for tests).
pub fn cert_thumbprints(der: &[u8]) -> (String, String) {
    thumbprints(der)
}
