//! Systems and their pinned host keys.

use orca_core::ids::SystemId;
use orca_core::model::{AuditRecord, Health, HostKey, Page, SealedSecret, System, SystemFilter};
use orca_core::{Error, ErrorKind, Result, SystemStore, async_trait};
use sqlx::types::Json;

use super::error::db;
use super::rows::{self, system_cols};
use super::{PostgresStore, insert_audit};

fn name_taken(e: Error, name: &str) -> Error {
    if e.kind() == ErrorKind::AlreadyExists {
        Error::already_exists(format!(
            "a system named '{name}' already exists: choose another name"
        ))
    } else {
        e
    }
}

fn not_found(id: SystemId) -> Error {
    Error::not_found(format!("system {id} does not exist")).with_system(id)
}

impl PostgresStore {
    pub(crate) async fn create_system_(&self, s: &System, audit: &AuditRecord) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db("creating a system"))?;
        sqlx::query(concat!(
            "INSERT INTO systems (",
            system_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(s.id.0)
        .bind(&s.name)
        .bind(&s.hostname)
        .bind(i32::from(s.port))
        .bind(s.system_type.as_str())
        .bind(&s.username)
        .bind(s.credential.as_ref().map(|c| c.0.as_str()))
        .bind(&s.tags)
        .bind(s.active)
        .bind(s.health.status.as_str())
        .bind(s.health.checked_at)
        .bind(
            s.health
                .latency_ms
                .map(|v| rows::i64_of(v, "latency"))
                .transpose()?,
        )
        .bind(&s.health.reason)
        .bind(s.host_key_policy.as_str())
        .bind(Json(&s.options))
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| name_taken(db("creating a system")(e), &s.name))?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db("creating a system"))?;
        Ok(())
    }

    pub(crate) async fn update_system_(&self, s: &System, audit: &AuditRecord) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db("updating a system"))?;
        let done = sqlx::query(
            "UPDATE systems SET name = $2, hostname = $3, port = $4, system_type = $5,
                    username = $6, credential = $7, tags = $8, active = $9, health_status = $10,
                    health_checked_at = $11, health_latency_ms = $12, health_reason = $13,
                    host_key_policy = $14, options = $15, created_at = $16, updated_at = $17
              WHERE id = $1",
        )
        .bind(s.id.0)
        .bind(&s.name)
        .bind(&s.hostname)
        .bind(i32::from(s.port))
        .bind(s.system_type.as_str())
        .bind(&s.username)
        .bind(s.credential.as_ref().map(|c| c.0.as_str()))
        .bind(&s.tags)
        .bind(s.active)
        .bind(s.health.status.as_str())
        .bind(s.health.checked_at)
        .bind(
            s.health
                .latency_ms
                .map(|v| rows::i64_of(v, "latency"))
                .transpose()?,
        )
        .bind(&s.health.reason)
        .bind(s.host_key_policy.as_str())
        .bind(Json(&s.options))
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| name_taken(db("updating a system")(e), &s.name))?;
        if done.rows_affected() == 0 {
            return Err(not_found(s.id));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db("updating a system"))?;
        Ok(())
    }

    pub(crate) async fn delete_system_(&self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db("deleting a system"))?;
        let exists: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM systems WHERE id = $1 FOR UPDATE")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("deleting a system"))?;
        if exists.is_none() {
            return Err(not_found(id));
        }
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM executions
              WHERE system_id = $1 AND status IN ('pending', 'running')",
        )
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("deleting a system"))?;
        if busy > 0 {
            return Err(Error::conflict(format!(
                "system {id} has {busy} pending or running executions: cancel them or wait for \
                 them to end before deleting it"
            ))
            .with_system(id));
        }
        sqlx::query("DELETE FROM systems WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db("deleting a system"))?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db("deleting a system"))?;
        Ok(())
    }

    pub(crate) async fn get_system_(&self, id: SystemId) -> Result<System> {
        let row = sqlx::query(concat!(
            "SELECT ",
            system_cols!(),
            " FROM systems WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading a system"))?
        .ok_or_else(|| not_found(id))?;
        rows::system(&row)
    }

    pub(crate) async fn find_system_(&self, name: &str) -> Result<System> {
        let row = sqlx::query(concat!(
            "SELECT ",
            system_cols!(),
            " FROM systems WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(db("reading a system"))?
        .ok_or_else(|| Error::not_found(format!("no system is named '{name}'")))?;
        rows::system(&row)
    }

    pub(crate) async fn list_systems_(&self, f: &SystemFilter, page: Page) -> Result<Vec<System>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            system_cols!(),
            " FROM systems
             WHERE (cardinality($1::text[]) = 0 OR tags && $1)
               AND ($2::text IS NULL OR system_type = $2)
               AND ($3::text IS NULL OR health_status = $3)
               AND ($4::boolean IS NULL OR active = $4)
               AND ($5::text IS NULL OR strpos(name, $5) > 0)
             ORDER BY name
             OFFSET $6 LIMIT $7"
        ))
        .bind(&f.tags)
        .bind(f.system_type.map(|t| t.as_str()))
        .bind(f.health.map(|h| h.as_str()))
        .bind(f.active)
        .bind(&f.name_contains)
        .bind(rows::i64_of(page.offset, "page offset")?)
        .bind(i64::from(page.limit))
        .fetch_all(self.pool())
        .await
        .map_err(db("listing systems"))?;
        rows.iter().map(rows::system).collect()
    }

    pub(crate) async fn record_health_(&self, id: SystemId, h: &Health) -> Result<()> {
        let done = sqlx::query(
            "UPDATE systems SET health_status = $2, health_checked_at = $3,
                    health_latency_ms = $4, health_reason = $5
              WHERE id = $1",
        )
        .bind(id.0)
        .bind(h.status.as_str())
        .bind(h.checked_at)
        .bind(
            h.latency_ms
                .map(|v| rows::i64_of(v, "latency"))
                .transpose()?,
        )
        .bind(&h.reason)
        .execute(self.pool())
        .await
        .map_err(db("recording a system's health"))?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    pub(crate) async fn list_sealed_not_under_(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>> {
        let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(
            "SELECT id, credential FROM systems
              WHERE credential IS NOT NULL AND NOT starts_with(credential, 'orca1:' || $1 || ':')
              ORDER BY id LIMIT $2",
        )
        .bind(key_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db("listing sealed credentials"))?;
        Ok(rows
            .into_iter()
            .map(|(id, c)| (SystemId(id), SealedSecret(c)))
            // The format check of the vault, in case a key id contains ':'.
            .filter(|(_, c)| c.key_id() != Some(key_id))
            .collect())
    }

    pub(crate) async fn reseal_(
        &self,
        id: SystemId,
        old: &SealedSecret,
        new: &SealedSecret,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE systems SET credential = $3 WHERE id = $1 AND credential = $2")
                .bind(id.0)
                .bind(&old.0)
                .bind(&new.0)
                .execute(self.pool())
                .await
                .map_err(db("re-sealing a credential"))?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        self.get_system_(id).await.map(|_| false)
    }

    pub(crate) async fn list_host_keys_(&self, system: SystemId) -> Result<Vec<HostKey>> {
        let rows = sqlx::query(
            "SELECT id, system_id, algorithm, fingerprint, created_at FROM host_keys
              WHERE system_id = $1 ORDER BY created_at, id",
        )
        .bind(system.0)
        .fetch_all(self.pool())
        .await
        .map_err(db("listing host keys"))?;
        rows.iter().map(rows::host_key).collect()
    }

    async fn lock_system(
        tx: &mut sqlx::PgConnection,
        id: SystemId,
        what: &'static str,
    ) -> Result<()> {
        let found: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM systems WHERE id = $1 FOR NO KEY UPDATE")
                .bind(id.0)
                .fetch_optional(tx)
                .await
                .map_err(db(what))?;
        found.map(|_| ()).ok_or_else(|| not_found(id))
    }

    async fn insert_host_key(
        tx: &mut sqlx::PgConnection,
        k: &HostKey,
        system: SystemId,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO host_keys (id, system_id, algorithm, fingerprint, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(k.id.0)
        .bind(system.0)
        .bind(&k.algorithm)
        .bind(&k.fingerprint)
        .bind(k.created_at)
        .execute(tx)
        .await
        .map_err(db("pinning a host key"))?;
        Ok(())
    }

    pub(crate) async fn pin_host_key_if_none_(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(db("pinning a host key"))?;
        Self::lock_system(&mut tx, key.system_id, "pinning a host key").await?;
        let pinned: i64 = sqlx::query_scalar("SELECT count(*) FROM host_keys WHERE system_id = $1")
            .bind(key.system_id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("pinning a host key"))?;
        if pinned == 0 {
            Self::insert_host_key(&mut tx, key, key.system_id).await?;
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await.map_err(db("pinning a host key"))?;
        self.list_host_keys_(key.system_id).await
    }

    pub(crate) async fn replace_host_keys_(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        if let Some(k) = keys.iter().find(|k| k.system_id != system) {
            return Err(Error::invalid(format!(
                "host key {} belongs to system {}, not {system}",
                k.id, k.system_id
            )));
        }
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(db("replacing host keys"))?;
        Self::lock_system(&mut tx, system, "replacing host keys").await?;
        sqlx::query("DELETE FROM host_keys WHERE system_id = $1")
            .bind(system.0)
            .execute(&mut *tx)
            .await
            .map_err(db("replacing host keys"))?;
        for k in keys {
            Self::insert_host_key(&mut tx, k, system).await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(db("replacing host keys"))?;
        Ok(())
    }
}

#[async_trait]
impl SystemStore for PostgresStore {
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
}
