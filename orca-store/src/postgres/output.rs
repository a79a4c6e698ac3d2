//! Reading output.

use orca_core::ids::ExecutionId;
use orca_core::model::OutputChunk;
use orca_core::{OutputStore, Result, async_trait};

use super::PostgresStore;
use super::error::db;
use super::rows;

impl PostgresStore {
    pub(crate) async fn read_output_(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        let rows = sqlx::query(
            "SELECT execution_id, seq, stream, data, at FROM output_chunks
              WHERE execution_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.0)
        .bind(rows::i64_of(from, "seq")?)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db("reading output"))?;
        if rows.is_empty() {
            self.get_execution_(id).await?;
        }
        rows.iter().map(rows::chunk).collect()
    }
}

#[async_trait]
impl OutputStore for PostgresStore {
    async fn read_output(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        self.read_output_(id, from, limit).await
    }
}
