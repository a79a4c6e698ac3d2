//! # orca
//!
//! The one crate to add to embed Orca, a job orchestrator that runs commands on fleets of
//! machines and keeps every job, execution, output line and user action in a database.
//!
//! It re-exports the whole API of `orca-core` (the [`Orca`] facade, the [`model`], the errors)
//! and opens an Orca from a database location, with the store chosen by the location and the
//! connectors by this crate's features:
//!
//! - a plain path, or `sqlite://PATH`: SQLite (an existing directory means `<dir>/orca.db`);
//! - `postgres://USER@HOST/DB`: PostgreSQL, with its event bus between nodes;
//! - the key file that encrypts credentials goes beside a SQLite database (`keys.json`), or in
//!   `./orca-data` for PostgreSQL; [`OpenOptions`] chooses another, a key ring, the engine
//!   settings and the connectors' settings.
//!
//! The `orca` binary and the Python bindings open their databases through this crate.
//!
//! ## Example
//!
//! ```
//! use orca::prelude::*;
//!
//! # #[tokio::main] async fn main() -> orca::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # std::env::set_current_dir(dir.path()).unwrap();
//! let orca = Orca::open("sqlite://orca-data/orca.db").await?; // engine started
//! let me = Principal::system("my-script");
//! orca.ensure_local_system(&me).await?;
//! let job = orca.submit(&me, JobSpec {
//!     name: None,
//!     command: "echo hello".into(),
//!     targets: Targets { systems: vec!["local".into()], tags: vec![] },
//!     options: JobOptions::default(),
//! }).await?;
//! let job = orca.wait_job(&me, job.job.id).await?;   // or watch_job: replay, then live
//! assert_eq!(job.status, JobStatus::Completed);
//! orca.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//! - `sqlite` (default): the SQLite store.
//! - `local` (default): the `local` connector (commands on this machine).
//! - `postgres`: the PostgreSQL store and event bus.
//! - `ssh`: the SSH connector.
//! - `winrm`: the WinRM connector (Windows systems).
//!
//! Opening a location whose store this build lacks fails with [`ErrorKind::Unsupported`].

mod database;
pub mod keys;
mod options;
mod register;

pub use orca_core::*;

pub use database::Database;
pub use options::OpenOptions;

/// The store implementations (`orca-store`), for building an [`Orca`] by hand.
pub use orca_store as stores;

/// The connector implementations (`orca-connectors`), for building an [`Orca`] by hand.
pub use orca_connectors as connectors;

use std::future::Future;

/// Open an Orca on `location` (a path, `sqlite://PATH` or `postgres://…`) with the default
/// options, and start its engine. Same as [`OpenOptions::new`]`(location).open()`.
pub async fn open(location: &str) -> Result<Orca> {
    OpenOptions::new(location).open().await
}

/// `Orca::open(location)` and `Orca::open_with(options)`: [`open`] and [`OpenOptions::open`]
/// as associated functions of [`Orca`] (which lives in `orca-core`, hence a trait). Bring it
/// in with `use orca::prelude::*`.
pub trait OpenExt: Sized {
    /// Open an Orca on `location` with the default options and start its engine.
    fn open(location: &str) -> impl Future<Output = Result<Self>> + Send;
    /// Open an Orca with `options`.
    fn open_with(options: OpenOptions) -> impl Future<Output = Result<Self>> + Send;
}

impl OpenExt for Orca {
    fn open(location: &str) -> impl Future<Output = Result<Self>> + Send {
        OpenOptions::new(location).open()
    }

    fn open_with(options: OpenOptions) -> impl Future<Output = Result<Self>> + Send {
        options.open()
    }
}

/// What most programs need: `use orca::prelude::*;`.
pub mod prelude {
    pub use crate::model::{
        Execution, ExecutionStatus, Job, JobOptions, JobSpec, JobStatus, NewSystem, Principal,
        Stream, SystemType, Targets,
    };
    pub use crate::{Error, ErrorKind, KeyRing, OpenExt, OpenOptions, Orca, Result, WatchEvent};
}
