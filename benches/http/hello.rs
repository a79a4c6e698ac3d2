//! The ceiling of the HTTP benchmark: a bare poem hello-world on the same runtime (Tokio,
//! multi-threaded, one worker per core) as the Orca server, measured by `benches/http/run.sh`
//! in the same run as `/healthz` and the API.
//!
//! ```text
//! cargo run --release -p orca-benches --example orca-http-bench-hello -- --listen 127.0.0.1:18180
//! ```
//! Prints `READY http://ADDR` once listening; stops on Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;
use poem::listener::{Listener, TcpListener};
use poem::{Route, Server, get, handler};

/// A bare poem server answering `GET /` with `hello`.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:18180")]
    listen: SocketAddr,
}

#[handler]
fn hello() -> &'static str {
    "hello"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let app = Route::new().at("/", get(hello));
    let acceptor = TcpListener::bind(args.listen).into_acceptor().await?;
    println!("READY http://{}", args.listen);
    std::io::stdout().flush()?;
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, stop_signal(), None)
        .await?;
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
