//! Quickstart: open Orca on an embedded SQLite database in a temporary directory, register the
//! `local` system, run a command there, print its output live and the final status.
//!
//! ```text
//! cargo run --example quickstart -- 'uname -a; echo hello from orca'
//! ```
//! Exits 0 only if the job completed.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use orca::prelude::*;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("quickstart: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if command.trim().is_empty() || command == "--help" || command == "-h" {
        eprintln!("usage: cargo run --example quickstart -- 'COMMAND'");
        eprintln!("example: cargo run --example quickstart -- 'uname -a; echo hello'");
        return Ok(false);
    }
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("orca.db");
    // The store comes from the location (a path: SQLite), the connectors from the `orca`
    // crate's features; the engine is started. A throw-away database needs no key file.
    let orca =
        Orca::open_with(OpenOptions::new(db.to_string_lossy()).keyring(KeyRing::ephemeral()))
            .await?;

    let me = Principal::system("quickstart");
    orca.ensure_local_system(&me).await?;
    let submitted = orca
        .submit(
            &me,
            JobSpec {
                name: None,
                command: command.clone(),
                targets: Targets {
                    systems: vec!["local".into()],
                    tags: vec![],
                },
                options: JobOptions::default(),
            },
        )
        .await?;
    eprintln!(
        "job {} submitted on {} ({})",
        submitted.job.id,
        db.display(),
        command
    );

    let mut events = orca.watch_job(&me, submitted.job.id).await?;
    while let Some(ev) = events.next().await {
        match ev? {
            WatchEvent::Output(chunk) => {
                let mut out: Box<dyn Write> = match chunk.stream {
                    Stream::Stdout => Box::new(std::io::stdout()),
                    Stream::Stderr => Box::new(std::io::stderr()),
                };
                out.write_all(&chunk.data)?;
                out.flush()?;
            }
            WatchEvent::Execution { status, .. } if status.is_terminal() => {
                eprintln!("execution {}", status.as_str());
            }
            _ => {}
        }
    }
    let job = orca.get_job(&me, submitted.job.id).await?;
    let execs = orca.job_executions(&me, job.id, Default::default()).await?;
    for e in &execs {
        let code = e
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into());
        let why = e
            .error
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        eprintln!("local: {} exit={code}{why}", e.status.as_str());
    }
    eprintln!("job {}: {}", job.id, job.status.as_str());
    orca.shutdown(Duration::from_secs(5)).await?;
    Ok(job.status == JobStatus::Completed)
}
