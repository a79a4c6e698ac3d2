//! Opening an Orca from a path or URL for `Orca.open` / `AsyncOrca.open`. The store, the event
//! bus, the key-file rule, the connectors (local, SSH, WinRM) and the engine come from the
//! `orca` crate, the same as for the `orca` binary; what stays here is the bindings' own: the
//! acting principal and the `local` system of an engine.

use std::path::PathBuf;

use orca::model::Principal;
use orca::{Database, Error, OpenOptions, Orca, Result};

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
    let mut options = match req.location {
        Some(l) if !l.trim().is_empty() => OpenOptions::new(l),
        _ => OpenOptions::default_location(),
    }
    .engine(req.engine)
    .key_file_hint("keys=");
    if let Some(k) = req.keys {
        options = options.key_file(k);
    }
    if let Some(s) = req.schema {
        options = options.schema(s);
    }
    let db = Database::open(options).await?;
    let location = db.location().to_string();
    let orca = db.into_orca().await?;
    let principal = Principal::system(req.actor.trim());
    if req.engine {
        orca.ensure_local_system(&principal).await?;
    }
    Ok(Opened {
        orca,
        principal,
        engine: req.engine,
        location,
    })
}
