//! Users, grants, tokens and rate limits.

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStore;
use super::state::{self, State};
use crate::ids::UserId;
use crate::model::{AuditRecord, Grant, Page, Timestamp, User};
use crate::{Error, Result, RevokeTokens, TokenRecord, UserStore};

impl State {
    /// User names are unique without regard to case.
    fn check_username(&self, name: &str, id: UserId) -> Result<()> {
        let lower = name.to_lowercase();
        if self
            .users
            .values()
            .any(|u| u.id != id && u.username.to_lowercase() == lower)
        {
            return Err(Error::already_exists(format!(
                "a user named '{name}' (in any letter case) exists already; choose another name"
            )));
        }
        Ok(())
    }

    pub fn create_user(&mut self, u: &User, audit: &AuditRecord) -> Result<()> {
        self.check_audit(audit)?;
        if self.users.contains_key(&u.id) {
            return Err(Error::already_exists(format!(
                "user {} exists already",
                u.id
            )));
        }
        self.check_username(&u.username, u.id)?;
        self.user_names.insert(u.username.clone(), u.id);
        self.users.insert(u.id, u.clone());
        self.push_audit(audit);
        Ok(())
    }

    pub fn update_user(&mut self, u: &User, audit: &AuditRecord) -> Result<()> {
        self.check_audit(audit)?;
        let old = self.user(u.id)?.username.clone();
        self.check_username(&u.username, u.id)?;
        self.user_names.remove(&old);
        self.user_names.insert(u.username.clone(), u.id);
        self.users.insert(u.id, u.clone());
        self.push_audit(audit);
        Ok(())
    }

    pub fn set_grants(
        &mut self,
        user: UserId,
        grants: &[Grant],
        audit: &AuditRecord,
    ) -> Result<()> {
        self.check_audit(audit)?;
        self.user(user)?;
        if let Some(g) = grants.iter().find(|g| g.user_id != user) {
            return Err(Error::invalid(format!(
                "a grant for user {} was given to set the grants of user {user}",
                g.user_id
            )));
        }
        self.grants.insert(user, grants.to_vec());
        self.push_audit(audit);
        Ok(())
    }

    pub fn create_token(&mut self, t: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()> {
        if let Some(a) = audit {
            self.check_audit(a)?;
        }
        self.user(t.user_id)?;
        if self.tokens.contains_key(&t.id) || self.token_hashes.contains_key(&t.hash) {
            return Err(Error::already_exists(
                "a token with this id or hash exists already; generate a new secret",
            ));
        }
        self.token_hashes.insert(t.hash.clone(), t.id);
        self.tokens.insert(t.id, t.clone());
        if let Some(a) = audit {
            self.push_audit(a);
        }
        Ok(())
    }

    pub fn find_token(&self, hash: &str) -> Result<TokenRecord> {
        self.token_hashes
            .get(hash)
            .and_then(|id| self.tokens.get(id))
            .cloned()
            .ok_or_else(|| Error::not_found("no such token"))
    }

    pub fn use_token(&mut self, id: Uuid, now: Timestamp) -> bool {
        match self.tokens.get_mut(&id) {
            Some(t) if t.used_at.is_none() && t.revoked_at.is_none() => {
                t.used_at = Some(now);
                true
            }
            _ => false,
        }
    }

    pub fn revoke_tokens(
        &mut self,
        which: RevokeTokens,
        audit: Option<&AuditRecord>,
        now: Timestamp,
    ) -> Result<u64> {
        if let Some(a) = audit {
            self.check_audit(a)?;
        }
        let mut n = 0;
        for t in self.tokens.values_mut() {
            let hit = match which {
                RevokeTokens::Id(id) => t.id == id,
                RevokeTokens::Family(f) => t.family == Some(f),
                RevokeTokens::User(u) => t.user_id == u,
            };
            if hit && t.revoked_at.is_none() {
                t.revoked_at = Some(now);
                n += 1;
            }
        }
        if let Some(a) = audit {
            self.push_audit(a);
        }
        Ok(n)
    }

    pub fn list_tokens(&self, user: UserId) -> Vec<TokenRecord> {
        let mut v: Vec<TokenRecord> = self
            .tokens
            .values()
            .filter(|t| t.user_id == user)
            .cloned()
            .collect();
        v.sort_by_key(|t| (t.created_at, t.id));
        v
    }

    pub fn rate_limit_hit(&mut self, key: &str, window_start: Timestamp) -> u64 {
        // Forget windows that ended long ago so the map stays small.
        if self.rate.len() > 10_000 {
            let horizon = window_start - chrono::TimeDelta::hours(1);
            self.rate.retain(|(_, w), _| *w >= horizon);
        }
        let n = self
            .rate
            .entry((key.to_string(), window_start))
            .or_default();
        *n += 1;
        *n
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        self.lock().create_user(user, audit)
    }
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        self.lock().update_user(user, audit)
    }
    async fn get_user(&self, id: UserId) -> Result<User> {
        self.lock().user(id).cloned()
    }
    async fn find_user(&self, username: &str) -> Result<User> {
        let s = self.lock();
        s.user_names
            .get(username)
            .and_then(|id| s.users.get(id))
            .cloned()
            .ok_or_else(|| crate::Error::not_found(format!("no user named '{username}'")))
    }
    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        let s = self.lock();
        Ok(state::paginate(
            s.user_names
                .values()
                .filter_map(|id| s.users.get(id))
                .cloned(),
            page,
        ))
    }
    async fn list_grants(&self, user: UserId) -> Result<Vec<Grant>> {
        Ok(self.lock().grants.get(&user).cloned().unwrap_or_default())
    }
    async fn set_grants(&self, user: UserId, grants: &[Grant], audit: &AuditRecord) -> Result<()> {
        self.lock().set_grants(user, grants, audit)
    }
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()> {
        self.lock().create_token(token, audit)
    }
    async fn find_token(&self, hash: &str) -> Result<TokenRecord> {
        self.lock().find_token(hash)
    }
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool> {
        let now = self.now();
        Ok(self.lock().use_token(id, now))
    }
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64> {
        let now = self.now();
        self.lock().revoke_tokens(which, audit, now)
    }
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        Ok(self.lock().list_tokens(user))
    }
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        Ok(self.lock().rate_limit_hit(key, window_start))
    }
}
