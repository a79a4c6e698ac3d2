//! Reading output.

use orca_core::ids::ExecutionId;
use orca_core::model::OutputChunk;
use orca_core::{OutputStore, Result, async_trait};

use super::SqliteStore;
use super::error::db_err;
use super::jobs::execution_missing;
use super::rows::{self, i};

pub(crate) async fn read_output(
    s: &SqliteStore,
    id: ExecutionId,
    from: u64,
    limit: u32,
) -> Result<Vec<OutputChunk>> {
    let mut conn = s.reader.acquire().await.map_err(db_err)?;
    let found = sqlx::query(
        "SELECT execution_id, seq, stream, data, at FROM output_chunks \
         WHERE execution_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
    )
    .bind(id.0)
    .bind(i(from))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    if found.is_empty() {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM executions WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        exists.ok_or_else(|| execution_missing(id))?;
    }
    found.iter().map(rows::chunk).collect()
}

#[async_trait]
impl OutputStore for SqliteStore {
    async fn read_output(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        read_output(self, id, from, limit).await
    }
}
