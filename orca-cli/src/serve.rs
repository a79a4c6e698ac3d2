//! `orca serve`: the HTTP API and the engine in one process, on an embedded default.
//!
//! On first start it creates the data directory, the key ring, the JWT secret, an `admin` user
//! (password from `--admin-password-file` or `ORCA_ADMIN_PASSWORD`, or generated and printed
//! once) and the `local` system.
//! SIGTERM or Ctrl-C stop it gracefully: no new requests or claims, running executions get
//! `execution.shutdown_grace` to finish.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orca_core::model::{NewUser, Page, Principal, Role};
use orca_core::{Error, ErrorKind, Orca, Result};
use poem::listener::{Acceptor, Listener, TcpListener};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;
use crate::datadir;
use crate::open::{self, Role as DbRole};

/// The actor of records written by the server itself.
const ACTOR: &str = "orca-serve";

/// Everything a server or worker process holds.
pub struct Node {
    /// The facade.
    pub orca: Orca,
    /// The open database.
    pub opened: orca::Database,
}

/// Open the database, the key ring and the facade for a process that serves or runs work.
pub async fn node(cfg: &Config, engine: bool, live: bool) -> Result<Node> {
    datadir::prepare(&cfg.data_dir())?;
    let role = if engine {
        DbRole::Engine
    } else {
        DbRole::Client
    };
    let mut opened = open::open(cfg, role, live).await?;
    let ring = opened.key_ring().await?;
    let orca = opened
        .builder(ring)?
        .audit_log(cfg.features.audit_logging)
        .build()?;
    if engine {
        opened.wake_on_submit(&orca);
    }
    Ok(Node { orca, opened })
}

/// Where the first admin's password comes from, if not generated.
pub enum AdminPassword {
    /// `--admin-password-file`.
    File(PathBuf, SecretString),
    /// `ORCA_ADMIN_PASSWORD` (already removed from the process environment by `main`).
    Env(SecretString),
}

impl AdminPassword {
    /// The password given by `file` or else by `env`; both at once is an error.
    pub fn choose(file: Option<&Path>, env: Option<SecretString>) -> Result<Option<Self>> {
        match (file, env) {
            (Some(_), Some(_)) => Err(Error::invalid(
                "both --admin-password-file and ORCA_ADMIN_PASSWORD are set: give the first \
                 admin's password one way",
            )),
            (Some(path), None) => Ok(Some(AdminPassword::File(
                path.to_path_buf(),
                read_password_file(path)?,
            ))),
            (None, Some(env)) => Ok(Some(AdminPassword::Env(env))),
            (None, None) => Ok(None),
        }
    }

    /// Where it came from, for messages.
    fn origin(&self) -> String {
        match self {
            AdminPassword::File(path, _) => format!("the file {}", path.display()),
            AdminPassword::Env(_) => "ORCA_ADMIN_PASSWORD".to_string(),
        }
    }

    fn secret(&self) -> &SecretString {
        match self {
            AdminPassword::File(_, s) | AdminPassword::Env(s) => s,
        }
    }
}

/// The password in `path`: its first line, without the line ending.
fn read_password_file(path: &Path) -> Result<SecretString> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::InvalidInput,
        };
        Error::new(
            kind,
            format!(
                "cannot read the admin password file {} (--admin-password-file): {e}",
                path.display()
            ),
        )
    })?;
    let text = SecretString::from(text);
    let line = text.expose_secret().lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(Error::invalid(format!(
            "the admin password file {} (--admin-password-file) is empty; write the password \
             on its first line",
            path.display()
        )));
    }
    Ok(SecretString::from(line.to_string()))
}

/// Run `orca serve` until SIGTERM or Ctrl-C.
pub async fn run(
    cfg: Config,
    no_engine: bool,
    started: Instant,
    admin_password: Option<AdminPassword>,
) -> Result<()> {
    let listen = cfg.http.listen;
    let mut http = cfg.http();
    if http.auth.jwt_secret.is_none() {
        datadir::prepare(&cfg.data_dir())?;
        http.auth.jwt_secret = Some(datadir::load_or_create_jwt_secret(&cfg.jwt_secret_file())?);
    }
    if no_engine
        && !matches!(
            cfg.database()?,
            orca_core::location::DatabaseLocation::Postgres(_)
        )
    {
        return Err(Error::invalid(
            "--no-engine serves the API only, which makes sense on PostgreSQL with an `orca \
             worker` beside it; on SQLite, `orca serve` must run the engine itself",
        ));
    }
    let node = node(&cfg, !no_engine, true).await?;
    let orca = node.orca.clone();

    // Bind before creating anything, so a port in use changes nothing.
    let acceptor = TcpListener::bind(listen)
        .into_acceptor()
        .await
        .map_err(|e| bind_error(listen, e))?;
    let local = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .unwrap_or(listen);

    let me = Principal::system(ACTOR);
    let admin = first_admin(&orca, &me, admin_password).await?;
    orca.ensure_local_system(&me).await?;
    let state = orca_http::AppState::new(orca.clone(), http)?;
    let app = orca_http::router(state);
    if !no_engine {
        orca.start().await?;
    }

    let url = format!("http://{local}");
    println!(
        "Orca {} is ready at {url} (started in {} ms)",
        env!("CARGO_PKG_VERSION"),
        started.elapsed().as_millis()
    );
    if orca_http::console_embedded() {
        println!("  console:   open {url}/ in a browser");
    }
    println!("  API docs:  {url}/api/docs");
    println!("  database:  {}", node.opened.location());
    if no_engine {
        println!("  engine:    off (an `orca worker` on this database runs the jobs)");
    }
    match &admin {
        Some(NewAdmin::Generated(pw)) => {
            println!("  First start: created the user 'admin' with this one-time password:");
            println!();
            println!("      {}", pw.expose_secret());
            println!();
            println!(
                "  It is not shown again. Sign in at {url}/ or with `orca login --server {url}`, then"
            );
            println!("  change it with `orca user passwd admin`.");
        }
        Some(NewAdmin::Given(origin)) => {
            println!("  First start: created the user 'admin' with the password in {origin}.");
        }
        None => {}
    }
    println!("  Try:       orca login --server {url} && orca run --system local -- uptime");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(listen = %local, engine = !no_engine, "serving");

    // On a signal: stop claiming and let running executions finish (the API keeps answering,
    // so clients following them see them end), then stop serving HTTP.
    let (o, c) = (orca.clone(), cfg.clone());
    let stopping = async move {
        shutdown_signal().await;
        stop(&o, &c, !no_engine).await;
    };
    let server = poem::Server::new_with_acceptor(acceptor);
    let served = server
        .run_with_graceful_shutdown(app, stopping, Some(Duration::from_secs(5)))
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the HTTP server failed");
    }
    node.opened.close().await;
    Ok(())
}

/// Stop the engine gracefully and report.
pub async fn stop(orca: &Orca, cfg: &Config, engine: bool) {
    if !engine {
        return;
    }
    tracing::info!(
        grace_seconds = cfg.shutdown_grace.as_secs_f64(),
        "stopping: no new claims; running executions may finish"
    );
    match orca.shutdown(cfg.shutdown_grace).await {
        Ok(r) if r.abandoned.is_empty() => {
            tracing::info!(drained = r.drained, "stopped");
        }
        Ok(r) => tracing::warn!(
            drained = r.drained,
            abandoned = r.abandoned.len(),
            "stopped; executions still running after the grace period end as `lost` when their leases expire"
        ),
        Err(e) => tracing::error!(error = %e, "the engine did not stop cleanly"),
    }
}

fn bind_error(addr: std::net::SocketAddr, e: std::io::Error) -> Error {
    let what = match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr}: the port is in use by another program; stop it or pass \
             --listen {}:{}",
            addr.ip(),
            addr.port().wrapping_add(1).max(1024)
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot listen on {addr}: permission denied (ports below 1024 need privileges); pass \
             --listen with a port of 1024 or more"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "cannot listen on {addr}: no network interface has that address; pass --listen \
             127.0.0.1:8080 or 0.0.0.0:8080"
        ),
        _ => format!("cannot listen on {addr}: {e}"),
    };
    Error::new(ErrorKind::ConnectionFailed, what)
}

/// The admin created on first start.
enum NewAdmin {
    /// With a generated password (to print once).
    Generated(SecretString),
    /// With the password given (from where).
    Given(String),
}

/// On a database without users, create `admin` with `given`, or else a generated password.
async fn first_admin(
    orca: &Orca,
    me: &Principal,
    given: Option<AdminPassword>,
) -> Result<Option<NewAdmin>> {
    let any = orca
        .list_users(
            me,
            Page {
                offset: 0,
                limit: 1,
            },
        )
        .await?;
    if !any.is_empty() {
        return Ok(None);
    }
    let (password, how) = match &given {
        Some(g) => (g.secret().clone(), NewAdmin::Given(g.origin())),
        None => {
            let pw = generate_password();
            (pw.clone(), NewAdmin::Generated(pw))
        }
    };
    let hash = orca_core::auth::hash_password_async("admin", password)
        .await
        .map_err(|e| {
            let origin = given.as_ref().map(|g| g.origin());
            Error::invalid(format!(
                "the admin password in {} is not accepted: {}",
                origin.as_deref().unwrap_or("(generated)"),
                e.message()
            ))
        })?;
    let r = orca
        .create_user(
            me,
            NewUser {
                username: "admin".into(),
                role: Role::Admin,
                password_hash: Some(hash),
            },
        )
        .await;
    match r {
        Ok(_) => Ok(Some(how)),
        // Another node created it at the same moment.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e),
    }
}

/// A random password: 20 characters of URL-safe base64 (120 bits).
fn generate_password() -> SecretString {
    use base64::Engine;
    let mut b = [0u8; 15];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
