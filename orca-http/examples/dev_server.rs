//! A development server for the HTTP API: SQLite in a temporary directory (or `--db PATH`),
//! the local connector, the engine, an `admin` and a `viewer` user with API tokens printed on
//! stdout, and the `local` system. For trying the API, Swagger UI and schemathesis; the real
//! server is the `orca` binary.
//!
//! ```text
//! cargo run -p orca-http --example dev_server -- --listen 127.0.0.1:8181
//! ```
//! Prints `ADMIN_TOKEN=...`, `VIEWER_TOKEN=...`, then `READY http://ADDR`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use orca_connectors::local::{LocalConfig, LocalConnector};
use orca_core::model::{JobSpec, NewUser, Principal, Role, Scope, Targets};
use orca_core::{Clock, KeyRing, Orca, Store, SystemClock};
use orca_http::{AppState, HttpConfig, JwtSecret};
use orca_store::sqlite::SqliteStore;
use secrecy::SecretString;

/// Serve the Orca HTTP API for development.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8181")]
    listen: SocketAddr,
    /// SQLite database file (default: a temporary directory, removed on exit).
    #[arg(long)]
    db: Option<std::path::PathBuf>,
    /// Switch rate limits off (for fuzzing with many requests).
    #[arg(long)]
    no_rate_limit: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| dir.path().join("orca.db"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_path(&db, clock.clone()).await?);
    let orca = Orca::builder()
        .store(store)
        .connector(Arc::new(LocalConnector::new(LocalConfig::default())?))
        .keyring(KeyRing::ephemeral())
        .clock(clock)
        .build()?;
    orca.start().await?;
    let boot = Principal::system("dev_server");
    orca.ensure_local_system(&boot).await?;

    let mut config = HttpConfig {
        listen: args.listen,
        ..Default::default()
    };
    config.auth.jwt_secret = Some(JwtSecret::generate());
    if args.no_rate_limit {
        config.rate_limit.enabled = false;
    }
    let state = AppState::new(orca.clone(), config)?;

    let mut tokens = Vec::new();
    for (name, role) in [("admin", Role::Admin), ("viewer", Role::Viewer)] {
        let user = match orca.raw_store().find_user(name).await {
            Ok(u) => u,
            Err(_) => {
                let pw = SecretString::from(format!("dev-{:032x}", rand::random::<u128>()));
                let hash = orca_http::auth::hash_password_async(name, pw).await?;
                orca.create_user(
                    &boot,
                    NewUser {
                        username: name.into(),
                        role,
                        password_hash: Some(hash),
                    },
                )
                .await?
            }
        };
        if role == Role::Viewer {
            orca.set_grants(&boot, user.id, vec![Scope::All]).await?;
        }
        tokens.push((
            name,
            state
                .issue_api_token(user.id, "dev_server", None, Some(1))
                .await?,
        ));
    }
    // Something to look at.
    orca.submit(
        &boot,
        JobSpec {
            name: Some("hello".into()),
            command: "echo hello from orca".into(),
            targets: Targets {
                systems: vec!["local".into()],
                tags: vec![],
            },
            options: Default::default(),
        },
    )
    .await?;

    let app = orca_http::router(state);
    let acceptor =
        poem::listener::Listener::into_acceptor(poem::listener::TcpListener::bind(args.listen))
            .await?;
    let mut out = std::io::stdout();
    for (name, t) in &tokens {
        writeln!(out, "{}_TOKEN={t}", name.to_uppercase())?;
    }
    writeln!(out, "READY http://{}", args.listen)?;
    out.flush()?;
    poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            Some(std::time::Duration::from_secs(5)),
        )
        .await?;
    orca.shutdown(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
