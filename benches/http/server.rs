//! The Orca HTTP API as `benches/http/run.sh` measures it: the real router and request
//! pipeline (`orca_http::router`) over SQLite (a temporary file, `synchronous=NORMAL`; or
//! `--store memory`), with the engine running jobs through the scripted connector (in-process,
//! no processes or sockets), so `POST /api/v1/jobs` measures the API and the store rather than
//! `fork`/`exec`.
//!
//! ```text
//! cargo run --release -p orca-benches --example orca-http-bench-server -- --listen 127.0.0.1:18181
//! ```
//! Sets up an admin `bench` with a random password, `--systems` systems `s0..s{N-1}` (type
//! local, tag `bench`) and one finished job, then prints `USERNAME=`, `PASSWORD=`,
//! `API_TOKEN=`, `EXECUTION_ID=`, `SYSTEMS=` (comma-separated) and `READY http://ADDR`.
//! Rate limits are off (a benchmark is one client sending far more than any limit); logs go to
//! stderr at `warn` unless `RUST_LOG` says otherwise. Stops on Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use orca_core::model::{JobSpec, NewSystem, NewUser, Principal, Role, SystemType, Targets};
use orca_core::scripted::ScriptedConnector;
use orca_core::{Clock, KeyRing, MemoryStore, Orca, Store, SystemClock};
use orca_http::{AppState, HttpConfig, JwtSecret};
use orca_store::sqlite::SqliteStore;
use poem::listener::{Listener, TcpListener};
use secrecy::SecretString;

/// Serve the Orca HTTP API for the HTTP benchmark.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:18181")]
    listen: SocketAddr,
    /// Systems to register (`s0`, `s1`, ...).
    #[arg(long, default_value_t = 10)]
    systems: usize,
    /// Do not start the engine (submitted jobs stay pending).
    #[arg(long)]
    no_engine: bool,
    /// How long a verified bearer credential is cached, in milliseconds (0: never).
    #[arg(long)]
    auth_cache_ms: Option<u64>,
    /// `sqlite` (the embedded default of `orca serve`) or `memory` (orca-core's in-memory
    /// store: shows what the HTTP layer costs without a database round trip).
    #[arg(long, default_value = "sqlite")]
    store: String,
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn Store> = match args.store.as_str() {
        "sqlite" => {
            Arc::new(SqliteStore::open_path(dir.path().join("orca.db"), clock.clone()).await?)
        }
        "memory" => Arc::new(MemoryStore::new(clock.clone())),
        other => return Err(format!("--store must be sqlite or memory, not '{other}'").into()),
    };
    let orca = Orca::builder()
        .store(store)
        .connector(Arc::new(ScriptedConnector::new()))
        .keyring(KeyRing::ephemeral())
        .clock(clock)
        .build()?;
    if !args.no_engine {
        orca.start().await?;
    }
    let boot = Principal::system("http-bench");
    let mut names = Vec::with_capacity(args.systems);
    for i in 0..args.systems {
        let name = format!("s{i}");
        orca.add_system(
            &boot,
            NewSystem {
                name: name.clone(),
                system_type: Some(SystemType::Local),
                tags: vec!["bench".into()],
                ..Default::default()
            },
        )
        .await?;
        names.push(name);
    }

    let mut config = HttpConfig {
        listen: args.listen,
        ..Default::default()
    };
    config.auth.jwt_secret = Some(JwtSecret::generate());
    config.rate_limit.enabled = false;
    if let Some(ms) = args.auth_cache_ms {
        config.auth.cache_ttl_ms = ms;
    }
    let state = AppState::new(orca.clone(), config)?;

    let password = format!("pw-{:032x}", rand::random::<u128>());
    let hash =
        orca_http::auth::hash_password_async("bench", SecretString::from(password.clone())).await?;
    let user = orca
        .create_user(
            &boot,
            NewUser {
                username: "bench".into(),
                role: Role::Admin,
                password_hash: Some(hash),
            },
        )
        .await?;
    let api_token = state
        .issue_api_token(user.id, "http-bench", None, Some(1))
        .await?;
    let first = names.first().ok_or("--systems must be at least 1")?;
    let submitted = orca
        .submit(
            &boot,
            JobSpec {
                name: Some("bench".into()),
                command: "echo hello from the benchmark".into(),
                targets: Targets {
                    systems: vec![first.clone()],
                    tags: vec![],
                },
                options: Default::default(),
            },
        )
        .await?;
    let execution = submitted.executions.first().ok_or("no execution")?.id;

    let app = orca_http::router(state);
    let acceptor = TcpListener::bind(args.listen).into_acceptor().await?;
    let mut out = std::io::stdout();
    writeln!(out, "USERNAME=bench")?;
    writeln!(out, "PASSWORD={password}")?;
    writeln!(out, "API_TOKEN={api_token}")?;
    writeln!(out, "EXECUTION_ID={execution}")?;
    writeln!(out, "SYSTEMS={}", names.join(","))?;
    writeln!(out, "READY http://{}", args.listen)?;
    out.flush()?;
    poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, stop_signal(), Some(Duration::from_secs(5)))
        .await?;
    orca.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM (what `run.sh` sends).
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
