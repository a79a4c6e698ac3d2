//! The audit trail.

use orca_core::model::{AuditFilter, AuditRecord, Page};
use orca_core::{AuditStore, Result, async_trait};

use super::error::db;
use super::rows::{self, audit_cols};
use super::{PostgresStore, insert_audit};

impl PostgresStore {
    pub(crate) async fn append_audit_(&self, r: &AuditRecord) -> Result<()> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(db("writing the audit record"))?;
        insert_audit(&mut conn, r).await
    }

    pub(crate) async fn list_audit_(
        &self,
        f: &AuditFilter,
        page: Page,
    ) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_cols!(),
            " FROM audit
             WHERE ($1::text IS NULL OR actor = $1)
               AND ($2::text IS NULL OR resource_type = $2)
               AND ($3::text IS NULL OR resource_id = $3)
               AND ($4::text IS NULL OR action = $4)
               AND ($5::timestamptz IS NULL OR at >= $5)
               AND ($6::timestamptz IS NULL OR at < $6)
             ORDER BY at DESC, id DESC OFFSET $7 LIMIT $8"
        ))
        .bind(&f.actor)
        .bind(&f.resource_type)
        .bind(&f.resource_id)
        .bind(&f.action)
        .bind(f.since)
        .bind(f.until)
        .bind(rows::i64_of(page.offset, "page offset")?)
        .bind(i64::from(page.limit))
        .fetch_all(self.pool())
        .await
        .map_err(db("listing audit records"))?;
        rows.iter().map(rows::audit).collect()
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        self.append_audit_(record).await
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        self.list_audit_(filter, page).await
    }
}
