//! One HTTP/1.1 connection to a WinRM listener and the authenticated session on it.
//!
//! An NTLM-authenticated session is bound to its TCP connection, so a [`Session`] owns exactly
//! one connection (a raw hyper client connection, no pool that could silently swap it). When the
//! connection breaks, the session is dead; the caller opens a new one.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT, WWW_AUTHENTICATE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::config::{AuthMethod, WinRmConfig};
use super::error::WinRmError;
use super::ntlm::{NtlmClient, SessionSecurity};
use super::sealing;

/// Largest HTTP answer accepted.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What a session needs to connect: the parsed settings and, for HTTPS, the TLS config.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Settings.
    pub config: Arc<WinRmConfig>,
    /// TLS client config (HTTPS only).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// An HTTP answer.
#[derive(Debug)]
struct HttpAnswer {
    status: StatusCode,
    content_type: String,
    www_auth: Vec<String>,
    body: Bytes,
}

/// An authenticated session on its own connection.
pub struct Session {
    sender: http1::SendRequest<Full<Bytes>>,
    endpoint: Endpoint,
    host_header: String,
    basic: Option<SecretString>,
    ntlm: Option<Box<NtlmClient>>,
    /// Set while a call is in flight; a call that was abandoned leaves it set.
    busy: bool,
    dead: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint.config.endpoint())
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

fn connect_err(cfg: &WinRmConfig, e: impl std::fmt::Display) -> WinRmError {
    WinRmError::Connect(format!("{}:{}: {e}", cfg.host, cfg.port))
}

impl Session {
    /// Connect, do TLS if asked, and authenticate, all within the connect timeout.
    pub async fn open(
        endpoint: &Endpoint,
        user: &str,
        password: &SecretString,
    ) -> Result<Session, WinRmError> {
        let cfg = endpoint.config.clone();
        match tokio::time::timeout(
            cfg.connect_timeout,
            Self::open_inner(endpoint, user, password),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(WinRmError::Timeout(format!(
                "connecting and authenticating to {}:{} took longer than {:?}",
                cfg.host, cfg.port, cfg.connect_timeout
            ))),
        }
    }

    async fn open_inner(
        endpoint: &Endpoint,
        user: &str,
        password: &SecretString,
    ) -> Result<Session, WinRmError> {
        let cfg = &endpoint.config;
        let tcp = TcpStream::connect((cfg.host.as_str(), cfg.port))
            .await
            .map_err(|e| connect_err(cfg, e))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &endpoint.tls {
            Some(tls) => {
                let name =
                    rustls::pki_types::ServerName::try_from(cfg.host.clone()).map_err(|e| {
                        WinRmError::Config(format!("invalid TLS server name '{}': {e}", cfg.host))
                    })?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| tls_error(cfg, e))?;
                Box::new(stream)
            }
            None => Box::new(tcp),
        };
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| connect_err(cfg, e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host_header = format!("{}:{}", cfg.host, cfg.port);
        if !cfg.https && cfg.auth == AuthMethod::Basic {
            tracing::warn!(
                host = %cfg.host,
                "WinRM: Basic authentication over unencrypted HTTP (allow_unencrypted=true): \
                 the password and all traffic travel in clear"
            );
        }
        let mut s = Session {
            sender,
            endpoint: endpoint.clone(),
            host_header,
            basic: None,
            ntlm: None,
            busy: false,
            dead: false,
        };
        match cfg.auth {
            AuthMethod::Basic => {
                let raw = format!("{user}:{}", password.expose_secret());
                let v = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                s.basic = Some(SecretString::from(v));
            }
            AuthMethod::Ntlm => s.ntlm_handshake(user, password).await?,
        }
        Ok(s)
    }

    async fn ntlm_handshake(
        &mut self,
        user: &str,
        password: &SecretString,
    ) -> Result<(), WinRmError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut ntlm = NtlmClient::new(user, password, &self.endpoint.config.host)?;
        let (t1, _) = ntlm.step(None)?;
        let a = self
            .post(
                Some(format!("Negotiate {}", b64.encode(&t1))),
                None,
                Bytes::new(),
            )
            .await?;
        if a.status != StatusCode::UNAUTHORIZED {
            return Err(WinRmError::Auth(format!(
                "the server answered {} to an NTLM negotiation (is NTLM/Negotiate enabled on the listener?)",
                a.status
            )));
        }
        let challenge = a
            .www_auth
            .iter()
            .find_map(|h| {
                let (scheme, token) = h.trim().split_once(' ')?;
                (scheme.eq_ignore_ascii_case("Negotiate") || scheme.eq_ignore_ascii_case("NTLM"))
                    .then(|| token.trim().to_string())
            })
            .ok_or_else(|| {
                WinRmError::Auth(format!(
                    "the server offers no NTLM challenge (WWW-Authenticate: {:?}); is Negotiate authentication enabled?",
                    a.www_auth
                ))
            })?;
        let t2 = b64
            .decode(challenge.as_bytes())
            .map_err(|_| WinRmError::Auth("the server's NTLM challenge is not base64".into()))?;
        let (t3, _) = ntlm.step(Some(&t2))?;
        let a = self
            .post(
                Some(format!("Negotiate {}", b64.encode(&t3))),
                None,
                Bytes::new(),
            )
            .await?;
        match a.status {
            StatusCode::OK => {
                self.ntlm = Some(Box::new(ntlm));
                Ok(())
            }
            StatusCode::UNAUTHORIZED => Err(WinRmError::Auth(
                "the server refused the user name or password (NTLM)".into(),
            )),
            s => Err(WinRmError::Auth(format!(
                "unexpected HTTP {s} at the end of the NTLM handshake"
            ))),
        }
    }

    /// The settings this session was opened with.
    pub fn config(&self) -> &WinRmConfig {
        &self.endpoint.config
    }

    /// Whether the session can take another call.
    pub fn is_usable(&self) -> bool {
        !self.dead && !self.busy && !self.sender.is_closed()
    }

    async fn post(
        &mut self,
        authorization: Option<String>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<HttpAnswer, WinRmError> {
        let cfg = self.endpoint.config.clone();
        let mut req = Request::post(cfg.path.as_str())
            .header(HOST, &self.host_header)
            .header(USER_AGENT, "orca-winrm/0.1");
        if let Some(a) = authorization {
            req = req.header(AUTHORIZATION, a);
        }
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| WinRmError::Protocol(format!("cannot build the HTTP request: {e}")))?;
        let fut = async {
            self.sender
                .ready()
                .await
                .map_err(|e| WinRmError::NotSent(format!("the connection is closed: {e}")))?;
            let resp = match self.sender.try_send_request(req).await {
                Ok(r) => r,
                Err(mut e) => {
                    let unsent = e.take_message().is_some();
                    let err = e.into_error();
                    return Err(if unsent {
                        WinRmError::NotSent(format!(
                            "the connection closed before the request was sent: {err}"
                        ))
                    } else {
                        WinRmError::Connect(format!("the request failed: {err}"))
                    });
                }
            };
            let status = resp.status();
            let header = |n| {
                resp.headers()
                    .get(n)
                    .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let content_type = header(CONTENT_TYPE);
            let www_auth = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| WinRmError::Connect(format!("reading the answer failed: {e}")))?
                .to_bytes();
            Ok::<_, WinRmError>(HttpAnswer {
                status,
                content_type,
                www_auth,
                body,
            })
        };
        match tokio::time::timeout(cfg.read_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(WinRmError::Timeout(format!(
                "no answer from {}:{} within the read timeout of {:?}",
                cfg.host, cfg.port, cfg.read_timeout
            ))),
        }
    }

    /// Send one SOAP message and return the SOAP answer (a fault answer is returned as text
    /// too; the caller parses it). A session that fails here is dead.
    pub async fn call(&mut self, soap: &[u8]) -> Result<Bytes, WinRmError> {
        if self.dead || self.busy {
            return Err(WinRmError::Connect(
                "the WinRM session is no longer usable".into(),
            ));
        }
        self.busy = true;
        let r = self.call_inner(soap).await;
        self.busy = false;
        if r.is_err() {
            self.dead = true;
        }
        r
    }

    async fn call_inner(&mut self, soap: &[u8]) -> Result<Bytes, WinRmError> {
        let sealed = self.endpoint.config.sealed();
        let (auth, ct, body) = if sealed {
            let ntlm = self
                .ntlm
                .as_deref_mut()
                .ok_or_else(|| WinRmError::Auth("the session is not authenticated".into()))?;
            let body = sealing::seal(ntlm as &mut dyn SessionSecurity, soap)?;
            (None, sealing::CONTENT_TYPE, Bytes::from(body))
        } else {
            let auth = self.basic.as_ref().map(|b| b.expose_secret().to_string());
            (
                auth,
                "application/soap+xml;charset=UTF-8",
                Bytes::copy_from_slice(soap),
            )
        };
        let a = self.post(auth, Some(ct), body).await?;
        if a.status == StatusCode::UNAUTHORIZED {
            return Err(WinRmError::Http(
                401,
                "the server no longer accepts this session (401); the request was not processed"
                    .into(),
            ));
        }
        let plain = if sealing::is_sealed(&a.content_type) {
            let ntlm = self.ntlm.as_deref_mut().ok_or_else(|| {
                WinRmError::Protocol("an encrypted answer on a session without encryption".into())
            })?;
            Bytes::from(sealing::unseal(ntlm as &mut dyn SessionSecurity, &a.body)?)
        } else if sealed && a.status == StatusCode::OK {
            return Err(WinRmError::Protocol(
                "the server answered in clear on an encrypted session; refusing it".into(),
            ));
        } else {
            a.body
        };
        match a.status {
            StatusCode::OK => Ok(plain),
            // Faults come as 500 (or 400) with a SOAP body.
            s if (s == StatusCode::INTERNAL_SERVER_ERROR || s == StatusCode::BAD_REQUEST)
                && looks_like_soap(&plain) =>
            {
                Ok(plain)
            }
            s => Err(WinRmError::Http(
                s.as_u16(),
                String::from_utf8_lossy(&plain[..plain.len().min(200)]).into_owned(),
            )),
        }
    }
}

fn looks_like_soap(b: &[u8]) -> bool {
    let head = &b[..b.len().min(400)];
    head.windows(8).any(|w| w == b"Envelope")
}

fn tls_error(cfg: &WinRmConfig, e: std::io::Error) -> WinRmError {
    let cert = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .map(|r| {
            matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::General(_)
            )
        })
        .unwrap_or(false);
    if cert {
        WinRmError::Certificate(format!("{}:{}: {e}", cfg.host, cfg.port))
    } else {
        connect_err(cfg, format!("TLS handshake failed: {e}"))
    }
}
