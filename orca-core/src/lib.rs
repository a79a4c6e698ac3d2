//! # orca-core
//!
//! The heart of Orca, a job orchestrator that runs commands on fleets of machines and keeps
//! every job, execution, output line and user action in a database.
//!
//! This crate holds the model, the seams every backend implements ([`Store`], [`Connector`],
//! [`Executor`], [`EventBus`]), the engine, the credential vault, the access policy and the
//! [`Orca`] facade that frontends call. It has no database, network or Python code of its own:
//! `orca-store` and `orca-connectors` provide the backends.
//!
//! ## Example
//!
//! Run a command on a system with the in-memory store and the scripted connector (real
//! programs use `orca-store`'s SQLite or PostgreSQL store and `orca-connectors`):
//!
//! ```
//! use std::sync::Arc;
//! use orca_core::model::{JobOptions, JobSpec, JobStatus, NewSystem, Principal, SystemType, Targets};
//! use orca_core::{scripted::ScriptedConnector, KeyRing, MemoryStore, Orca, SystemClock};
//!
//! # #[tokio::main] async fn main() -> orca_core::Result<()> {
//! let clock = Arc::new(SystemClock);
//! let orca = Orca::builder()
//!     .store(Arc::new(MemoryStore::new(clock.clone())))
//!     .connector(Arc::new(ScriptedConnector::new()))
//!     .keyring(KeyRing::ephemeral())
//!     .clock(clock)
//!     .build()?;
//! orca.start().await?;
//! let me = Principal::system("docs");
//! orca.add_system(&me, NewSystem {
//!     name: "web1".into(),
//!     system_type: Some(SystemType::Linux),
//!     username: "deploy".into(),
//!     tags: vec!["web".into()],
//!     ..Default::default()
//! }).await?;
//! let job = orca.submit(&me, JobSpec {
//!     name: None,
//!     command: "echo hello".into(),
//!     targets: Targets { systems: vec![], tags: vec!["web".into()] },
//!     options: JobOptions::default(),
//! }).await?;
//! let job = orca.wait_job(&me, job.job.id).await?;
//! assert_eq!(job.status, JobStatus::Completed);
//! orca.shutdown(std::time::Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//! - `testkit`: conformance suites every Store and Connector must pass, and test helpers.

pub mod actor;
pub mod auth;
pub mod bus;
pub mod clock;
pub mod connector;
pub mod engine;
pub mod error;
pub mod executor;
mod facade;
pub mod ids;
pub mod keyfile;
pub mod location;
pub mod mask;
pub mod memory;
pub mod model;
pub mod policy;
pub mod report;
pub mod scripted;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod text;
pub mod vault;

pub use actor::{Actor, AsActor, Ctx};
pub use bus::{Event, EventBus, LocalBus};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connector::{
    CommandSpec, Connector, ConnectorCapabilities, DynConnector, HostKeyStore, OutputReceiver,
    OutputSink, ProbeReport, RunEnd, RunOutcome, Target,
};
pub use engine::{ConnectorSet, Engine, EngineConfig};
pub use error::{Error, ErrorContext, ErrorKind, Result, Retry};
pub use executor::{Executor, ShutdownReport};
pub use facade::{
    AuthEpoch, JobSummary, Orca, OrcaBuilder, ReencryptReport, Session, StoreHostKeys, Submitted,
    TicketCredential, UserPatch, WatchEvent, WatchStream, created_via,
};
pub use memory::MemoryStore;
pub use store::{
    AuditStore, CancelReport, CancelTarget, Claim, ClaimRequest, DynStore, Finished,
    HeartbeatReport, JobStore, OutputBatch, OutputStore, QueueStore, RevokeTokens, Store,
    StoreCapabilities, StoreExt, SystemStore, TokenKind, TokenRecord, UserStore,
};
pub use vault::KeyRing;

/// Re-exported so backends and frontends use the same versions.
pub use async_trait::async_trait;
pub use tokio_util::sync::CancellationToken;
