//! The engine: the [`Executor`] implementation. It claims pending executions with a lease,
//! runs them through connectors within concurrency limits, streams their output to the store
//! and the event bus, heartbeats, retries with backoff, reaps expired leases, and shuts down
//! gracefully. It knows only the traits.

mod config;
mod health;
mod output;
mod run;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::EngineConfig;
pub use health::probe_target;

use crate::bus::{Event, EventBus};
use crate::clock::Clock;
use crate::connector::{Connector, HostKeyStore};
use crate::executor::{Executor, ShutdownReport};
use crate::ids::ExecutionId;
use crate::model::{Lease, SystemType};
use crate::store::{ClaimRequest, Store};
use crate::vault::KeyRing;
use crate::{Error, ErrorKind, Result};

/// The connectors an engine can use, chosen by system type.
#[derive(Debug, Clone, Default)]
pub struct ConnectorSet {
    connectors: Vec<Arc<dyn Connector>>,
}

impl ConnectorSet {
    /// Add a connector (a later one for the same type wins).
    pub fn add(&mut self, c: Arc<dyn Connector>) {
        self.connectors.insert(0, c);
    }
    /// The connector serving `t`.
    pub fn for_type(&self, t: SystemType) -> Option<&Arc<dyn Connector>> {
        self.connectors
            .iter()
            .find(|c| c.system_types().contains(&t))
    }
    /// `for_type`, or an `Unsupported` error that says what to do.
    pub fn require(&self, t: SystemType) -> Result<&Arc<dyn Connector>> {
        self.for_type(t).ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "no connector for {} systems is configured in this Orca",
                    t.as_str()
                ),
            )
        })
    }
}

/// Why a running execution was told to stop.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    None = 0,
    User = 1,
    Shutdown = 2,
    LeaseLost = 3,
}

pub(crate) struct Running {
    pub lease: Mutex<Lease>,
    pub cancel: CancellationToken,
    pub reason: AtomicU8,
}

impl Running {
    pub fn stop(&self, why: StopReason) {
        let _ = self
            .reason
            .compare_exchange(0, why as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.cancel.cancel();
    }
    pub fn reason(&self) -> StopReason {
        match self.reason.load(Ordering::SeqCst) {
            1 => StopReason::User,
            2 => StopReason::Shutdown,
            3 => StopReason::LeaseLost,
            _ => StopReason::None,
        }
    }
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub connectors: ConnectorSet,
    pub vault: Arc<KeyRing>,
    pub clock: Arc<dyn Clock>,
    pub host_keys: Arc<dyn HostKeyStore>,
    pub config: EngineConfig,
    pub running: Mutex<HashMap<ExecutionId, Arc<Running>>>,
    pub slots: Arc<Semaphore>,
    pub wake: Notify,
    pub stop_claiming: CancellationToken,
    pub stop_loops: CancellationToken,
    pub tasks: TaskTracker,
    pub writer: Mutex<Option<mpsc::Sender<WriteMsg>>>,
}

use writer::WriteMsg;

impl Inner {
    pub fn running(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, Arc<Running>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn writer(&self) -> Option<mpsc::Sender<WriteMsg>> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub fn stop(&self, id: ExecutionId, why: StopReason) {
        if let Some(r) = self.running().get(&id) {
            r.stop(why);
        }
    }
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    started: Arc<AtomicBool>,
    loops: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("worker", &self.inner.config.worker_name)
            .field("running", &self.inner.running().len())
            .finish()
    }
}

impl Engine {
    /// An engine over these parts. Nothing runs until [`Executor::start`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        connectors: ConnectorSet,
        vault: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        host_keys: Arc<dyn HostKeyStore>,
        config: EngineConfig,
    ) -> Result<Self> {
        config.validate()?;
        let slots = Arc::new(Semaphore::new(config.max_concurrency));
        Ok(Engine {
            inner: Arc::new(Inner {
                store,
                bus,
                connectors,
                vault,
                clock,
                host_keys,
                config,
                running: Mutex::new(HashMap::new()),
                slots,
                wake: Notify::new(),
                stop_claiming: CancellationToken::new(),
                stop_loops: CancellationToken::new(),
                tasks: TaskTracker::new(),
                writer: Mutex::new(None),
            }),
            started: Arc::new(AtomicBool::new(false)),
            loops: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// How many executions run on this node now.
    pub fn running_count(&self) -> usize {
        self.inner.running().len()
    }

    /// Probe one system now (decrypting its credential) and record the result.
    pub async fn probe(&self, system: &crate::model::System) -> Result<crate::model::Health> {
        health::probe_and_record(&self.inner, system).await
    }

    pub(crate) fn connectors(&self) -> &ConnectorSet {
        &self.inner.connectors
    }

    async fn claim_loop(inner: Arc<Inner>) {
        let cfg = &inner.config;
        loop {
            if inner.stop_claiming.is_cancelled() {
                break;
            }
            let free = inner.slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = inner.wake.notified() => {}
                    _ = inner.stop_claiming.cancelled() => break,
                }
                continue;
            }
            let want = (free as u32).min(cfg.claim_batch);
            let req = ClaimRequest {
                worker: cfg.worker_name.clone(),
                limit: want,
                lease_for: cfg.lease,
                per_system: cfg.per_system,
            };
            let claims = match inner.store.claim(&req).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming work failed");
                    tokio::select! {
                        _ = tokio::time::sleep(cfg.poll_interval) => {}
                        _ = inner.stop_claiming.cancelled() => break,
                    }
                    continue;
                }
            };
            let got = claims.len() as u32;
            let mut events = Vec::with_capacity(claims.len());
            for claim in claims {
                let Ok(permit) = inner.slots.clone().try_acquire_owned() else {
                    // Cannot happen: only this loop takes permits. Give the claim back by
                    // letting its lease expire would lose it, so run it anyway.
                    tracing::error!("no free slot for a claimed execution; running it anyway");
                    run::spawn(&inner, claim, None);
                    continue;
                };
                events.push(Event::Execution {
                    execution_id: claim.execution.id,
                    job_id: claim.execution.job_id,
                    system_id: claim.execution.system_id,
                    status: claim.execution.status,
                });
                run::spawn(&inner, claim, Some(permit));
            }
            if !events.is_empty() {
                let _ = inner.bus.publish(events).await;
            }
            if got < want {
                tokio::select! {
                    _ = inner.wake.notified() => {}
                    _ = tokio::time::sleep(cfg.poll_interval) => {}
                    _ = inner.stop_claiming.cancelled() => break,
                }
            }
        }
    }

    async fn heartbeat_loop(inner: Arc<Inner>) {
        let cfg = &inner.config;
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(cfg.heartbeat_interval) => {}
                _ = inner.stop_loops.cancelled() => break,
            }
            let entries: Vec<(ExecutionId, Arc<Running>)> = inner
                .running()
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            if entries.is_empty() {
                last_ok = tokio::time::Instant::now();
                continue;
            }
            let leases: Vec<Lease> = entries
                .iter()
                .map(|(_, r)| r.lease.lock().unwrap_or_else(|e| e.into_inner()).clone())
                .collect();
            match inner.store.heartbeat(&leases, cfg.lease).await {
                Ok(rep) => {
                    last_ok = tokio::time::Instant::now();
                    let running = inner.running();
                    for l in rep.renewed {
                        if let Some(r) = running.get(&l.execution_id) {
                            *r.lease.lock().unwrap_or_else(|e| e.into_inner()) = l;
                        }
                    }
                    for id in rep.lost {
                        if let Some(r) = running.get(&id) {
                            tracing::warn!(execution_id = %id, "lease lost; stopping the execution");
                            r.stop(StopReason::LeaseLost);
                        }
                    }
                    for id in rep.cancel_requested {
                        if let Some(r) = running.get(&id) {
                            r.stop(StopReason::User);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "heartbeat failed");
                    if last_ok.elapsed() >= cfg.lease {
                        tracing::error!(
                            "no heartbeat reached the store for a whole lease; stopping all local work"
                        );
                        for (_, r) in entries {
                            r.stop(StopReason::LeaseLost);
                        }
                    }
                }
            }
        }
    }

    async fn reaper_loop(inner: Arc<Inner>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(inner.config.reaper_interval) => {}
                _ = inner.stop_loops.cancelled() => break,
            }
            match inner.store.rescue_expired(1000).await {
                Ok(rescued) if !rescued.is_empty() => {
                    tracing::warn!(
                        count = rescued.len(),
                        "rescued executions whose lease expired"
                    );
                    let mut events = Vec::new();
                    let mut jobs = std::collections::HashSet::new();
                    for e in &rescued {
                        events.push(Event::Execution {
                            execution_id: e.id,
                            job_id: e.job_id,
                            system_id: e.system_id,
                            status: e.status,
                        });
                        jobs.insert(e.job_id);
                    }
                    for j in jobs {
                        if let Ok(job) = inner.store.get_job(j).await {
                            events.push(Event::Job {
                                job_id: j,
                                status: job.status,
                            });
                        }
                    }
                    let _ = inner.bus.publish(events).await;
                    inner.wake.notify_one();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaper failed"),
            }
        }
    }
}

#[async_trait]
impl Executor for Engine {
    async fn start(&self) -> Result<()> {
        if self.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let inner = &self.inner;
        let (tx, rx) = mpsc::channel(inner.config.write_batch * 4);
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        let weak = Arc::downgrade(inner);
        let w = writer::Writer {
            store: inner.store.clone(),
            bus: inner.bus.clone(),
            max_batch: inner.config.write_batch,
            on_lost: Box::new(move |id| {
                if let Some(i) = weak.upgrade() {
                    i.stop(id, StopReason::LeaseLost);
                }
            }),
        };
        let mut loops = self.loops.lock().unwrap_or_else(|e| e.into_inner());
        loops.push(tokio::spawn(w.run(rx)));
        loops.push(tokio::spawn(Self::claim_loop(inner.clone())));
        loops.push(tokio::spawn(Self::heartbeat_loop(inner.clone())));
        loops.push(tokio::spawn(Self::reaper_loop(inner.clone())));
        if let Some(every) = inner.config.health_interval {
            loops.push(tokio::spawn(health::monitor_loop(inner.clone(), every)));
        }
        tracing::info!(worker = %inner.config.worker_name, "engine started");
        Ok(())
    }

    fn wake(&self) {
        self.inner.wake.notify_one();
    }

    async fn cancel(&self, executions: &[ExecutionId]) {
        for id in executions {
            self.inner.stop(*id, StopReason::User);
        }
    }

    async fn shutdown(&self, grace: Duration) -> Result<ShutdownReport> {
        let inner = &self.inner;
        inner.stop_claiming.cancel();
        inner.tasks.close();
        let before = inner.running().len() as u64;
        if tokio::time::timeout(grace, inner.tasks.wait())
            .await
            .is_err()
        {
            let left: Vec<Arc<Running>> = inner.running().values().cloned().collect();
            tracing::warn!(
                count = left.len(),
                "grace period over; stopping running executions"
            );
            for r in left {
                r.stop(StopReason::Shutdown);
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), inner.tasks.wait()).await;
        }
        let abandoned: Vec<ExecutionId> = inner.running().keys().copied().collect();
        // Let the writer drain, then stop the loops.
        inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        inner.stop_loops.cancel();
        let handles: Vec<_> = self
            .loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
        let drained = before.saturating_sub(abandoned.len() as u64);
        tracing::info!(drained, abandoned = abandoned.len(), "engine stopped");
        Ok(ShutdownReport { drained, abandoned })
    }
}
