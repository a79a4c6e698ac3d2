//! The [`Store`] implementation: each verb lives in the module of its area.

use std::time::Duration;

use orca_core::ids::{ExecutionId, JobId, SystemId, UserId};
use orca_core::model::{
    AuditFilter, AuditRecord, Execution, Finish, Grant, Health, HostKey, Job, JobFilter, Lease,
    OutputChunk, Page, SealedSecret, StatusCounts, System, SystemFilter, Timestamp, User,
};
use orca_core::{
    CancelReport, CancelTarget, Claim, ClaimRequest, Finished, HeartbeatReport, OutputBatch,
    Result, RevokeTokens, Store, StoreCapabilities, TokenRecord, async_trait,
};

use super::PostgresStore;

#[async_trait]
impl Store for PostgresStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities { multi_node: true }
    }

    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        self.create_system_(system, audit).await
    }
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        self.update_system_(system, audit).await
    }
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        self.delete_system_(id, audit).await
    }
    async fn get_system(&self, id: SystemId) -> Result<System> {
        self.get_system_(id).await
    }
    async fn find_system(&self, name: &str) -> Result<System> {
        self.find_system_(name).await
    }
    async fn list_systems(&self, filter: &SystemFilter, page: Page) -> Result<Vec<System>> {
        self.list_systems_(filter, page).await
    }
    async fn record_health(&self, id: SystemId, health: &Health) -> Result<()> {
        self.record_health_(id, health).await
    }
    async fn list_sealed_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>> {
        self.list_sealed_not_under_(key_id, limit).await
    }
    async fn reseal(&self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool> {
        self.reseal_(id, old, new).await
    }

    async fn list_host_keys(&self, system: SystemId) -> Result<Vec<HostKey>> {
        self.list_host_keys_(system).await
    }
    async fn pin_host_key_if_none(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>> {
        self.pin_host_key_if_none_(key, audit).await
    }
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        self.replace_host_keys_(system, keys, audit).await
    }

    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        self.create_job_(job, executions, audit).await
    }
    async fn get_job(&self, id: JobId) -> Result<Job> {
        self.get_job_(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        self.list_jobs_(filter, page).await
    }
    async fn job_counts(&self, id: JobId) -> Result<StatusCounts> {
        self.job_counts_(id).await
    }
    async fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        self.list_executions_(job, page).await
    }
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution> {
        self.get_execution_(id).await
    }
    async fn cancel(&self, target: CancelTarget, audit: &AuditRecord) -> Result<CancelReport> {
        self.cancel_(target, audit).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        self.claim_(request).await
    }
    async fn heartbeat(&self, leases: &[Lease], extend: Duration) -> Result<HeartbeatReport> {
        self.heartbeat_(leases, extend).await
    }
    async fn append_output(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>> {
        self.append_output_(batches).await
    }
    async fn finish(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>> {
        self.finish_(items).await
    }
    async fn rescue_expired(&self, limit: u32) -> Result<Vec<Execution>> {
        self.rescue_expired_(limit).await
    }
    async fn read_output(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        self.read_output_(id, from, limit).await
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        self.append_audit_(record).await
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        self.list_audit_(filter, page).await
    }

    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        self.create_user_(user, audit).await
    }
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        self.update_user_(user, audit).await
    }
    async fn get_user(&self, id: UserId) -> Result<User> {
        self.get_user_(id).await
    }
    async fn find_user(&self, username: &str) -> Result<User> {
        self.find_user_(username).await
    }
    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        self.list_users_(page).await
    }
    async fn list_grants(&self, user: UserId) -> Result<Vec<Grant>> {
        self.list_grants_(user).await
    }
    async fn set_grants(&self, user: UserId, grants: &[Grant], audit: &AuditRecord) -> Result<()> {
        self.set_grants_(user, grants, audit).await
    }
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()> {
        self.create_token_(token, audit).await
    }
    async fn find_token(&self, hash: &str) -> Result<TokenRecord> {
        self.find_token_(hash).await
    }
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool> {
        self.use_token_(id).await
    }
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64> {
        self.revoke_tokens_(which, audit).await
    }
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        self.list_tokens_(user).await
    }
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        self.rate_limit_hit_(key, window_start).await
    }
}
