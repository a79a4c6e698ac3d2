//! Runs the WinRM test server on loopback, for cross-checks with independent clients
//! (pywinrm, pypsrp). Prints one JSON line with the endpoint (and, for HTTPS, the CA file and
//! thumbprints), then serves until stdin closes or it is killed.
//!
//! ```text
//! winrm-testserver [--https] [--basic] [--allow-unencrypted] [--port N] [--user U] [--password P] [--ca-out FILE]
//! ```

use std::time::Duration;

use orca_connectors::winrm::testserver::{TestServer, TestServerConfig};
use tokio::io::AsyncReadExt;

fn usage() -> ! {
    eprintln!(
        "usage: winrm-testserver [--https] [--basic] [--allow-unencrypted] [--port N] [--user U] [--password P] [--ca-out FILE] [--idle-secs N]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut cfg = TestServerConfig::default();
    let mut ca_out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--https" => cfg.https = true,
            "--basic" => cfg.allow_basic = true,
            "--allow-unencrypted" => cfg.allow_unencrypted = true,
            "--port" => cfg
                .bind
                .set_port(value().parse().unwrap_or_else(|_| usage())),
            "--user" => cfg.user = value(),
            "--password" => cfg.password = value(),
            "--ca-out" => ca_out = Some(value()),
            "--idle-secs" => {
                cfg.shell_idle_timeout =
                    Duration::from_secs(value().parse().unwrap_or_else(|_| usage()))
            }
            _ => usage(),
        }
    }
    let server = match TestServer::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("winrm-testserver: cannot start: {e}");
            std::process::exit(1)
        }
    };
    let mut line = format!(
        "{{\"endpoint\":\"{}\",\"port\":{}",
        server.endpoint(),
        server.addr().port()
    );
    if let Some(tls) = server.tls() {
        if let Some(path) = &ca_out {
            if let Err(e) = std::fs::write(path, &tls.ca_pem) {
                eprintln!("winrm-testserver: cannot write {path}: {e}");
                std::process::exit(1)
            }
            line.push_str(&format!(",\"ca_file\":\"{path}\""));
        }
        line.push_str(&format!(
            ",\"sha1\":\"{}\",\"sha256\":\"{}\"",
            tls.sha1, tls.sha256
        ));
    }
    line.push('}');
    println!("{line}");
    // Serve until stdin reaches its end (the parent went away) or a signal ends the process.
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    server.shutdown();
}
