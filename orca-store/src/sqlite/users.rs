//! Users, grants, tokens and rate limits.

use orca_core::ids::UserId;
use orca_core::model::{AuditRecord, Grant, Page, Scope, Timestamp, User};
use orca_core::{Error, Result, RevokeTokens, TokenRecord, UserStore, async_trait};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnection;

use super::SqliteStore;
use super::error::db_err;
use super::inline::{self, Miss};
use super::rows::{self, to_json, us};
use super::tx;

/// How long rate-limit windows are kept: one day.
const RATE_LIMIT_RETENTION_US: i64 = 24 * 3600 * 1_000_000;

/// A user by id (see [`get_user`]).
pub(crate) const GET_USER: &str =
    concat!("SELECT ", rows::user_cols!(), " FROM users WHERE id = ?");
/// A user by name (see [`find_user`]).
pub(crate) const FIND_USER: &str = concat!(
    "SELECT ",
    rows::user_cols!(),
    " FROM users WHERE username = ?"
);
/// Whether a user exists.
const USER_EXISTS: &str = "SELECT 1 FROM users WHERE id = ?";
/// A user's grants in the order they were set (see [`list_grants`]).
pub(crate) const LIST_GRANTS: &str =
    "SELECT scope_kind, scope_value FROM grants WHERE user_id = ? ORDER BY rowid";
/// A token by the hash of its secret (see [`find_token`]).
pub(crate) const FIND_TOKEN: &str = concat!(
    "SELECT ",
    rows::token_cols!(),
    " FROM tokens WHERE hash = ?"
);

fn user_missing(id: UserId) -> Error {
    Error::not_found(format!("user {id} not found"))
}

async fn user_exists(conn: &mut SqliteConnection, id: UserId) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar(USER_EXISTS)
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(db_err)?;
    found.map(|_| ()).ok_or_else(|| user_missing(id))
}

pub(crate) async fn create_user(s: &SqliteStore, u: &User, audit: &AuditRecord) -> Result<()> {
    let mut tx = tx::begin(s).await?;
    sqlx::query(
        "INSERT INTO users (id, username, role, password_hash, active, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(u.id.0)
    .bind(&u.username)
    .bind(u.role.as_str())
    .bind(&u.password_hash)
    .bind(u.active)
    .bind(us(u.created_at))
    .bind(us(u.updated_at))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn update_user(s: &SqliteStore, u: &User, audit: &AuditRecord) -> Result<()> {
    let mut tx = tx::begin(s).await?;
    let done = sqlx::query(
        "UPDATE users SET username = ?, role = ?, password_hash = ?, active = ?, created_at = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(&u.username)
    .bind(u.role.as_str())
    .bind(&u.password_hash)
    .bind(u.active)
    .bind(us(u.created_at))
    .bind(us(u.updated_at))
    .bind(u.id.0)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(user_missing(u.id));
    }
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn get_user(s: &SqliteStore, id: UserId) -> Result<User> {
    inline::one(s, GET_USER, id.0)
        .await?
        .ok_or_else(|| user_missing(id))
}

pub(crate) async fn find_user(s: &SqliteStore, name: &str) -> Result<User> {
    inline::one(s, FIND_USER, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("no user named '{name}'")))
}

pub(crate) async fn list_users(s: &SqliteStore, page: Page) -> Result<Vec<User>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM users ORDER BY username LIMIT ? OFFSET ?",
        rows::USER_COLS
    )))
    .bind(i64::from(page.limit))
    .bind(rows::i(page.offset))
    .fetch_all(&s.reader)
    .await
    .map_err(db_err)?;
    found.iter().map(rows::user).collect()
}

pub(crate) async fn list_grants(s: &SqliteStore, user: UserId) -> Result<Vec<Grant>> {
    let inline = s.inline.run(|r| {
        if !r.exists(USER_EXISTS, &user.0)? {
            return Err(Miss::Failed(user_missing(user)));
        }
        r.all(LIST_GRANTS, &user.0)
    });
    let scopes = match inline {
        Some(found) => found?,
        None => pooled_grants(s, user).await?,
    };
    Ok(scopes
        .into_iter()
        .map(|scope| Grant {
            user_id: user,
            scope,
        })
        .collect())
}

/// [`list_grants`] through the pool.
pub(crate) async fn pooled_grants(s: &SqliteStore, user: UserId) -> Result<Vec<Scope>> {
    let mut conn = s.reader.acquire().await.map_err(db_err)?;
    user_exists(&mut conn, user).await?;
    let found = sqlx::query(LIST_GRANTS)
        .bind(user.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    found.iter().map(rows::scope).collect()
}

pub(crate) async fn set_grants(
    s: &SqliteStore,
    user: UserId,
    grants: &[Grant],
    audit: &AuditRecord,
) -> Result<()> {
    if let Some(g) = grants.iter().find(|g| g.user_id != user) {
        return Err(Error::invalid(format!(
            "a grant for user {} was given in the grants of user {user}",
            g.user_id
        )));
    }
    let mut tx = tx::begin(s).await?;
    user_exists(&mut tx, user).await?;
    sqlx::query("DELETE FROM grants WHERE user_id = ?")
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    for g in grants {
        let (kind, value) = rows::scope_cols(&g.scope);
        sqlx::query("INSERT INTO grants (user_id, scope_kind, scope_value) VALUES (?, ?, ?)")
            .bind(user.0)
            .bind(kind)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn create_token(
    s: &SqliteStore,
    t: &TokenRecord,
    audit: Option<&AuditRecord>,
) -> Result<()> {
    let mut tx = tx::begin(s).await?;
    user_exists(&mut tx, t.user_id).await?;
    sqlx::query(
        "INSERT INTO tokens (id, user_id, kind, family, hash, name, scopes, created_at, \
         expires_at, used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(t.id)
    .bind(t.user_id.0)
    .bind(rows::token_kind(t.kind))
    .bind(t.family)
    .bind(&t.hash)
    .bind(&t.name)
    .bind(to_json(&t.scopes)?)
    .bind(us(t.created_at))
    .bind(t.expires_at.map(us))
    .bind(t.used_at.map(us))
    .bind(t.revoked_at.map(us))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if let Some(a) = audit {
        tx::audit(&mut tx, a).await?;
    }
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn find_token(s: &SqliteStore, hash: &str) -> Result<TokenRecord> {
    inline::one(s, FIND_TOKEN, hash)
        .await?
        .ok_or_else(|| Error::not_found("no such token"))
}

pub(crate) async fn use_token(s: &SqliteStore, id: uuid::Uuid) -> Result<bool> {
    let now = us(s.now());
    let mut tx = tx::begin(s).await?;
    let done = sqlx::query(
        "UPDATE tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        found.ok_or_else(|| Error::not_found(format!("token {id} not found")))?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn revoke_tokens(
    s: &SqliteStore,
    which: RevokeTokens,
    audit: Option<&AuditRecord>,
) -> Result<u64> {
    let now = us(s.now());
    let (column, id) = match which {
        RevokeTokens::Id(id) => ("id", id),
        RevokeTokens::Family(f) => ("family", f),
        RevokeTokens::User(u) => ("user_id", u.0),
    };
    let mut tx = tx::begin(s).await?;
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE tokens SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL"
    )))
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if let Some(a) = audit {
        tx::audit(&mut tx, a).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn list_tokens(s: &SqliteStore, user: UserId) -> Result<Vec<TokenRecord>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM tokens WHERE user_id = ? ORDER BY created_at, id",
        rows::TOKEN_COLS
    )))
    .bind(user.0)
    .fetch_all(&s.reader)
    .await
    .map_err(db_err)?;
    found.iter().map(rows::token).collect()
}

pub(crate) async fn rate_limit_hit(
    s: &SqliteStore,
    key: &str,
    window_start: Timestamp,
) -> Result<u64> {
    let start = us(window_start);
    // Windows are short (seconds to minutes); a key's windows older than a day are dropped.
    let horizon = us(s.now()) - RATE_LIMIT_RETENTION_US;
    let mut tx = tx::begin(s).await?;
    sqlx::query("DELETE FROM rate_limits WHERE key = ? AND window_start < ?")
        .bind(key)
        .bind(horizon)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let hits: i64 = sqlx::query_scalar(
        "INSERT INTO rate_limits (key, window_start, hits) VALUES (?, ?, 1) \
         ON CONFLICT (key, window_start) DO UPDATE SET hits = hits + 1 RETURNING hits",
    )
    .bind(key)
    .bind(start)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(u64::try_from(hits).unwrap_or(0))
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        create_user(self, user, audit).await
    }
    async fn update_user(&self, user: &User, audit: &AuditRecord) -> Result<()> {
        update_user(self, user, audit).await
    }
    async fn get_user(&self, id: UserId) -> Result<User> {
        get_user(self, id).await
    }
    async fn find_user(&self, username: &str) -> Result<User> {
        find_user(self, username).await
    }
    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        list_users(self, page).await
    }
    async fn list_grants(&self, user: UserId) -> Result<Vec<Grant>> {
        list_grants(self, user).await
    }
    async fn set_grants(&self, user: UserId, grants: &[Grant], audit: &AuditRecord) -> Result<()> {
        set_grants(self, user, grants, audit).await
    }
    async fn create_token(&self, token: &TokenRecord, audit: Option<&AuditRecord>) -> Result<()> {
        create_token(self, token, audit).await
    }
    async fn find_token(&self, hash: &str) -> Result<TokenRecord> {
        find_token(self, hash).await
    }
    async fn use_token(&self, id: uuid::Uuid) -> Result<bool> {
        use_token(self, id).await
    }
    async fn revoke_tokens(&self, which: RevokeTokens, audit: Option<&AuditRecord>) -> Result<u64> {
        revoke_tokens(self, which, audit).await
    }
    async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenRecord>> {
        list_tokens(self, user).await
    }
    async fn rate_limit_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        rate_limit_hit(self, key, window_start).await
    }
}
