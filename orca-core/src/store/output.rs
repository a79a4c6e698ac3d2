//! Reading the output of executions (it is written under a lease: [`super::QueueStore`]).

use async_trait::async_trait;

use crate::Result;
use crate::ids::ExecutionId;
use crate::model::OutputChunk;

/// Reading the output of executions (it is written under a lease:
/// [`super::QueueStore::append_output`]).
///
/// # Contract
/// - Output chunks of an execution are kept in `seq` order; `read_output` returns them in order.
#[async_trait]
pub trait OutputStore: Send + Sync {
    /// Up to `limit` chunks of an execution with `seq >= from`, in order.
    async fn read_output(&self, id: ExecutionId, from: u64, limit: u32)
    -> Result<Vec<OutputChunk>>;
}
