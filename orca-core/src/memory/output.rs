//! Reading output.

use async_trait::async_trait;

use super::MemoryStore;
use super::state::State;
use crate::ids::ExecutionId;
use crate::model::OutputChunk;
use crate::{OutputStore, Result};

impl State {
    pub fn read_output(&self, id: ExecutionId, from: u64, limit: u32) -> Result<Vec<OutputChunk>> {
        let entry = self.exec(id)?;
        let start = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(entry.output.len());
        Ok(entry.output[start..]
            .iter()
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl OutputStore for MemoryStore {
    async fn read_output(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        self.lock().read_output(id, from, limit)
    }
}
