//! Users, grants, principals and the audit log.

use super::Orca;
use crate::actor::{Actor, AsActor};
use crate::auth::{hash_password_async, verify_password_async};
use crate::ids::UserId;
use crate::model::{
    AuditFilter, AuditOutcome, AuditRecord, Grant, NewUser, Page, Principal, Role, Scope, User,
};
use crate::policy::{self, Action};
use crate::{Error, Result};
use secrecy::SecretString;

/// A partial update of a user; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New role.
    pub role: Option<Role>,
    /// Enable or disable.
    pub active: Option<bool>,
    /// New password hash (computed by the frontend's hasher).
    pub password_hash: Option<String>,
}

fn validate_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "user name '{name}' is invalid: use 1-64 letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

impl Orca {
    /// Create a user.
    pub async fn create_user(&self, p: &(impl AsActor + ?Sized), new: NewUser) -> Result<User> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        self.authorize(p, Action::UserManage, None, ("user", None))
            .await?;
        validate_username(&new.username)?;
        let now = self.clock.now();
        let user = User {
            id: UserId::new(),
            username: new.username,
            role: new.role,
            password_hash: new.password_hash,
            active: true,
            created_at: now,
            updated_at: now,
        };
        let audit = self.audit(
            p,
            "user",
            Some(user.id.to_string()),
            "create",
            serde_json::json!({"username": user.username, "role": user.role.as_str()}),
        );
        let r = self.store.create_user(&user, &audit).await;
        self.wrote(p, &audit, r)?;
        Ok(user)
    }

    /// Change a user's role, active flag or password hash.
    pub async fn update_user(
        &self,
        p: &(impl AsActor + ?Sized),
        id: UserId,
        patch: UserPatch,
    ) -> Result<User> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let is_self_password =
            p.user_id == Some(id) && patch.role.is_none() && patch.active.is_none();
        if !is_self_password {
            self.authorize(p, Action::UserManage, None, ("user", Some(id.to_string())))
                .await?;
        }
        let mut u = self.store.get_user(id).await?;
        let mut changed = serde_json::Map::new();
        if let Some(r) = patch.role {
            changed.insert("role".into(), r.as_str().into());
            u.role = r;
        }
        if let Some(a) = patch.active {
            changed.insert("active".into(), a.into());
            u.active = a;
        }
        // A new password or a disabled account ends every session and API token of the user:
        // the rule lives here, once, for every frontend.
        let end_tokens = patch.password_hash.is_some() || patch.active == Some(false);
        if let Some(h) = patch.password_hash {
            changed.insert("password".into(), "changed".into());
            u.password_hash = Some(h);
        }
        u.updated_at = self.clock.now();
        let audit = self.audit(
            p,
            "user",
            Some(id.to_string()),
            "update",
            serde_json::json!({"username": u.username, "changed": changed, "tokens_ended": end_tokens}),
        );
        let r = self.store.update_user(&u, &audit).await;
        let written = self.wrote(p, &audit, r);
        let ended = match (&written, end_tokens) {
            // Audited by the update's record (`tokens_ended`).
            (Ok(()), true) => self
                .store
                .revoke_tokens(crate::store::RevokeTokens::User(id), None)
                .await
                .map(|_| ()),
            _ => Ok(()),
        };
        // Announced whatever the writes answered: a write that reports an error may still
        // have committed.
        self.auth_changed(Some(id)).await;
        written?;
        ended?;
        Ok(u)
    }

    /// Create a user with a password (checked against the password policy, hashed with
    /// argon2id). The policy is asked before a hash is spent; a refusal is audited.
    pub async fn add_user(
        &self,
        p: &(impl AsActor + ?Sized),
        username: &str,
        role: Role,
        password: SecretString,
    ) -> Result<User> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        self.authorize(p, Action::UserManage, None, ("user", None))
            .await?;
        let hash = hash_password_async(username, password).await?;
        self.create_user(
            p,
            NewUser {
                username: username.to_string(),
                role,
                password_hash: Some(hash),
            },
        )
        .await
    }

    /// Set a user's password (admins): every session and API token of the user ends.
    pub async fn reset_password(
        &self,
        p: &(impl AsActor + ?Sized),
        id: UserId,
        password: SecretString,
    ) -> Result<User> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        self.authorize(p, Action::UserManage, None, ("user", Some(id.to_string())))
            .await?;
        let target = self.store.get_user(id).await?;
        self.set_password_of(p, &target, password).await
    }

    /// Hash `password` (after the policy check) and make it `user`'s: the update ends every
    /// session and API token of the user.
    async fn set_password_of(
        &self,
        p: &Actor,
        user: &User,
        password: SecretString,
    ) -> Result<User> {
        let hash = hash_password_async(&user.username, password).await?;
        self.update_user(
            p,
            user.id,
            UserPatch {
                password_hash: Some(hash),
                ..Default::default()
            },
        )
        .await
    }

    /// The actor changes their own password, giving the current one: every session and API
    /// token of theirs ends. A wrong current password is refused (and audited as denied).
    /// Throttling guesses is the frontend's (it knows the client).
    pub async fn change_password(
        &self,
        p: &(impl AsActor + ?Sized),
        current: SecretString,
        new: SecretString,
    ) -> Result<User> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let Some(id) = p.user_id else {
            return Err(Error::invalid("only a user has a password to change"));
        };
        let user = self.store.get_user(id).await?;
        if !verify_password_async(current, user.password_hash.clone()).await {
            let rec = self
                .audit(
                    p,
                    "user",
                    Some(id.to_string()),
                    "change_password",
                    serde_json::json!({"reason": "the current password is wrong"}),
                )
                .with_outcome(AuditOutcome::Denied);
            if let Err(e) = self.append_audit(p, &rec).await {
                tracing::warn!(error = %e, "could not write a denied audit record");
            }
            return Err(Error::denied("the current password is wrong"));
        }
        self.set_password_of(p, &user, new).await
    }

    /// A user (admins, or the user itself).
    pub async fn get_user(&self, p: &(impl AsActor + ?Sized), id: UserId) -> Result<User> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        if p.user_id != Some(id) {
            policy::check(p, Action::UserManage, None)?;
        }
        self.store.get_user(id).await
    }

    /// Users by name (admins).
    pub async fn list_users(&self, p: &(impl AsActor + ?Sized), page: Page) -> Result<Vec<User>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        Page::new(page.offset, page.limit)?;
        policy::check(p, Action::UserManage, None)?;
        self.store.list_users(page).await
    }

    /// A user's grants (admins, or the user itself).
    pub async fn grants(&self, p: &(impl AsActor + ?Sized), id: UserId) -> Result<Vec<Grant>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        if p.user_id != Some(id) {
            policy::check(p, Action::UserManage, None)?;
        }
        self.store.list_grants(id).await
    }

    /// Replace a user's grants (admins).
    pub async fn set_grants(
        &self,
        p: &(impl AsActor + ?Sized),
        id: UserId,
        scopes: Vec<Scope>,
    ) -> Result<Vec<Grant>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        self.authorize(p, Action::UserManage, None, ("user", Some(id.to_string())))
            .await?;
        let u = self.store.get_user(id).await?;
        let grants: Vec<Grant> = scopes
            .into_iter()
            .map(|scope| Grant { user_id: id, scope })
            .collect();
        let audit = self.audit(p, "user", Some(id.to_string()), "set_grants", serde_json::json!({"username": u.username, "grants": grants.iter().map(|g| &g.scope).collect::<Vec<_>>()}));
        let r = self.store.set_grants(id, &grants, &audit).await;
        let r = self.wrote(p, &audit, r);
        // Announced whatever the write answered (it may have committed).
        self.auth_changed(Some(id)).await;
        r?;
        Ok(grants)
    }

    /// The principal for a user, read fresh (role, active flag and grants as stored now).
    /// A disabled or missing user is `Unauthenticated`.
    pub async fn principal_for(&self, id: UserId) -> Result<Principal> {
        let u = match self.store.get_user(id).await {
            Ok(u) => u,
            Err(e) if e.kind() == crate::ErrorKind::NotFound => {
                return Err(Error::new(
                    crate::ErrorKind::Unauthenticated,
                    "the user no longer exists",
                ));
            }
            Err(e) => return Err(e),
        };
        if !u.active {
            return Err(Error::new(
                crate::ErrorKind::Unauthenticated,
                format!("user '{}' is disabled", u.username),
            ));
        }
        let grants = self.store.list_grants(id).await?;
        Ok(Principal::user(&u, &grants))
    }

    /// Audit records (admins), newest first.
    pub async fn audit_log(
        &self,
        p: &(impl AsActor + ?Sized),
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Vec<AuditRecord>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        Page::new(page.offset, page.limit)?;
        policy::check(p, Action::AuditRead, None)?;
        self.store.list_audit(filter, page).await
    }

    /// Record, for `p`, an action the facade did not audit (an HTTP request refused before
    /// it reached an operation, say): `resource_type`, `resource_id`, `action`, `outcome` and
    /// `details` as the frontend saw them, with `p`'s request context. A no-op for a context
    /// the facade already wrote a record for.
    pub async fn record_action(
        &self,
        p: &(impl AsActor + ?Sized),
        resource: (&str, Option<String>),
        action: &str,
        outcome: AuditOutcome,
        details: serde_json::Value,
    ) -> Result<()> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        if p.ctx.audits() > 0 {
            return Ok(());
        }
        let rec = self
            .audit(p, resource.0, resource.1, action, details)
            .with_outcome(outcome);
        self.append_audit(p, &rec).await
    }
}
