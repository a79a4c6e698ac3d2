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
mod audit_log;
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

use cli::{Cli, Command};
use config::Config;

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let cli = Cli::parse();
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
    match runtime.block_on(dispatch(cli, started)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message());
            ExitCode::FAILURE
        }
    }
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

async fn dispatch(cli: Cli, started: std::time::Instant) -> orca_core::Result<ExitCode> {
    let ok = Ok(ExitCode::SUCCESS);
    match &cli.command {
        Command::Serve(args) => {
            let mut cfg = load_config(&cli)?;
            if let Some(l) = args.listen {
                cfg.http.listen = l;
            }
            logging::init(&cfg.logging)?;
            serve::run(cfg, args.no_engine, started).await?;
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
