//! Stored sessions: `~/.config/orca/credentials.json` (or `$XDG_CONFIG_HOME/orca/…`, or
//! `ORCA_CREDENTIALS`), mode `0600`, one session per server.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use orca_core::{Error, ErrorKind, Result};
use secrecy::ExposeSecret;

use super::http::{Client, normalize_server};

/// One server's session.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// Who logged in.
    pub username: String,
    /// The current access token (JWT).
    pub access_token: String,
    /// The current refresh token (single use).
    pub refresh_token: String,
}

/// The credentials file.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    /// The server of the last login.
    #[serde(default)]
    pub default_server: Option<String>,
    /// Sessions by server URL.
    #[serde(default)]
    pub sessions: BTreeMap<String, Session>,
}

/// Where the credentials file is.
pub fn path() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("ORCA_CREDENTIALS")
        && !p.is_empty()
    {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var("XDG_CONFIG_HOME") {
        Ok(x) if !x.is_empty() => PathBuf::from(x),
        _ => match std::env::var("HOME") {
            Ok(h) if !h.is_empty() => PathBuf::from(h).join(".config"),
            _ => {
                return Err(Error::invalid(
                    "cannot find a place for the session file: set HOME, XDG_CONFIG_HOME or \
                     ORCA_CREDENTIALS, or use ORCA_TOKEN",
                ));
            }
        },
    };
    Ok(base.join("orca").join("credentials.json"))
}

impl Credentials {
    /// Read the file (empty if it does not exist).
    pub fn load() -> Result<Credentials> {
        let p = path()?;
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Credentials::default());
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("cannot read the session file {}: {e}", p.display()),
                ));
            }
        };
        serde_json::from_str(&text).map_err(|e| {
            Error::invalid(format!(
                "the session file {} is damaged ({e}): delete it and run `orca login` again",
                p.display()
            ))
        })
    }

    /// Write the file atomically with mode `0600` (its directory `0700`).
    pub fn save(&self) -> Result<()> {
        let p = path()?;
        let dir = p
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::PermissionDenied,
                format!("cannot write the session file {}: {e}", p.display()),
            )
        };
        b.create(&dir).map_err(io)?;
        let tmp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
        let body = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::unexpected(format!("cannot encode the session file: {e}")))?;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let r = o.open(&tmp).and_then(|mut f| {
            f.write_all(&body)?;
            f.sync_all()
        });
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        std::fs::rename(&tmp, &p).map_err(io)
    }
}

/// `orca login`.
pub async fn login(server: Option<&str>, username: &str, from_stdin: bool) -> Result<()> {
    let creds = Credentials::load()?;
    let server = normalize_server(
        server
            .map(str::to_string)
            .or(creds.default_server.clone())
            .as_deref()
            .unwrap_or(super::http::DEFAULT_SERVER),
    )?;
    let password = if from_stdin {
        crate::admin::read_stdin_line()?
    } else {
        secrecy::SecretString::from(
            rpassword::prompt_password(format!("Password for '{username}' on {server}: "))
                .map_err(|e| {
                    Error::invalid(format!(
                        "cannot read a password from the terminal ({e}); pipe it in with \
                         --password-stdin"
                    ))
                })?,
        )
    };
    let anon = Client::anonymous(&server)?;
    let pair = anon
        .post(
            "/api/v1/auth/login",
            &serde_json::json!({"username": username, "password": password.expose_secret()}),
        )
        .await
        .map_err(|e| {
            if e.kind() == ErrorKind::Unauthenticated {
                Error::new(
                    ErrorKind::Unauthenticated,
                    format!(
                        "login to {server} failed: {}; check the user name and password",
                        e.message()
                    ),
                )
            } else {
                e
            }
        })?;
    let session = session_from(username, &pair)?;
    let mut creds = Credentials::load()?;
    creds.sessions.insert(server.clone(), session);
    creds.default_server = Some(server.clone());
    creds.save()?;
    let client = Client::from_env(Some(&server))?;
    let me = client.get("/api/v1/auth/me", &[]).await?;
    println!(
        "Logged in to {server} as '{}' ({}). Session stored in {}.",
        me["username"].as_str().unwrap_or(username),
        me["role"].as_str().unwrap_or("?"),
        path()?.display()
    );
    Ok(())
}

/// A session from a token pair answer.
pub fn session_from(username: &str, pair: &serde_json::Value) -> Result<Session> {
    let get = |k: &str| {
        pair[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::unexpected(format!("the server's login answer has no {k}")))
    };
    Ok(Session {
        username: username.to_string(),
        access_token: get("access_token")?,
        refresh_token: get("refresh_token")?,
    })
}

/// `orca logout`.
pub async fn logout(server: Option<&str>) -> Result<()> {
    let mut creds = Credentials::load()?;
    let server = normalize_server(
        server
            .map(str::to_string)
            .or(creds.default_server.clone())
            .as_deref()
            .unwrap_or(super::http::DEFAULT_SERVER),
    )?;
    if !creds.sessions.contains_key(&server) {
        println!("Not logged in to {server}.");
        return Ok(());
    }
    let client = Client::from_env(Some(&server))?;
    if let Err(e) = client.post_empty("/api/v1/auth/logout").await {
        eprintln!(
            "warning: the server did not confirm the logout ({}); the local session is removed anyway",
            e.message()
        );
    }
    creds.sessions.remove(&server);
    if creds.default_server.as_deref() == Some(server.as_str()) {
        creds.default_server = None;
    }
    creds.save()?;
    println!("Logged out of {server}.");
    Ok(())
}
