//! Users, grants, principals and the audit log.

use super::Orca;
use crate::ids::UserId;
use crate::model::{AuditFilter, AuditRecord, Grant, NewUser, Page, Principal, Role, Scope, User};
use crate::policy::{self, Action};
use crate::{Error, Result};

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
    pub async fn create_user(&self, p: &Principal, new: NewUser) -> Result<User> {
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
        self.store.create_user(&user, &audit).await?;
        Ok(user)
    }

    /// Change a user's role, active flag or password hash.
    pub async fn update_user(&self, p: &Principal, id: UserId, patch: UserPatch) -> Result<User> {
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
        self.store.update_user(&u, &audit).await?;
        if end_tokens {
            // Audited by the update's record (`tokens_ended`).
            self.store
                .revoke_tokens(crate::store::RevokeTokens::User(id), None)
                .await?;
        }
        Ok(u)
    }

    /// A user (admins, or the user itself).
    pub async fn get_user(&self, p: &Principal, id: UserId) -> Result<User> {
        if p.user_id != Some(id) {
            policy::check(p, Action::UserManage, None)?;
        }
        self.store.get_user(id).await
    }

    /// Users by name (admins).
    pub async fn list_users(&self, p: &Principal, page: Page) -> Result<Vec<User>> {
        Page::new(page.offset, page.limit)?;
        policy::check(p, Action::UserManage, None)?;
        self.store.list_users(page).await
    }

    /// A user's grants (admins, or the user itself).
    pub async fn grants(&self, p: &Principal, id: UserId) -> Result<Vec<Grant>> {
        if p.user_id != Some(id) {
            policy::check(p, Action::UserManage, None)?;
        }
        self.store.list_grants(id).await
    }

    /// Replace a user's grants (admins).
    pub async fn set_grants(
        &self,
        p: &Principal,
        id: UserId,
        scopes: Vec<Scope>,
    ) -> Result<Vec<Grant>> {
        self.authorize(p, Action::UserManage, None, ("user", Some(id.to_string())))
            .await?;
        let u = self.store.get_user(id).await?;
        let grants: Vec<Grant> = scopes
            .into_iter()
            .map(|scope| Grant { user_id: id, scope })
            .collect();
        let audit = self.audit(p, "user", Some(id.to_string()), "set_grants", serde_json::json!({"username": u.username, "grants": grants.iter().map(|g| &g.scope).collect::<Vec<_>>()}));
        self.store.set_grants(id, &grants, &audit).await?;
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
        p: &Principal,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Vec<AuditRecord>> {
        Page::new(page.offset, page.limit)?;
        policy::check(p, Action::AuditRead, None)?;
        self.store.list_audit(filter, page).await
    }

    /// Record an action done outside the facade (e.g. a login) in the audit log.
    pub async fn record_audit(&self, record: &AuditRecord) -> Result<()> {
        self.store.append_audit(record).await
    }
}
