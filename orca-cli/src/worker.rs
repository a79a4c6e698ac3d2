//! `orca worker`: the engine without HTTP, to scale out on PostgreSQL.

use orca_core::location::DatabaseLocation;
use orca_core::{Error, Result};

use crate::config::Config;
use crate::serve;

/// Run the engine until SIGTERM or Ctrl-C.
pub async fn run(cfg: Config) -> Result<()> {
    if let DatabaseLocation::Sqlite(path) = cfg.database()? {
        return Err(Error::invalid(format!(
            "orca worker scales out on PostgreSQL, and the database is SQLite ({}); on SQLite \
             `orca serve` runs the engine itself. Set database.url (or ORCA_DATABASE_URL) to a \
             postgres:// URL shared by every node",
            path.display()
        )));
    }
    let node = serve::node(&cfg, true, true).await?;
    node.orca.start().await?;
    println!(
        "Orca worker '{}' is running on {} (Ctrl-C or SIGTERM to stop)",
        cfg.execution.worker_name,
        node.opened.location()
    );
    tracing::info!(worker = %cfg.execution.worker_name, "worker started");
    serve::shutdown_signal().await;
    serve::stop(&node.orca, &cfg, true).await;
    node.opened.close().await;
    Ok(())
}
