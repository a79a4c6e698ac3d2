//! # orca
//!
//! One binary for Orca: `orca serve` (HTTP API + engine on an embedded SQLite default, no
//! configuration needed), `orca worker` (engine only, to scale out on PostgreSQL), admin verbs
//! that work on the database directly (`migrate`, `user`, `keys`, `config`), and a CLI client
//! of the HTTP API (`login`, `systems`, `hostkeys`, `run`, `jobs`, `logs`, `audit`).
//!
//! Errors end the process with one line on standard error that says what happened and what to
//! do, and a non-zero exit code.

mod admin;
mod cli;
mod client;
mod config;
mod datadir;
mod logging;
mod open;
mod serve;
mod worker;

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use secrecy::SecretString;

use cli::{Cli, Command};
use config::Config;

/// The environment variable with the first admin's password (see `orca serve --help`).
const ADMIN_PASSWORD_ENV: &str = "ORCA_ADMIN_PASSWORD";

fn main() -> ExitCode {
    let admin_password = take_admin_password();
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Serve(_)
            | Command::Worker
            | Command::Migrate
            | Command::User(_)
            | Command::Keys(_)
    ) {
        // Every file these create (the SQLite database and its -wal/-shm files, the key ring,
        // the JWT secret...) is private to Orca's user. Commands of `local` systems inherit it.
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli, started, admin_password)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message());
            ExitCode::FAILURE
        }
    }
}

/// `ORCA_ADMIN_PASSWORD` (if set and not empty), removed from the process environment so that
/// nothing started later (threads, child processes, libraries reading the environment) sees it.
///
/// The kernel's copy of the initial environment (`/proc/<pid>/environ`, readable by root and by
/// Orca's own user) is not changed by this; `--admin-password-file` keeps the password out of
/// it (docs/security.md).
#[allow(unsafe_code)]
fn take_admin_password() -> Option<SecretString> {
    let value = std::env::var_os(ADMIN_PASSWORD_ENV)?;
    // SAFETY: `remove_var` must not race with another thread reading or writing the
    // environment. This runs first thing in `main`, a plain (not async) `fn main`, before the
    // tokio runtime or any other thread exists, so this thread is the only one.
    unsafe { std::env::remove_var(ADMIN_PASSWORD_ENV) };
    let value = value.into_string().ok()?;
    (!value.is_empty()).then(|| SecretString::from(value))
}

/// The configuration for verbs that use the database: file < `ORCA_*` < flags.
fn load_config(cli: &Cli) -> orca_core::Result<Config> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut cfg = Config::load(cli.config.as_deref(), &env)?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = Some(d.clone());
    }
    Ok(cfg)
}

async fn dispatch(
    cli: Cli,
    started: std::time::Instant,
    admin_password: Option<SecretString>,
) -> orca_core::Result<ExitCode> {
    let ok = Ok(ExitCode::SUCCESS);
    match &cli.command {
        Command::Serve(args) => {
            let mut cfg = load_config(&cli)?;
            if let Some(l) = args.listen {
                cfg.http.listen = l;
            }
            let admin_password =
                serve::AdminPassword::choose(args.admin_password_file.as_deref(), admin_password)?;
            logging::init(&cfg.logging)?;
            serve::run(cfg, args.no_engine, started, admin_password).await?;
            ok
        }
        Command::Worker => {
            let cfg = load_config(&cli)?;
            logging::init(&cfg.logging)?;
            worker::run(cfg).await?;
            ok
        }
        Command::Migrate => {
            let cfg = load_config(&cli)?;
            logging::init_quiet(&cfg.logging)?;
            admin::migrate(&cfg).await?;
            ok
        }
        Command::Config(c) => {
            let cfg = load_config(&cli)?;
            admin::config(&cfg, c);
            ok
        }
        Command::User(c) => {
            let cfg = load_config(&cli)?;
            logging::init_quiet(&cfg.logging)?;
            admin::user(&cfg, c).await?;
            ok
        }
        Command::Keys(c) => {
            let cfg = load_config(&cli)?;
            logging::init_quiet(&cfg.logging)?;
            admin::keys(&cfg, c).await?;
            ok
        }
        _ => client::dispatch(&cli).await,
    }
}
