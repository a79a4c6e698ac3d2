//! `impl Store for SqliteStore`: each verb lives in the module of its area.

use std::time::Duration;

use async_trait::async_trait;
use orca_core::ids::{ExecutionId, JobId, SystemId, UserId};
use orca_core::model::{
    AuditFilter, AuditRecord, Execution, Finish, Grant, Health, HostKey, Job, JobFilter, Lease,
    OutputChunk, Page, SealedSecret, StatusCounts, System, SystemFilter, Timestamp, User,
};
use orca_core::{
    CancelReport, CancelTarget, Claim, ClaimRequest, Finished, HeartbeatReport, OutputBatch,
    Result, RevokeTokens, Store, StoreCapabilities, TokenRecord,
};

use super::{SqliteStore, jobs, leases, queue, queue_write, systems, users};

#[async_trait]
impl Store for SqliteStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities { multi_node: false }
    }

    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        systems::create(self, system, audit).await
    }
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        systems::update(self, system, audit).await
    }
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        systems::delete(self, id, audit).await
    }
    async fn get_system(&self, id: SystemId) -> Result<System> {
        systems::get(self, id).await
    }
    async fn find_system(&self, name: &str) -> Result<System> {
        systems::find(self, name).await
    }
    async fn list_systems(&self, filter: &SystemFilter, page: Page) -> Result<Vec<System>> {
        systems::list(self, filter, page).await
    }
    async fn record_health(&self, id: SystemId, health: &Health) -> Result<()> {
        systems::record_health(self, id, health).await
    }
    async fn list_sealed_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>> {
        systems::list_sealed_not_under(self, key_id, limit).await
    }
    async fn reseal(&self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool> {
        systems::reseal(self, id, old, new).await
    }

    async fn list_host_keys(&self, system: SystemId) -> Result<Vec<HostKey>> {
        systems::list_host_keys(self, system).await
    }
    async fn pin_host_key_if_none(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>> {
        systems::pin_host_key_if_none(self, key, audit).await
    }
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        systems::replace_host_keys(self, system, keys, audit).await
    }

    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        jobs::create(self, job, executions, audit).await
    }
    async fn get_job(&self, id: JobId) -> Result<Job> {
        jobs::get(self, id).await
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        jobs::list(self, filter, page).await
    }
    async fn job_counts(&self, id: JobId) -> Result<StatusCounts> {
        jobs::counts(self, id).await
    }
    async fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        jobs::list_executions(self, job, page).await
    }
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution> {
        jobs::get_execution(self, id).await
    }
    async fn cancel(&self, target: CancelTarget, audit: &AuditRecord) -> Result<CancelReport> {
        jobs::cancel(self, target, audit).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        queue::claim(self, request).await
    }
    async fn heartbeat(&self, leases: &[Lease], extend: Duration) -> Result<HeartbeatReport> {
        leases::heartbeat(self, leases, extend).await
    }
    async fn append_output(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>> {
        queue_write::append_output(self, batches).await
    }
    async fn finish(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>> {
        queue_write::finish(self, items).await
    }
    async fn rescue_expired(&self, limit: u32) -> Result<Vec<Execution>> {
        leases::rescue_expired(self, limit).await
    }
    async fn read_output(
        &self,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        jobs::read_output(self, id, from, limit).await
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        users::append_audit(self, record).await
    }
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<Vec<AuditRecord>> {
        users::list_audit(self, filter, page).await
    }

    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        users::create_user(self, user, audit).await
    }
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        users::update_user(self, user, audit).await
    }
    async fn get_user(&self, id: UserId) -> Result<User> {
        users::get_user(self, id).await
    }
    async fn find_user(&self, username: &str) -> Result<User> {
        users::find_user(self, username).await
    }
    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        users::list_users(self, page).await
    }
    async fn list_grants(&self, user: UserId) -> Result<Vec<Grant>> {
        users::list_grants(self, user).await
    }
    async fn set_grants(&self, user: UserId, grants: &[Grant], audit: &AuditRecord) -> Result<()> {
        users::set_grants(self, user, grants, audit).await
    }
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()> {
        users::create_token(self, token, audit).await
    }
    async fn find_token(&self, hash: &str) -> Result<TokenRecord> {
        users::find_token(self, hash).await
    }
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool> {
        users::use_token(self, id).await
    }
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64> {
        users::revoke_tokens(self, which, audit).await
    }
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        users::list_tokens(self, user).await
    }
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        users::rate_limit_hit(self, key, window_start).await
    }
}
