//! Run one command on a Windows host over WinRM, print its output live and exit with its exit
//! code. Uses Orca's WinRM connector directly (no database, no engine).
//!
//! ```text
//! export ORCA_WINRM_PASSWORD='...'
//! cargo run --example winrm_run -- --endpoint http://win01:5985/wsman --user 'CORP\ops' \
//!     --auth ntlm -- ipconfig /all
//! cargo run --example winrm_run -- --endpoint https://win01:5986/wsman --user ops --auth basic \
//!     --ca corp-ca.pem --powershell -- 'Get-Service WinRM; exit 3'
//! ```
//!
//! NTLM over `http://` seals every message (the Windows default); Basic needs `https://`
//! unless `--allow-unencrypted` is given (then the password travels in clear, and it says so).
//! The exit status is the remote exit code when it fits (0-255); otherwise, and on connection
//! or authentication errors, 255 with the reason on stderr; 130 after Ctrl-C.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use orca_connectors::winrm::WinRmConnector;
use orca_core::ids::SystemId;
use orca_core::model::{Credential, Health, HostKeyPolicy, Shell, Stream, System, SystemType};
use orca_core::{CancellationToken, CommandSpec, Connector, OutputSink, RunEnd, Target};
use secrecy::SecretString;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Auth {
    /// NTLMv2; messages are sealed over http://.
    Ntlm,
    /// HTTP Basic; needs https:// (or --allow-unencrypted).
    Basic,
}

/// Run a command on a Windows host over WinRM.
#[derive(Debug, Parser)]
#[command(name = "winrm_run")]
struct Args {
    /// The WinRM endpoint, e.g. http://host:5985/wsman or https://host:5986/wsman.
    #[arg(long)]
    endpoint: String,
    /// USER, DOMAIN\USER or USER@DOMAIN.
    #[arg(long)]
    user: String,
    /// Authentication.
    #[arg(long, value_enum, default_value = "ntlm")]
    auth: Auth,
    /// The environment variable that holds the password.
    #[arg(long, default_value = "ORCA_WINRM_PASSWORD")]
    password_env: String,
    /// Trust only the CA certificates in this PEM file (https).
    #[arg(long, conflicts_with = "thumbprint")]
    ca: Option<String>,
    /// Accept only the server certificate with this SHA-1 or SHA-256 thumbprint (https).
    #[arg(long)]
    thumbprint: Option<String>,
    /// Allow Basic authentication over plain http:// (password and output in clear).
    #[arg(long)]
    allow_unencrypted: bool,
    /// Run the command with PowerShell (-EncodedCommand) instead of cmd.
    #[arg(long)]
    powershell: bool,
    /// Stop the command (Signal terminate) after this many seconds.
    #[arg(long)]
    timeout: Option<f64>,
    /// The command line.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Host, port and options from the endpoint URL.
fn parse_endpoint(url: &str) -> Result<(String, u16, BTreeMap<String, String>), String> {
    let bad = || format!("--endpoint '{url}': expected http(s)://HOST[:PORT][/PATH]");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(bad()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/wsman"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None if https => 5986,
        None => 5985,
    };
    let mut options = BTreeMap::new();
    options.insert("scheme".into(), if https { "https" } else { "http" }.into());
    options.insert("path".into(), path.into());
    Ok((host.into(), port, options))
}

fn target(args: &Args) -> Result<Target, String> {
    let (host, port, mut options) = parse_endpoint(&args.endpoint)?;
    let transport = match args.auth {
        Auth::Ntlm => "ntlm",
        Auth::Basic => "basic",
    };
    options.insert("transport".into(), transport.into());
    if let Some(ca) = &args.ca {
        options.insert("ca_file".into(), ca.clone());
    }
    if let Some(t) = &args.thumbprint {
        options.insert("thumbprint".into(), t.clone());
    }
    if args.allow_unencrypted {
        options.insert("allow_unencrypted".into(), "true".into());
    }
    let password = std::env::var(&args.password_env).map_err(|_| {
        format!(
            "set the password in the environment variable {} (or name another with --password-env)",
            args.password_env
        )
    })?;
    Ok(Target {
        system: System {
            id: SystemId::new(),
            name: host.clone(),
            hostname: host,
            port,
            system_type: SystemType::Windows,
            username: args.user.clone(),
            credential: None,
            tags: vec![],
            active: true,
            health: Health::default(),
            host_key_policy: HostKeyPolicy::Strict,
            options,
            created_at: Default::default(),
            updated_at: Default::default(),
        },
        credential: Credential::Password(SecretString::from(password)),
        execution_id: None,
        host_keys: None,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(&args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("winrm_run: {e}");
            ExitCode::from(255)
        }
    }
}

async fn run(args: &Args) -> Result<ExitCode, String> {
    let target = target(args)?;
    let mut spec = CommandSpec::new(args.command.join(" "));
    spec.shell = if args.powershell {
        Shell::Powershell
    } else {
        Shell::Cmd
    };
    if let Some(t) = args.timeout {
        let t = Duration::try_from_secs_f64(t).map_err(|e| format!("--timeout {t}: {e}"))?;
        spec = spec.with_timeout(t);
    }
    let connector = WinRmConnector::new();
    let (sink, mut rx) = OutputSink::channel(64);
    let printer = tokio::spawn(async move {
        while let Some((stream, data)) = rx.recv().await {
            let _ = match stream {
                Stream::Stdout => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&data).and_then(|_| o.flush())
                }
                Stream::Stderr => {
                    let mut e = std::io::stderr().lock();
                    e.write_all(&data).and_then(|_| e.flush())
                }
            };
        }
    });
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let outcome = connector.run(&target, &spec, sink, cancel).await;
    let _ = printer.await;
    // Delete the shell now rather than leave it to the server's idle timeout.
    connector.close().await;
    let outcome = outcome.map_err(|e| e.to_string())?;
    Ok(match (outcome.end, outcome.exit_code) {
        (RunEnd::Exited, Some(code)) if (0..=255).contains(&code) => ExitCode::from(code as u8),
        (RunEnd::Exited, Some(code)) => {
            eprintln!(
                "winrm_run: remote exit code {code} ({:#010X}) does not fit an exit status; exiting 255",
                code as u32
            );
            ExitCode::from(255)
        }
        (RunEnd::Exited, None) => {
            eprintln!("winrm_run: the command ended without an exit code");
            ExitCode::from(255)
        }
        (end, _) => {
            let confirmed = match outcome.kill_confirmed {
                Some(true) => "the command was terminated",
                _ => "the command may still be running",
            };
            eprintln!("winrm_run: {end:?}; {confirmed}");
            ExitCode::from(if end == RunEnd::Cancelled { 130 } else { 124 })
        }
    })
}
