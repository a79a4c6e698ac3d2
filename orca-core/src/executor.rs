//! The Executor seam: turns submitted jobs into finished executions.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::Result;
use crate::ids::ExecutionId;

/// How a shutdown ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Executions that finished during the grace period.
    pub drained: u64,
    /// Executions still running when the grace period ended (their leases expire and any node's
    /// reaper ends them as `lost`).
    pub abandoned: Vec<ExecutionId>,
}

/// Claims work and runs it.
///
/// # Contract
/// - After `start`, pending executions are claimed (within the concurrency limits) and run
///   until `shutdown`.
/// - `wake` hints that work was submitted; claiming also happens on a slow poll.
/// - `cancel` stops the given running executions held by this executor (others are ignored).
/// - `shutdown` stops claiming, lets running executions finish within `grace`, then stops them.
#[async_trait]
pub trait Executor: Debug + Send + Sync + 'static {
    /// Start the loops (idempotent).
    async fn start(&self) -> Result<()>;
    /// Hint that work is available.
    fn wake(&self);
    /// Stop running executions held here.
    async fn cancel(&self, executions: &[ExecutionId]);
    /// Graceful stop.
    async fn shutdown(&self, grace: Duration) -> Result<ShutdownReport>;
}
