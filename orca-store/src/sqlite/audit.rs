//! The audit trail.

use orca_core::model::{AuditFilter, AuditRecord, Page};
use orca_core::{AuditStore, Result, async_trait};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use super::error::db_err;
use super::rows::{self, us};
use super::tx;

pub(crate) async fn append_audit(s: &SqliteStore, r: &AuditRecord) -> Result<()> {
    let mut conn = s.writer.acquire().await.map_err(db_err)?;
    tx::audit(&mut conn, r).await
}

pub(crate) async fn list_audit(
    s: &SqliteStore,
    f: &AuditFilter,
    page: Page,
) -> Result<Vec<AuditRecord>> {
    let mut q =
        QueryBuilder::<Sqlite>::new(format!("SELECT {} FROM audit WHERE 1", rows::AUDIT_COLS));
    if let Some(v) = &f.actor {
        q.push(" AND actor = ").push_bind(v.clone());
    }
    if let Some(v) = &f.resource_type {
        q.push(" AND resource_type = ").push_bind(v.clone());
    }
    if let Some(v) = &f.resource_id {
        q.push(" AND resource_id = ").push_bind(v.clone());
    }
    if let Some(v) = &f.action {
        q.push(" AND action = ").push_bind(v.clone());
    }
    if let Some(t) = f.since {
        q.push(" AND at >= ").push_bind(us(t));
    }
    if let Some(t) = f.until {
        q.push(" AND at < ").push_bind(us(t));
    }
    q.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(i64::from(page.limit));
    q.push(" OFFSET ").push_bind(rows::i(page.offset));
    let found = q.build().fetch_all(&s.reader).await.map_err(db_err)?;
    found.iter().map(rows::audit).collect()
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        append_audit(self, record).await
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        list_audit(self, filter, page).await
    }
}
