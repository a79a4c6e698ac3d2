//! The facade: one entry point with every operation frontends need. Each operation takes who
//! acts and where from (an [`Actor`], or a bare [`Principal`]), asks the policy, and writes
//! its audit record (with the actor's request context) in the same store transaction as the
//! change; refusals of mutating actions are audited too. Changes of users, grants and tokens
//! are announced once, here ([`Orca::auth_epoch`], [`crate::Event::AuthChanged`]).

mod auth;
mod hostkeys;
mod jobs;
mod systems;
mod users;
mod watch;

use std::sync::Arc;
use std::time::Duration;

pub use auth::{AuthEpoch, Session, TicketCredential, created_via};
pub use hostkeys::StoreHostKeys;
pub use jobs::{JobSummary, Submitted};
pub use systems::ReencryptReport;
pub use users::UserPatch;
pub use watch::{WatchEvent, WatchStream};

use crate::actor::Actor;
use crate::bus::{EventBus, LocalBus};
use crate::clock::{Clock, SystemClock};
use crate::connector::Connector;
use crate::engine::{ConnectorSet, Engine, EngineConfig};
use crate::executor::{Executor, ShutdownReport};
use crate::model::{AuditOutcome, AuditRecord};
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
    audit_log: bool,
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
    /// Also write every audit record the facade stores to the log (target `orca::audit`, level
    /// info). The database keeps the audit trail either way; records never hold secrets.
    pub fn audit_log(mut self, on: bool) -> Self {
        self.audit_log = on;
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
            auth_epoch: Arc::default(),
            audit_log: self.audit_log,
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
    auth_epoch: Arc<AuthEpoch>,
    audit_log: bool,
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

    /// The store underneath, with no policy check, no audit record and no announcement of
    /// changes: for tests, benchmarks and store tooling only. Frontends go through the
    /// facade's operations (a test of the `orca` crate fails if one calls this).
    pub fn raw_store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    /// Whether the store answers (a cheap read), for readiness probes.
    pub async fn ready(&self) -> Result<()> {
        self.store
            .list_systems(
                &crate::model::SystemFilter::default(),
                crate::model::Page {
                    offset: 0,
                    limit: 1,
                },
            )
            .await
            .map(|_| ())
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

    /// An audit record stamped now, with the actor's request context in its details
    /// (`request_id`, `client_address`, `user_agent`).
    pub(crate) fn audit(
        &self,
        p: &Actor,
        resource_type: &str,
        resource_id: Option<String>,
        action: &str,
        details: serde_json::Value,
    ) -> AuditRecord {
        let mut rec = AuditRecord::new(
            self.clock.now(),
            &p.principal,
            resource_type,
            resource_id,
            action,
            details,
        );
        stamp(&mut rec, &p.ctx);
        rec
    }

    /// After a store write that carried `record` for `actor`: on success, count it for the
    /// actor's context and log it (with `audit_log`). Returns `r`.
    pub(crate) fn wrote<T>(&self, actor: &Actor, record: &AuditRecord, r: Result<T>) -> Result<T> {
        if r.is_ok() {
            actor.ctx.count_audit();
            if self.audit_log {
                log_audit(record);
            }
        }
        r
    }

    /// Append `record` on its own (for `actor`'s context).
    pub(crate) async fn append_audit(&self, actor: &Actor, record: &AuditRecord) -> Result<()> {
        let r = self.store.append_audit(record).await;
        self.wrote(actor, record, r)
    }

    /// Ask the policy; on a refusal of a mutating action, write a `denied` audit record.
    pub(crate) async fn authorize(
        &self,
        p: &Actor,
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
            if let Err(e) = self.append_audit(p, &rec).await {
                tracing::warn!(error = %e, "could not write a denied audit record");
            }
        }
        policy::check(p, action, system)
    }
}

/// Add the request context to a record's details.
fn stamp(rec: &mut AuditRecord, ctx: &crate::actor::Ctx) {
    if ctx.is_empty() {
        return;
    }
    let mut details = match rec.details.take() {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => serde_json::Map::new(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("details".into(), other);
            m
        }
    };
    for (key, value) in [
        ("request_id", &ctx.request_id),
        ("client_address", &ctx.client),
        ("user_agent", &ctx.user_agent),
    ] {
        if let Some(v) = value {
            details.insert(key.into(), v.clone().into());
        }
    }
    rec.details = serde_json::Value::Object(details);
}

/// Write an audit record to the log (target `orca::audit`).
fn log_audit(r: &AuditRecord) {
    tracing::info!(
        target: "orca::audit",
        audit_id = %r.id,
        actor = %r.actor,
        resource_type = %r.resource_type,
        resource_id = r.resource_id.as_deref().unwrap_or(""),
        action = %r.action,
        outcome = r.outcome.as_str(),
        details = %r.details,
        "audit"
    );
}
