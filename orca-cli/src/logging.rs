//! Logs on standard error through `tracing`: human lines by default, JSON lines with
//! `logging.format = "json"`. `RUST_LOG` overrides `logging.level`.

use orca_core::{Error, Result};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};

/// Install the subscriber for a server process.
pub fn init(cfg: &LoggingConfig) -> Result<()> {
    install(cfg, &cfg.level)
}

/// Install the subscriber for a short admin verb: warnings and errors only, unless `RUST_LOG`.
pub fn init_quiet(cfg: &LoggingConfig) -> Result<()> {
    install(cfg, "warn")
}

fn install(cfg: &LoggingConfig, level: &str) -> Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v)
            .map_err(|e| Error::invalid(format!("RUST_LOG='{v}' is not a log filter: {e}")))?,
        _ => EnvFilter::try_new(level)
            .map_err(|e| Error::invalid(format!("logging.level '{level}': {e}")))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let r = match cfg.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    r.map_err(|e| Error::unexpected(format!("cannot install the logger: {e}")))
}
