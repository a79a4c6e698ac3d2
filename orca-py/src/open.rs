//! Opening an Orca from a path or URL: store, bus, connectors, key ring and engine, wired the
//! way the `orca` binary's embedded mode does.

use std::path::PathBuf;
use std::sync::Arc;

use orca_connectors::local::{LocalConfig, LocalConnector};
use orca_connectors::ssh::{SshConfig, SshConnector};
use orca_core::location::DatabaseLocation;
use orca_core::model::Principal;
use orca_core::{Clock, Error, Orca, Result, SystemClock, keyfile};
use orca_store::postgres::{PgEventBus, PostgresOptions, PostgresStore};
use orca_store::sqlite::{SqliteOptions, SqliteStore};

/// What `Orca.open` was asked for.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    /// `None`, a path, `sqlite://…` or `postgres://…`.
    pub location: Option<String>,
    /// The actor named in the audit log.
    pub actor: String,
    /// Run the engine in this process.
    pub engine: bool,
    /// The key file (default: beside the database).
    pub keys: Option<PathBuf>,
    /// PostgreSQL schema.
    pub schema: Option<String>,
}

/// An open Orca and what the bindings need to know about it.
#[derive(Debug)]
pub struct Opened {
    /// The facade.
    pub orca: Orca,
    /// Who acts.
    pub principal: Principal,
    /// Whether this process runs the engine.
    pub engine: bool,
    /// Where the data is (password hidden).
    pub location: String,
}

/// Open the store and the facade, then start the engine if asked.
pub async fn open(req: OpenRequest) -> Result<Opened> {
    if req.actor.trim().is_empty() {
        return Err(Error::invalid(
            "actor is empty: give the name under which actions are audited",
        ));
    }
    let location = DatabaseLocation::parse_opt(req.location.as_deref())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut builder = Orca::builder().clock(clock.clone());
    let mut waker = None;
    match &location {
        DatabaseLocation::Sqlite(path) => {
            if req.schema.is_some() {
                return Err(Error::invalid(
                    "schema applies to PostgreSQL only; a SQLite database is one file",
                ));
            }
            let mut options = SqliteOptions::new(path);
            if !req.engine {
                options = options.client();
            }
            builder = builder.store(Arc::new(SqliteStore::open(options, clock).await?));
        }
        DatabaseLocation::Postgres(url) => {
            let mut options = PostgresOptions::new(url.clone());
            if let Some(s) = &req.schema {
                options = options.schema(s.clone());
            }
            let store = PostgresStore::connect(options, clock).await?;
            let bus = PgEventBus::new(&store).await?;
            if req.engine {
                waker = Some(store.work_waker().await?);
            }
            builder = builder.store(Arc::new(store)).bus(Arc::new(bus));
        }
    }
    let key_file = req.keys.clone().unwrap_or_else(|| location.key_file());
    let keyring = if req.engine {
        keyfile::load_or_create(&key_file)?
    } else {
        // A client never creates keys: it uses the engine's.
        keyfile::load(&key_file).map_err(|e| {
            if e.kind() == orca_core::ErrorKind::NotFound {
                Error::not_found(format!(
                    "the key file {} does not exist: open the database once as its engine \
                     (engine=True) to create it, or pass keys= the engine's key file",
                    key_file.display()
                ))
            } else {
                e
            }
        })?
    };
    let orca = builder
        .keyring(keyring)
        .connector(Arc::new(LocalConnector::new(LocalConfig::default())?))
        .connector(Arc::new(SshConnector::new(SshConfig::default())?))
        .build()?;
    let principal = Principal::system(req.actor.trim());
    if req.engine {
        orca.start().await?;
        if let Some(mut w) = waker {
            let o = orca.clone();
            tokio::spawn(async move {
                while w.notified().await {
                    orca_core::Executor::wake(o.engine());
                }
            });
        }
        orca.ensure_local_system(&principal).await?;
    }
    Ok(Opened {
        orca,
        principal,
        engine: req.engine,
        location: location.to_string(),
    })
}
