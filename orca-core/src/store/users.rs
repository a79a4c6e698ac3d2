//! Users, their grants, their tokens, and rate limits shared by all nodes.

use async_trait::async_trait;

use super::{RevokeTokens, TokenRecord};
use crate::Result;
use crate::ids::UserId;
use crate::model::{AuditRecord, Grant, Page, Timestamp, User};

/// Users, their grants, their tokens, and rate limits shared by all nodes.
///
/// # Contract
/// - A user name and a token hash are unique (`AlreadyExists`); a missing user or token
///   answers `NotFound`.
/// - Every mutation that takes an [`AuditRecord`] writes it in the same transaction: both or
///   neither.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Insert a user.
    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()>;
    /// Replace a user's fields (by id).
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()>;
    /// A user by id.
    async fn get_user(&self, id: UserId) -> Result<User>;
    /// A user by name.
    async fn find_user(&self, username: &str) -> Result<User>;
    /// Users by name.
    async fn list_users(&self, page: Page) -> Result<Vec<User>>;
    /// A user's grants.
    async fn list_grants(&self, user: UserId) -> Result<Vec<Grant>>;
    /// Replace a user's grants.
    async fn set_grants(&self, user: UserId, grants: &[Grant], audit: &AuditRecord) -> Result<()>;

    // ----- tokens -----
    /// Store a token.
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()>;
    /// A token by its hash.
    async fn find_token(&self, hash: &str) -> Result<TokenRecord>;
    /// Mark a token used if it is neither used nor revoked (single use). Returns whether it did.
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool>;
    /// Revoke tokens; returns how many were newly revoked.
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64>;
    /// A user's tokens.
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>>;

    // ----- rate limits -----
    /// Count one hit for `key` in the fixed window starting at `window_start`; returns the
    /// count so far in that window (for rate limits shared by all nodes).
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64>;
}
