//! Systems, their sealed credentials and their pinned host keys.

use async_trait::async_trait;

use crate::Result;
use crate::ids::SystemId;
use crate::model::{AuditRecord, Health, HostKey, Page, SealedSecret, System, SystemFilter};

/// Systems, their sealed credentials and their pinned host keys.
///
/// # Contract
/// - A system name is unique (`AlreadyExists`); a missing system answers `NotFound`.
/// - Every mutation that takes an [`AuditRecord`] writes it in the same transaction: both or
///   neither ([`Self::pin_host_key_if_none`] writes it only if it pinned).
#[async_trait]
pub trait SystemStore: Send + Sync {
    /// Insert a system.
    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()>;
    /// Replace a system's fields (by id; name included).
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()>;
    /// Delete a system and its host keys. `Conflict` while it has pending or running
    /// executions; past executions keep its id.
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()>;
    /// A system by id.
    async fn get_system(&self, id: SystemId) -> Result<System>;
    /// A system by name.
    async fn find_system(&self, name: &str) -> Result<System>;
    /// Systems matching `filter`, by name.
    async fn list_systems(&self, filter: &SystemFilter, page: Page) -> Result<Vec<System>>;
    /// Record a probe result.
    async fn record_health(&self, id: SystemId, health: &Health) -> Result<()>;
    /// Up to `limit` systems whose credential is sealed under a key other than `key_id`.
    async fn list_sealed_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>>;
    /// Replace a sealed credential if it is still `old` (compare-and-swap). Returns whether it did.
    async fn reseal(&self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool>;

    // ----- host keys -----
    /// Pinned keys of a system.
    async fn list_host_keys(&self, system: SystemId) -> Result<Vec<HostKey>>;
    /// Pin `key` if the system has no key pinned yet. Returns the keys pinned afterwards
    /// (exactly one winner when callers race). The audit record is written only if it pinned.
    async fn pin_host_key_if_none(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>>;
    /// Replace all pinned keys of a system with `keys`.
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()>;
}
