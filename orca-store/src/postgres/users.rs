//! Users, grants, tokens and shared rate limits.

use orca_core::ids::UserId;
use orca_core::model::{AuditRecord, Grant, Page, Scope, Timestamp, User};
use orca_core::{Error, ErrorKind, Result, RevokeTokens, TokenRecord, UserStore, async_trait};
use sqlx::types::Json;

use super::error::db;
use super::rows::{self, token_cols, user_cols};
use super::{PostgresStore, insert_audit};

fn user_not_found(id: UserId) -> Error {
    Error::not_found(format!("user {id} does not exist"))
}

fn username_taken(e: Error, name: &str) -> Error {
    if e.kind() == ErrorKind::AlreadyExists {
        Error::already_exists(format!("a user named '{name}' already exists"))
    } else {
        e
    }
}

impl PostgresStore {
    pub(crate) async fn create_user_(&self, u: &User, audit: &AuditRecord) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db("creating a user"))?;
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(u.id.0)
        .bind(&u.username)
        .bind(u.role.as_str())
        .bind(&u.password_hash)
        .bind(u.active)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| username_taken(db("creating a user")(e), &u.username))?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db("creating a user"))?;
        Ok(())
    }

    pub(crate) async fn update_user_(&self, u: &User, audit: &AuditRecord) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db("updating a user"))?;
        let done = sqlx::query(
            "UPDATE users SET username = $2, role = $3, password_hash = $4, active = $5,
                    created_at = $6, updated_at = $7
              WHERE id = $1",
        )
        .bind(u.id.0)
        .bind(&u.username)
        .bind(u.role.as_str())
        .bind(&u.password_hash)
        .bind(u.active)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| username_taken(db("updating a user")(e), &u.username))?;
        if done.rows_affected() == 0 {
            return Err(user_not_found(u.id));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db("updating a user"))?;
        Ok(())
    }

    pub(crate) async fn get_user_(&self, id: UserId) -> Result<User> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading a user"))?
        .ok_or_else(|| user_not_found(id))?;
        rows::user(&row)
    }

    pub(crate) async fn find_user_(&self, username: &str) -> Result<User> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading a user"))?
        .ok_or_else(|| Error::not_found(format!("no user is named '{username}'")))?;
        rows::user(&row)
    }

    pub(crate) async fn list_users_(&self, page: Page) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users ORDER BY username OFFSET $1 LIMIT $2"
        ))
        .bind(rows::i64_of(page.offset, "page offset")?)
        .bind(i64::from(page.limit))
        .fetch_all(self.pool())
        .await
        .map_err(db("listing users"))?;
        rows.iter().map(rows::user).collect()
    }

    pub(crate) async fn list_grants_(&self, user: UserId) -> Result<Vec<Grant>> {
        let scopes: Vec<Json<Scope>> =
            sqlx::query_scalar("SELECT scope FROM grants WHERE user_id = $1 ORDER BY pos")
                .bind(user.0)
                .fetch_all(self.pool())
                .await
                .map_err(db("listing grants"))?;
        Ok(scopes
            .into_iter()
            .map(|s| Grant {
                user_id: user,
                scope: s.0,
            })
            .collect())
    }

    pub(crate) async fn set_grants_(
        &self,
        user: UserId,
        grants: &[Grant],
        audit: &AuditRecord,
    ) -> Result<()> {
        if let Some(g) = grants.iter().find(|g| g.user_id != user) {
            return Err(Error::invalid(format!(
                "a grant for user {} was given for user {user}",
                g.user_id
            )));
        }
        let mut tx = self.pool().begin().await.map_err(db("setting grants"))?;
        let found: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE")
                .bind(user.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("setting grants"))?;
        if found.is_none() {
            return Err(user_not_found(user));
        }
        sqlx::query("DELETE FROM grants WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(db("setting grants"))?;
        let scopes: Vec<Json<&Scope>> = grants.iter().map(|g| Json(&g.scope)).collect();
        sqlx::query(
            "INSERT INTO grants (user_id, pos, scope)
             SELECT $1, t.i, t.s FROM unnest($2::jsonb[]) WITH ORDINALITY AS t(s, i)",
        )
        .bind(user.0)
        .bind(&scopes)
        .execute(&mut *tx)
        .await
        .map_err(db("setting grants"))?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db("setting grants"))?;
        Ok(())
    }

    pub(crate) async fn create_token_(
        &self,
        t: &TokenRecord,
        audit: Option<&AuditRecord>,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db("storing a token"))?;
        sqlx::query(concat!(
            "INSERT INTO tokens (",
            token_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(t.id)
        .bind(t.user_id.0)
        .bind(rows::token_kind_str(t.kind))
        .bind(t.family)
        .bind(&t.hash)
        .bind(&t.name)
        .bind(&t.scopes)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.used_at)
        .bind(t.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            let e = db("storing a token")(e);
            match e.kind() {
                ErrorKind::AlreadyExists => Error::already_exists("this token already exists"),
                ErrorKind::NotFound => user_not_found(t.user_id),
                _ => e,
            }
        })?;
        if let Some(a) = audit {
            insert_audit(&mut tx, a).await?;
        }
        tx.commit().await.map_err(db("storing a token"))?;
        Ok(())
    }

    pub(crate) async fn find_token_(&self, hash: &str) -> Result<TokenRecord> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_cols!(),
            " FROM tokens WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading a token"))?
        .ok_or_else(|| Error::not_found("no such token"))?;
        rows::token(&row)
    }

    pub(crate) async fn use_token_(&self, id: uuid::Uuid) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tokens SET used_at = coalesce($2::timestamptz, now())
              WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(self.now_param())
        .execute(self.pool())
        .await
        .map_err(db("using a token"))?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        let exists: Option<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("using a token"))?;
        match exists {
            Some(_) => Ok(false),
            None => Err(Error::not_found(format!("token {id} does not exist"))),
        }
    }

    pub(crate) async fn revoke_tokens_(
        &self,
        which: RevokeTokens,
        audit: Option<&AuditRecord>,
    ) -> Result<u64> {
        let (by, key) = match which {
            RevokeTokens::Id(id) => ("id", id),
            RevokeTokens::Family(f) => ("family", f),
            RevokeTokens::User(u) => ("user", u.0),
        };
        let mut tx = self.pool().begin().await.map_err(db("revoking tokens"))?;
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = coalesce($3::timestamptz, now())
              WHERE revoked_at IS NULL
                AND CASE $1 WHEN 'id' THEN id = $2
                            WHEN 'family' THEN family = $2
                            ELSE user_id = $2 END",
        )
        .bind(by)
        .bind(key)
        .bind(self.now_param())
        .execute(&mut *tx)
        .await
        .map_err(db("revoking tokens"))?;
        if let Some(a) = audit {
            insert_audit(&mut tx, a).await?;
        }
        tx.commit().await.map_err(db("revoking tokens"))?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn list_tokens_(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            token_cols!(),
            " FROM tokens WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user.0)
        .fetch_all(self.pool())
        .await
        .map_err(db("listing tokens"))?;
        rows.iter().map(rows::token).collect()
    }

    pub(crate) async fn rate_limit_hit_(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        let window_start = orca_core::model::micros(window_start);
        // Count the hit, and forget this key's windows that ended long ago (rate-limit
        // windows are minutes, not days) in the same statement.
        let hits: i64 = sqlx::query_scalar(
            "WITH old AS (DELETE FROM rate_limits
                           WHERE key = $1 AND window_start < $2 - interval '1 day')
             INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1)
             ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1
             RETURNING hits",
        )
        .bind(key)
        .bind(window_start)
        .fetch_one(self.pool())
        .await
        .map_err(db("counting a rate-limit hit"))?;
        Ok(hits.max(0) as u64)
    }
}

#[async_trait]
impl UserStore for PostgresStore {
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
