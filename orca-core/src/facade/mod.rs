//! The facade: one entry point with every operation frontends need. Each mutating operation
//! takes the acting [`Principal`], asks the policy, and writes its audit record in the same
//! store transaction as the change.

mod hostkeys;
mod jobs;
mod systems;
mod users;
mod watch;

use std::sync::Arc;
use std::time::Duration;

pub use hostkeys::StoreHostKeys;
pub use jobs::{JobSummary, Submitted};
pub use systems::ReencryptReport;
pub use users::UserPatch;
pub use watch::{WatchEvent, WatchStream};

use crate::bus::{EventBus, LocalBus};
use crate::clock::{Clock, SystemClock};
use crate::connector::Connector;
use crate::engine::{ConnectorSet, Engine, EngineConfig};
use crate::executor::{Executor, ShutdownReport};
use crate::model::{AuditOutcome, AuditRecord, Principal};
use crate::policy::{self, Action, Decision};
use crate::store::Store;
use crate::vault::KeyRing;
use crate::{Error, Result};

/// Builds an [`Orca`].
#[derive(Debug, Default)]
pub struct OrcaBuilder {
    store: Option<Arc<dyn Store>>,
    bus: Option<Arc<dyn EventBus>>,
    connectors: ConnectorSet,
    keyring: Option<KeyRing>,
    clock: Option<Arc<dyn Clock>>,
    engine: EngineConfig,
}

impl OrcaBuilder {
    /// The store (required).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }
    /// The event bus (default: in-process).
    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }
    /// Add a connector.
    pub fn connector(mut self, c: Arc<dyn Connector>) -> Self {
        self.connectors.add(c);
        self
    }
    /// The credential key ring (required to store credentials).
    pub fn keyring(mut self, k: KeyRing) -> Self {
        self.keyring = Some(k);
        self
    }
    /// The clock (default: wall clock). Use the same clock as the store.
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = Some(c);
        self
    }
    /// Engine settings.
    pub fn engine_config(mut self, c: EngineConfig) -> Self {
        self.engine = c;
        self
    }
    /// Build. The engine does not run until [`Orca::start`].
    pub fn build(self) -> Result<Orca> {
        let store = self
            .store
            .ok_or_else(|| Error::invalid("Orca::builder() needs a store: call .store(..)"))?;
        let bus = self.bus.unwrap_or_else(|| Arc::new(LocalBus::default()));
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let vault = Arc::new(self.keyring.unwrap_or_else(KeyRing::ephemeral));
        let host_keys: Arc<dyn crate::HostKeyStore> =
            Arc::new(StoreHostKeys::new(store.clone(), clock.clone()));
        let engine = Engine::new(
            store.clone(),
            bus.clone(),
            self.connectors,
            vault.clone(),
            clock.clone(),
            host_keys,
            self.engine,
        )?;
        Ok(Orca {
            store,
            bus,
            clock,
            vault,
            engine,
        })
    }
}

/// Orca: systems, jobs, executions, output, audit and users, over a Store, connectors and an
/// engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Orca {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    vault: Arc<KeyRing>,
    engine: Engine,
}

impl Orca {
    /// Start building.
    pub fn builder() -> OrcaBuilder {
        OrcaBuilder::default()
    }

    /// Start the engine (claiming, heartbeats, reaper, health monitor) on this node.
    pub async fn start(&self) -> Result<()> {
        self.engine.start().await
    }

    /// Stop claiming, let running executions finish within `grace`, then stop.
    pub async fn shutdown(&self, grace: Duration) -> Result<ShutdownReport> {
        self.engine.shutdown(grace).await
    }

    /// The store (for frontends' own records such as tokens).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    /// The event bus.
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }
    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// An audit record stamped now.
    pub(crate) fn audit(
        &self,
        p: &Principal,
        resource_type: &str,
        resource_id: Option<String>,
        action: &str,
        details: serde_json::Value,
    ) -> AuditRecord {
        AuditRecord::new(
            self.clock.now(),
            p,
            resource_type,
            resource_id,
            action,
            details,
        )
    }

    /// Ask the policy; on a refusal of a mutating action, write a `denied` audit record.
    pub(crate) async fn authorize(
        &self,
        p: &Principal,
        action: Action,
        system: Option<&crate::model::System>,
        resource: (&str, Option<String>),
    ) -> Result<()> {
        let decision = policy::decide(p, action, system);
        if decision != Decision::Allow && action.is_mutating() {
            let rec = self
                .audit(
                    p,
                    resource.0,
                    resource.1,
                    action.as_str(),
                    serde_json::json!({}),
                )
                .with_outcome(AuditOutcome::Denied);
            if let Err(e) = self.store.append_audit(&rec).await {
                tracing::warn!(error = %e, "could not write a denied audit record");
            }
        }
        policy::check(p, action, system)
    }
}
