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
//! ## Features
//! - `testkit`: conformance suites every Store and Connector must pass, and test helpers.

pub mod bus;
pub mod clock;
pub mod connector;
pub mod engine;
pub mod error;
pub mod executor;
mod facade;
pub mod ids;
pub mod mask;
pub mod memory;
pub mod model;
pub mod policy;
pub mod scripted;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod vault;

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
    Orca, OrcaBuilder, ReencryptReport, StoreHostKeys, Submitted, UserPatch, WatchEvent,
    WatchStream,
};
pub use memory::MemoryStore;
pub use store::{
    CancelReport, CancelTarget, Claim, ClaimRequest, DynStore, Finished, HeartbeatReport,
    OutputBatch, RevokeTokens, Store, StoreCapabilities, StoreExt, TokenKind, TokenRecord,
};
pub use vault::KeyRing;

/// Re-exported so backends and frontends use the same versions.
pub use async_trait::async_trait;
pub use tokio_util::sync::CancellationToken;
