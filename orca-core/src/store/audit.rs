//! The audit trail.

use async_trait::async_trait;

use crate::Result;
use crate::model::{AuditFilter, AuditRecord, Page};

/// The audit trail.
///
/// # Contract
/// - A record that goes with a mutation is written by that mutation, in its transaction (every
///   area method that takes an [`AuditRecord`]); [`Self::append_audit`] writes one on its own.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append an audit record on its own.
    async fn append_audit(&self, record: &AuditRecord) -> Result<()>;
    /// Audit records matching `filter`, newest first.
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>>;
}
