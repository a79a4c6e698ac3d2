//! The audit trail.

use async_trait::async_trait;

use super::MemoryStore;
use super::state::{State, paginate};
use crate::model::{AuditFilter, AuditRecord, Page};
use crate::{AuditStore, Result};

impl State {
    pub fn list_audit(&self, filter: &AuditFilter, page: Page) -> Vec<AuditRecord> {
        let mut v: Vec<&AuditRecord> = self.audit.iter().filter(|r| filter.matches(r)).collect();
        v.sort_by_key(|r| std::cmp::Reverse((r.at, r.id)));
        paginate(v.into_iter().cloned(), page)
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        let mut s = self.lock();
        s.check_audit(record)?;
        s.push_audit(record);
        Ok(())
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        Ok(self.lock().list_audit(filter, page))
    }
}
