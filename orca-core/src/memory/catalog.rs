//! Systems, host keys, audit, users, grants, tokens and rate limits.

use uuid::Uuid;

use super::state::{State, paginate};
use crate::ids::{SystemId, UserId};
use crate::model::{
    AuditFilter, AuditRecord, Grant, Health, HostKey, Page, SealedSecret, System, SystemFilter,
    Timestamp, User,
};
use crate::{Error, Result, RevokeTokens, TokenRecord};

impl State {
    fn check_system_name(&self, name: &str, id: SystemId) -> Result<()> {
        match self.system_names.get(name) {
            Some(other) if *other != id => Err(Error::already_exists(format!(
                "a system named '{name}' exists already; choose another name"
            ))),
            _ => Ok(()),
        }
    }

    pub fn create_system(&mut self, s: &System, audit: &AuditRecord) -> Result<()> {
        self.check_audit(audit)?;
        if self.systems.contains_key(&s.id) {
            return Err(Error::already_exists(format!(
                "system {} exists already",
                s.id
            )));
        }
        self.check_system_name(&s.name, s.id)?;
        self.system_names.insert(s.name.clone(), s.id);
        self.systems.insert(s.id, s.clone());
        self.push_audit(audit);
        Ok(())
    }

    pub fn update_system(&mut self, s: &System, audit: &AuditRecord) -> Result<()> {
        self.check_audit(audit)?;
        let old_name = self.system(s.id)?.name.clone();
        self.check_system_name(&s.name, s.id)?;
        self.system_names.remove(&old_name);
        self.system_names.insert(s.name.clone(), s.id);
        self.systems.insert(s.id, s.clone());
        self.push_audit(audit);
        Ok(())
    }

    pub fn delete_system(&mut self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        self.check_audit(audit)?;
        let name = self.system(id)?.name.clone();
        if let Some(n) = self.unfinished_per_system.get(&id) {
            return Err(Error::conflict(format!(
                "system '{name}' has {n} pending or running executions; cancel them or wait \
                 for them to end before deleting it"
            ))
            .with_system(id));
        }
        self.systems.remove(&id);
        self.system_names.remove(&name);
        self.host_keys.remove(&id);
        self.push_audit(audit);
        Ok(())
    }

    pub fn list_systems(&self, filter: &SystemFilter, page: Page) -> Vec<System> {
        let it = self
            .system_names
            .values()
            .filter_map(|id| self.systems.get(id))
            .filter(|s| filter.matches(s))
            .cloned();
        paginate(it, page)
    }

    pub fn record_health(&mut self, id: SystemId, health: &Health) -> Result<()> {
        self.system(id)?;
        if let Some(s) = self.systems.get_mut(&id) {
            s.health = health.clone();
        }
        Ok(())
    }

    pub fn list_sealed_not_under(&self, key_id: &str, limit: u32) -> Vec<(SystemId, SealedSecret)> {
        let mut v: Vec<(SystemId, SealedSecret)> = self
            .systems
            .values()
            .filter_map(|s| s.credential.as_ref().map(|c| (s.id, c)))
            .filter(|(_, c)| c.key_id() != Some(key_id))
            .map(|(id, c)| (id, c.clone()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v.truncate(limit as usize);
        v
    }

    pub fn reseal(&mut self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool> {
        self.system(id)?;
        match self.systems.get_mut(&id) {
            Some(s) if s.credential.as_ref() == Some(old) => {
                s.credential = Some(new.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn check_keys(system: SystemId, keys: &[HostKey]) -> Result<()> {
        if let Some(k) = keys.iter().find(|k| k.system_id != system) {
            return Err(Error::invalid(format!(
                "host key {} belongs to system {}, not {system}",
                k.fingerprint, k.system_id
            )));
        }
        Ok(())
    }

    pub fn pin_host_key_if_none(
        &mut self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>> {
        self.system(key.system_id)?;
        let none = self
            .host_keys
            .get(&key.system_id)
            .is_none_or(|v| v.is_empty());
        if none {
            self.check_audit(audit)?;
            self.host_keys.insert(key.system_id, vec![key.clone()]);
            self.push_audit(audit);
        }
        Ok(self
            .host_keys
            .get(&key.system_id)
            .cloned()
            .unwrap_or_default())
    }

    pub fn replace_host_keys(
        &mut self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        self.check_audit(audit)?;
        self.system(system)?;
        Self::check_keys(system, keys)?;
        self.host_keys.insert(system, keys.to_vec());
        self.push_audit(audit);
        Ok(())
    }

    pub fn list_audit(&self, filter: &AuditFilter, page: Page) -> Vec<AuditRecord> {
        let mut v: Vec<&AuditRecord> = self.audit.iter().filter(|r| filter.matches(r)).collect();
        v.sort_by_key(|r| std::cmp::Reverse((r.at, r.id)));
        paginate(v.into_iter().cloned(), page)
    }

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
