//! The HTTP client: bearer authentication with automatic refresh, and one clear line for every
//! failure (server down, not logged in, denied, rate limited...).

use std::time::Duration;

use orca_core::{Error, ErrorKind, Result};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::session::{Credentials, Session, session_from};

/// The server used when none is given or stored.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// `http://host:port` without a trailing slash; refuses what is not an http(s) URL.
pub fn normalize_server(s: &str) -> Result<String> {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| {
        Error::invalid(format!(
            "'{s}' is not a server URL ({e}); use e.g. http://127.0.0.1:8080"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::invalid(format!(
            "'{s}' is not a server URL; use e.g. http://127.0.0.1:8080"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

enum Auth {
    None,
    /// `ORCA_TOKEN`: used as is.
    Token(String),
    /// A stored session, refreshed when its access token is refused.
    Session(Mutex<Session>),
}

/// A client of one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

impl Client {
    fn build(base: String, auth: Auth) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("orca-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::unexpected(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base, auth })
    }

    /// A client without credentials.
    pub fn anonymous(server: &str) -> Result<Self> {
        Self::build(normalize_server(server)?, Auth::None)
    }

    /// The client for `server` (or the stored default) with `ORCA_TOKEN` or the stored session.
    pub fn from_env(server: Option<&str>) -> Result<Self> {
        let token = std::env::var("ORCA_TOKEN").ok().filter(|t| !t.is_empty());
        let creds = if token.is_some() {
            Credentials::default()
        } else {
            Credentials::load()?
        };
        let base = normalize_server(
            server
                .map(str::to_string)
                .or(creds.default_server.clone())
                .as_deref()
                .unwrap_or(DEFAULT_SERVER),
        )?;
        let auth = match token {
            Some(t) => Auth::Token(t),
            None => match creds.sessions.get(&base) {
                Some(s) => Auth::Session(Mutex::new(s.clone())),
                None => Auth::None,
            },
        };
        Self::build(base, auth)
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn bearer(&self) -> Option<String> {
        match &self.auth {
            Auth::None => None,
            Auth::Token(t) => Some(t.clone()),
            Auth::Session(s) => Some(s.lock().await.access_token.clone()),
        }
    }

    /// Trade the stored refresh token for new tokens; false if there is no session or the
    /// server refused (the session ended).
    async fn refresh(&self, refused: &str) -> Result<bool> {
        let Auth::Session(s) = &self.auth else {
            return Ok(false);
        };
        let mut s = s.lock().await;
        if s.access_token != refused {
            // Another request refreshed meanwhile.
            return Ok(true);
        }
        let body = serde_json::json!({"refresh_token": s.refresh_token});
        let r = self
            .send(Method::POST, "/api/v1/auth/refresh", &[], Some(&body), None)
            .await;
        match r {
            Ok(pair) => {
                *s = session_from(&s.username, &pair)?;
                let mut creds = Credentials::load()?;
                creds.sessions.insert(self.base.clone(), s.clone());
                creds.save()?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::Unauthenticated => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).query(query);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                Error::unexpected(format!(
                    "{} answered {path} with something that is not JSON ({e}); is it an Orca \
                     server?",
                    self.base
                ))
            });
        }
        Err(self.status_error(
            status,
            &bytes,
            retry_after,
            bearer.is_some() || path.starts_with("/api/v1/auth/"),
        ))
    }

    /// One request, refreshing the session once if the access token was refused.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let bearer = self.bearer().await;
        let r = self
            .send(method.clone(), path, query, body, bearer.as_deref())
            .await;
        match (r, bearer) {
            (Err(e), Some(b)) if e.kind() == ErrorKind::Unauthenticated => {
                if self.refresh(&b).await? {
                    let b = self.bearer().await;
                    self.send(method, path, query, body, b.as_deref()).await
                } else {
                    Err(self.session_ended())
                }
            }
            (r, _) => r,
        }
    }

    /// `GET`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.request(Method::GET, path, query, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(Method::POST, path, &[], Some(body)).await
    }

    /// `POST` without a body.
    pub async fn post_empty(&self, path: &str) -> Result<Value> {
        self.request(Method::POST, path, &[], None).await
    }

    /// `DELETE`.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.request(Method::DELETE, path, &[], None).await
    }

    fn session_ended(&self) -> Error {
        Error::new(
            ErrorKind::Unauthenticated,
            format!(
                "your session on {} has ended: log in again with `orca login --server {}`",
                self.base, self.base
            ),
        )
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        let why = if e.is_connect() {
            "connection refused or host unreachable"
        } else if e.is_timeout() {
            "no answer in time"
        } else {
            "the connection failed"
        };
        Error::new(
            ErrorKind::ConnectionFailed,
            format!(
                "cannot reach the Orca server at {} ({why}): is `orca serve` running there? Use \
                 --server URL (or ORCA_SERVER) for another server",
                self.base
            ),
        )
    }

    fn status_error(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<String>,
        had_token: bool,
    ) -> Error {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v["message"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    status.to_string()
                } else {
                    text.chars().take(300).collect()
                }
            });
        let request_id = parsed
            .as_ref()
            .and_then(|v| v["request_id"].as_str())
            .map(|r| format!(" (request id {r})"))
            .unwrap_or_default();
        let kind = match status.as_u16() {
            400 | 413 => ErrorKind::InvalidInput,
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            422 => ErrorKind::Unsupported,
            502 => ErrorKind::ConnectionFailed,
            504 => ErrorKind::Timeout,
            503 => ErrorKind::Storage,
            _ => ErrorKind::Unexpected,
        };
        let text = match status.as_u16() {
            401 if !had_token => format!(
                "not logged in to {}: run `orca login --server {}` (or set ORCA_TOKEN)",
                self.base, self.base
            ),
            429 => format!(
                "{message}; try again in {} seconds",
                retry_after.as_deref().unwrap_or("a few")
            ),
            s if s >= 500 => format!("the server failed: {message}{request_id}"),
            _ => message,
        };
        Error::new(kind, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            normalize_server("127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_server("https://orca.example.com").unwrap(),
            "https://orca.example.com"
        );
        assert!(normalize_server("ftp://x").is_err());
        assert!(normalize_server("http://").is_err());
    }

    #[tokio::test]
    async fn a_server_that_is_down_is_one_clear_line() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::anonymous(&format!("127.0.0.1:{port}")).unwrap();
        let e = c.get("/healthz", &[]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionFailed);
        assert!(e.message().contains("is `orca serve` running"), "{e}");
    }
}
