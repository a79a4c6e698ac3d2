//! The test server's HTTP side: accept loop, TLS, 401/Negotiate and Basic authentication,
//! sealing, fault injection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use secrecy::SecretString;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{ServerState, TlsInfo, countdown, soap};
use crate::winrm::ntlm::{NtlmServer, ServerStep};
use crate::winrm::protocol::ACTION_RECEIVE;
use crate::winrm::sealing;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Resp = Response<Full<Bytes>>;

#[derive(Debug, Default)]
struct Conn {
    ntlm: Option<NtlmServer>,
    user: Option<String>,
}

pub(super) fn tls_acceptor() -> Result<(tokio_rustls::TlsAcceptor, TlsInfo), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Orca WinRM test CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    let (sha1, sha256) = super::thumbprints(cert.der());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| e.to_string())?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        TlsInfo {
            ca_pem: ca_cert.pem(),
            sha1,
            sha256,
        },
    ))
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<ServerState>,
    stop: CancellationToken,
) {
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
            _ = stop.cancelled() => return,
        };
        state.stats.connections.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let io: Box<dyn Io> = match tls {
                Some(a) => match a.accept(tcp).await {
                    Ok(s) => Box::new(s),
                    Err(_) => return,
                },
                None => Box::new(tcp),
            };
            let https = state.config.https;
            let conn = Arc::new(tokio::sync::Mutex::new(Conn::default()));
            let svc = service_fn(move |req| handle(req, conn.clone(), state.clone(), https));
            let serve = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(io), svc);
            tokio::select! {
                _ = serve => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

fn challenge_headers(state: &ServerState, https: bool) -> Vec<String> {
    let mut v = vec!["Negotiate".to_string()];
    if state.config.allow_basic && (https || state.config.allow_unencrypted) {
        v.push("Basic realm=\"WSMAN\"".to_string());
    }
    v
}

fn unauthorized(state: &ServerState, https: bool) -> Resp {
    let mut b = Response::builder().status(StatusCode::UNAUTHORIZED);
    for h in challenge_headers(state, https) {
        b = b.header(WWW_AUTHENTICATE, h);
    }
    b.body(Full::new(Bytes::new())).unwrap_or_default()
}

fn plain(status: StatusCode, text: &str) -> Resp {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from(text.to_string())))
        .unwrap_or_default()
}

async fn handle(
    req: Request<Incoming>,
    conn: Arc<tokio::sync::Mutex<Conn>>,
    state: Arc<ServerState>,
    https: bool,
) -> Result<Resp, std::io::Error> {
    state.stats.requests.fetch_add(1, Ordering::SeqCst);
    let auth = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match Limited::new(req.into_body(), 64 * 1024 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(std::io::Error::other("request body unreadable")),
    };
    let mut c = conn.lock().await;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(auth) = auth {
        let (scheme, token) = auth.trim().split_once(' ').unwrap_or((auth.trim(), ""));
        let scheme_l = scheme.to_ascii_lowercase();
        if scheme_l == "negotiate" || scheme_l == "ntlm" {
            let Ok(token) = b64.decode(token.trim()) else {
                return Ok(unauthorized(&state, https));
            };
            if !token.starts_with(b"NTLMSSP\0") {
                return Ok(plain(
                    StatusCode::UNAUTHORIZED,
                    "the test server speaks raw NTLM in Negotiate, not SPNEGO-wrapped tokens",
                ));
            }
            if token.get(8) == Some(&1) {
                c.user = None;
                let mut server = match NtlmServer::new(
                    &state.config.user,
                    &SecretString::from(state.config.password.clone()),
                ) {
                    Ok(s) => s,
                    Err(e) => return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
                };
                return Ok(match server.step(&token) {
                    Ok(ServerStep::Challenge(t2)) => {
                        c.ntlm = Some(server);
                        Response::builder()
                            .status(StatusCode::UNAUTHORIZED)
                            .header(WWW_AUTHENTICATE, format!("{scheme} {}", b64.encode(t2)))
                            .body(Full::new(Bytes::new()))
                            .unwrap_or_default()
                    }
                    _ => unauthorized(&state, https),
                });
            }
            let Some(server) = c.ntlm.as_mut() else {
                return Ok(unauthorized(&state, https));
            };
            match server.step(&token) {
                Ok(ServerStep::Authenticated) => {
                    state.stats.ntlm_logons.fetch_add(1, Ordering::SeqCst);
                    c.user = Some(state.config.user.clone());
                }
                _ => {
                    c.ntlm = None;
                    return Ok(unauthorized(&state, https));
                }
            }
            if body.is_empty() {
                return Ok(Response::new(Full::new(Bytes::new())));
            }
        } else if scheme_l == "basic" {
            if !state.config.allow_basic || !(https || state.config.allow_unencrypted) {
                return Ok(unauthorized(&state, https));
            }
            let ok = b64
                .decode(token.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                })
                .is_some_and(|(u, p)| {
                    u.eq_ignore_ascii_case(&state.config.user) && p == state.config.password
                });
            if !ok {
                return Ok(unauthorized(&state, https));
            }
            drop(c);
            return serve_plain(&state, &body).await;
        } else {
            return Ok(unauthorized(&state, https));
        }
    }
    let Some(user) = c.user.clone() else {
        return Ok(unauthorized(&state, https));
    };
    if countdown(&state.faults.unauthorized) {
        c.user = None;
        c.ntlm = None;
        return Ok(unauthorized(&state, https));
    }
    let sealed_req = sealing::is_sealed(&content_type);
    if !sealed_req {
        if !https && !state.config.allow_unencrypted {
            return Ok(plain(
                StatusCode::UNAUTHORIZED,
                "unencrypted traffic is disabled (AllowUnencrypted=false): seal the message",
            ));
        }
        drop(c);
        return serve_plain_as(&state, &user, &body).await;
    }
    let Some(server) = c.ntlm.as_mut() else {
        return Ok(unauthorized(&state, https));
    };
    let soap_req = match sealing::unseal(server, &body) {
        Ok(p) => p,
        Err(e) => {
            c.user = None;
            c.ntlm = None;
            return Ok(plain(StatusCode::BAD_REQUEST, &e.to_string()));
        }
    };
    injected_receive_faults(&state, &soap_req).await?;
    let reply = soap::handle(&state, &user, &soap_req).await;
    let Some(server) = c.ntlm.as_mut() else {
        return Ok(unauthorized(&state, https));
    };
    let mut sealed = match sealing::seal(server, reply.body.as_bytes()) {
        Ok(s) => s,
        Err(e) => return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
    };
    if countdown(&state.faults.corrupt_signature) {
        // The signature follows the second part's header and its 4-byte length.
        if let Some(i) = find(&sealed, b"application/octet-stream\r\n") {
            let at = i + b"application/octet-stream\r\n".len() + 4 + 6;
            if at < sealed.len() {
                sealed[at] ^= 0xA5;
            }
        }
    }
    Ok(Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, sealing::CONTENT_TYPE)
        .body(Full::new(Bytes::from(sealed)))
        .unwrap_or_default())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn injected_receive_faults(
    state: &ServerState,
    soap_req: &[u8],
) -> Result<(), std::io::Error> {
    if find(soap_req, ACTION_RECEIVE.as_bytes()).is_some() {
        if countdown(&state.faults.drop_receive) {
            return Err(std::io::Error::other(
                "injected: connection dropped mid-Receive",
            ));
        }
        if countdown(&state.faults.stall_receive) {
            std::future::pending::<()>().await;
        }
    }
    Ok(())
}

async fn serve_plain(state: &Arc<ServerState>, body: &[u8]) -> Result<Resp, std::io::Error> {
    let user = state.config.user.clone();
    serve_plain_as(state, &user, body).await
}

async fn serve_plain_as(
    state: &Arc<ServerState>,
    user: &str,
    body: &[u8],
) -> Result<Resp, std::io::Error> {
    if body.is_empty() {
        return Ok(Response::new(Full::new(Bytes::new())));
    }
    injected_receive_faults(state, body).await?;
    let reply = soap::handle(state, user, body).await;
    Ok(Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, "application/soap+xml;charset=UTF-8")
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_default())
}
