//! Systems, credentials and host keys.

use orca_core::ids::SystemId;
use orca_core::model::{AuditRecord, Health, HostKey, Page, SealedSecret, System, SystemFilter};
use orca_core::{Error, Result, SystemStore, async_trait};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use super::error::db_err;
use super::inline;
use super::rows::{self, i, to_json, us};
use super::tx;

/// A system by id (see [`get`]).
pub(crate) const GET_SYSTEM: &str = concat!(
    "SELECT ",
    rows::system_cols!(),
    " FROM systems WHERE id = ?"
);
/// A system by name (see [`find`]).
pub(crate) const FIND_SYSTEM: &str = concat!(
    "SELECT ",
    rows::system_cols!(),
    " FROM systems WHERE name = ?"
);

fn missing(id: SystemId) -> Error {
    Error::not_found(format!("system {id} not found")).with_system(id)
}

async fn exists(conn: &mut SqliteConnection, id: SystemId) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM systems WHERE id = ?")
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(db_err)?;
    found.map(|_| ()).ok_or_else(|| missing(id))
}

pub(crate) async fn create(s: &SqliteStore, sys: &System, audit: &AuditRecord) -> Result<()> {
    let mut tx = tx::begin(s).await?;
    sqlx::query(
        "INSERT INTO systems (id, name, hostname, port, system_type, username, credential, \
         credential_key, tags, active, health_status, health_checked_at, health_latency_ms, \
         health_reason, host_key_policy, options, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(sys.id.0)
    .bind(&sys.name)
    .bind(&sys.hostname)
    .bind(i64::from(sys.port))
    .bind(sys.system_type.as_str())
    .bind(&sys.username)
    .bind(sys.credential.as_ref().map(|c| c.0.clone()))
    .bind(
        sys.credential
            .as_ref()
            .and_then(|c| c.key_id().map(str::to_string)),
    )
    .bind(to_json(&sys.tags)?)
    .bind(sys.active)
    .bind(sys.health.status.as_str())
    .bind(sys.health.checked_at.map(us))
    .bind(sys.health.latency_ms.map(i))
    .bind(&sys.health.reason)
    .bind(sys.host_key_policy.as_str())
    .bind(to_json(&sys.options)?)
    .bind(us(sys.created_at))
    .bind(us(sys.updated_at))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn update(s: &SqliteStore, sys: &System, audit: &AuditRecord) -> Result<()> {
    let mut tx = tx::begin(s).await?;
    let done = sqlx::query(
        "UPDATE systems SET name = ?, hostname = ?, port = ?, system_type = ?, username = ?, \
         credential = ?, credential_key = ?, tags = ?, active = ?, health_status = ?, \
         health_checked_at = ?, health_latency_ms = ?, health_reason = ?, host_key_policy = ?, \
         options = ?, created_at = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&sys.name)
    .bind(&sys.hostname)
    .bind(i64::from(sys.port))
    .bind(sys.system_type.as_str())
    .bind(&sys.username)
    .bind(sys.credential.as_ref().map(|c| c.0.clone()))
    .bind(
        sys.credential
            .as_ref()
            .and_then(|c| c.key_id().map(str::to_string)),
    )
    .bind(to_json(&sys.tags)?)
    .bind(sys.active)
    .bind(sys.health.status.as_str())
    .bind(sys.health.checked_at.map(us))
    .bind(sys.health.latency_ms.map(i))
    .bind(&sys.health.reason)
    .bind(sys.host_key_policy.as_str())
    .bind(to_json(&sys.options)?)
    .bind(us(sys.created_at))
    .bind(us(sys.updated_at))
    .bind(sys.id.0)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(missing(sys.id));
    }
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn delete(s: &SqliteStore, id: SystemId, audit: &AuditRecord) -> Result<()> {
    let mut tx = tx::begin(s).await?;
    exists(&mut tx, id).await?;
    let busy: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM executions WHERE system_id = ? AND status IN ('pending', 'running')",
    )
    .bind(id.0)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    if busy > 0 {
        return Err(Error::conflict(format!(
            "system {id} has {busy} pending or running executions: cancel them or wait for them \
             to end before deleting it"
        ))
        .with_system(id));
    }
    sqlx::query("DELETE FROM systems WHERE id = ?")
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub(crate) async fn get(s: &SqliteStore, id: SystemId) -> Result<System> {
    inline::one(s, GET_SYSTEM, id.0)
        .await?
        .ok_or_else(|| missing(id))
}

pub(crate) async fn find(s: &SqliteStore, name: &str) -> Result<System> {
    inline::one(s, FIND_SYSTEM, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("no system named '{name}'")))
}

pub(crate) async fn list(s: &SqliteStore, f: &SystemFilter, page: Page) -> Result<Vec<System>> {
    let mut q =
        QueryBuilder::<Sqlite>::new(format!("SELECT {} FROM systems WHERE 1", rows::SYSTEM_COLS));
    if !f.tags.is_empty() {
        q.push(" AND EXISTS (SELECT 1 FROM json_each(systems.tags) t WHERE t.value IN (SELECT value FROM json_each(");
        q.push_bind(to_json(&f.tags)?);
        q.push(")))");
    }
    if let Some(t) = f.system_type {
        q.push(" AND system_type = ").push_bind(t.as_str());
    }
    if let Some(h) = f.health {
        q.push(" AND health_status = ").push_bind(h.as_str());
    }
    if let Some(a) = f.active {
        q.push(" AND active = ").push_bind(a);
    }
    if let Some(n) = &f.name_contains {
        q.push(" AND instr(name, ")
            .push_bind(n.clone())
            .push(") > 0");
    }
    q.push(" ORDER BY name LIMIT ")
        .push_bind(i64::from(page.limit));
    q.push(" OFFSET ").push_bind(i(page.offset));
    let found = q.build().fetch_all(&s.reader).await.map_err(db_err)?;
    found.iter().map(rows::system).collect()
}

pub(crate) async fn record_health(s: &SqliteStore, id: SystemId, h: &Health) -> Result<()> {
    let done = sqlx::query(
        "UPDATE systems SET health_status = ?, health_checked_at = ?, health_latency_ms = ?, \
         health_reason = ? WHERE id = ?",
    )
    .bind(h.status.as_str())
    .bind(h.checked_at.map(us))
    .bind(h.latency_ms.map(i))
    .bind(&h.reason)
    .bind(id.0)
    .execute(&s.writer)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(missing(id));
    }
    Ok(())
}

pub(crate) async fn list_sealed_not_under(
    s: &SqliteStore,
    key_id: &str,
    limit: u32,
) -> Result<Vec<(SystemId, SealedSecret)>> {
    let found: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT id, credential FROM systems WHERE credential IS NOT NULL \
         AND (credential_key IS NULL OR credential_key <> ?) ORDER BY id LIMIT ?",
    )
    .bind(key_id)
    .bind(i64::from(limit))
    .fetch_all(&s.reader)
    .await
    .map_err(db_err)?;
    Ok(found
        .into_iter()
        .map(|(id, c)| (SystemId(id), SealedSecret(c)))
        .collect())
}

pub(crate) async fn reseal(
    s: &SqliteStore,
    id: SystemId,
    old: &SealedSecret,
    new: &SealedSecret,
) -> Result<bool> {
    let mut tx = tx::begin(s).await?;
    exists(&mut tx, id).await?;
    let done = sqlx::query(
        "UPDATE systems SET credential = ?, credential_key = ? WHERE id = ? AND credential = ?",
    )
    .bind(&new.0)
    .bind(new.key_id())
    .bind(id.0)
    .bind(&old.0)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

async fn keys(conn: &mut SqliteConnection, id: SystemId) -> Result<Vec<HostKey>> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM host_keys WHERE system_id = ? ORDER BY created_at, id",
        rows::HOST_KEY_COLS
    )))
    .bind(id.0)
    .fetch_all(conn)
    .await
    .map_err(db_err)?;
    found.iter().map(rows::host_key).collect()
}

async fn insert_key(conn: &mut SqliteConnection, k: &HostKey) -> Result<()> {
    sqlx::query(
        "INSERT INTO host_keys (id, system_id, algorithm, fingerprint, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(k.id.0)
    .bind(k.system_id.0)
    .bind(&k.algorithm)
    .bind(&k.fingerprint)
    .bind(us(k.created_at))
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_host_keys(s: &SqliteStore, id: SystemId) -> Result<Vec<HostKey>> {
    let mut conn = s.reader.acquire().await.map_err(db_err)?;
    exists(&mut conn, id).await?;
    keys(&mut conn, id).await
}

pub(crate) async fn pin_host_key_if_none(
    s: &SqliteStore,
    key: &HostKey,
    audit: &AuditRecord,
) -> Result<Vec<HostKey>> {
    let mut tx = tx::begin(s).await?;
    exists(&mut tx, key.system_id).await?;
    let current = keys(&mut tx, key.system_id).await?;
    if !current.is_empty() {
        return Ok(current);
    }
    insert_key(&mut tx, key).await?;
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(vec![key.clone()])
}

pub(crate) async fn replace_host_keys(
    s: &SqliteStore,
    id: SystemId,
    new: &[HostKey],
    audit: &AuditRecord,
) -> Result<()> {
    if let Some(k) = new.iter().find(|k| k.system_id != id) {
        return Err(Error::invalid(format!(
            "host key {} belongs to system {}, not {id}",
            k.fingerprint, k.system_id
        )));
    }
    let mut tx = tx::begin(s).await?;
    exists(&mut tx, id).await?;
    sqlx::query("DELETE FROM host_keys WHERE system_id = ?")
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    for k in new {
        insert_key(&mut tx, k).await?;
    }
    tx::audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

#[async_trait]
impl SystemStore for SqliteStore {
    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        create(self, system, audit).await
    }
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        update(self, system, audit).await
    }
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        delete(self, id, audit).await
    }
    async fn get_system(&self, id: SystemId) -> Result<System> {
        get(self, id).await
    }
    async fn find_system(&self, name: &str) -> Result<System> {
        find(self, name).await
    }
    async fn list_systems(&self, filter: &SystemFilter, page: Page) -> Result<Vec<System>> {
        list(self, filter, page).await
    }
    async fn record_health(&self, id: SystemId, health: &Health) -> Result<()> {
        record_health(self, id, health).await
    }
    async fn list_sealed_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>> {
        list_sealed_not_under(self, key_id, limit).await
    }
    async fn reseal(&self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool> {
        reseal(self, id, old, new).await
    }

    async fn list_host_keys(&self, system: SystemId) -> Result<Vec<HostKey>> {
        list_host_keys(self, system).await
    }
    async fn pin_host_key_if_none(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>> {
        pin_host_key_if_none(self, key, audit).await
    }
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        replace_host_keys(self, system, keys, audit).await
    }
}
