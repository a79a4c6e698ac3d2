//! The CLI client of the HTTP API: `login`, `logout`, `systems`, `hostkeys`, `run`, `jobs`,
//! `logs`, `audit`.
//!
//! The server is `--server` (or `ORCA_SERVER`), else the one of the last `orca login`, else
//! `http://127.0.0.1:8080`. The bearer is `ORCA_TOKEN` (an API or access token) if set, else the
//! session stored by `orca login` (refreshed automatically when its access token expires).

mod http;
mod resources;
mod run;
mod session;
mod table;
mod ws;

use std::process::ExitCode;

use orca_core::Result;

pub use http::Client;

use crate::cli::{Cli, Command, OutputFormat};

/// Run a client verb.
pub async fn dispatch(cli: &Cli) -> Result<ExitCode> {
    let json = cli.output == OutputFormat::Json;
    match &cli.command {
        Command::Login(a) => {
            session::login(cli.server.as_deref(), &a.username, a.password_stdin).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Logout => {
            session::logout(cli.server.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        other => {
            let client = Client::from_env(cli.server.as_deref())?;
            match other {
                Command::Systems(c) => resources::systems(&client, c, json).await,
                Command::Hostkeys(c) => resources::hostkeys(&client, c, json).await,
                Command::Jobs(c) => resources::jobs(&client, c, json).await,
                Command::Logs(a) => resources::logs(&client, a).await,
                Command::Audit(a) => resources::audit(&client, a, json).await,
                Command::Run(a) => run::run(&client, a, json).await,
                _ => Err(orca_core::Error::unexpected("not a client verb")),
            }
        }
    }
}
