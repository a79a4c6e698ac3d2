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
pub mod error;
pub mod executor;
pub mod ids;
pub mod memory;
pub mod model;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use bus::{Event, EventBus, LocalBus};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connector::{
    CommandSpec, Connector, ConnectorCapabilities, DynConnector, HostKeyStore, OutputReceiver,
    OutputSink, ProbeReport, RunEnd, RunOutcome, Target,
};
pub use error::{Error, ErrorContext, ErrorKind, Result, Retry};
pub use executor::{Executor, ShutdownReport};
pub use store::{
    CancelReport, CancelTarget, Claim, ClaimRequest, DynStore, Finished, HeartbeatReport,
    OutputBatch, RevokeTokens, Store, StoreCapabilities, StoreExt, TokenKind, TokenRecord,
};

/// Re-exported so backends and frontends use the same versions.
pub use async_trait::async_trait;
pub use tokio_util::sync::CancellationToken;
