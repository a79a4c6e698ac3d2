//! System operations.

use super::Orca;
use crate::actor::{Actor, AsActor};
use crate::ids::SystemId;
use crate::model::{
    Credential, Health, NewSystem, Page, SealedSecret, System, SystemFilter, SystemPatch,
    SystemType,
};
use crate::policy::{self, Action};
use crate::{Error, ErrorKind, Result};

/// What a re-encryption pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReencryptReport {
    /// Credentials now under the primary key.
    pub reencrypted: u64,
    /// Credentials that changed under us and were skipped (they are current anyway).
    pub skipped: u64,
}

fn validate_name(name: &str) -> Result<()> {
    crate::text::printable("system name", name)?;
    crate::text::not_an_id("system name", name)?;
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "system name '{name}' is invalid: use 1-255 letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

fn validate_tags(tags: &[String]) -> Result<()> {
    for t in tags {
        if t.is_empty()
            || t.len() > 64
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
        {
            return Err(Error::invalid(format!(
                "tag '{t}' is invalid: use 1-64 letters, digits, '-', '_', '.', ':' or '/'"
            )));
        }
    }
    Ok(())
}

fn validate_hostname(h: &str) -> Result<()> {
    crate::text::hostname("hostname", h)
}

fn validate_options(options: &std::collections::BTreeMap<String, String>) -> Result<()> {
    for (k, v) in options {
        crate::text::option_key("option key", k)?;
        crate::text::printable(&format!("option '{k}'"), v)?;
    }
    Ok(())
}

impl Orca {
    /// Find a system by id or name, without a policy check (internal).
    pub(crate) async fn resolve_system(&self, id_or_name: &str) -> Result<System> {
        if let Ok(id) = id_or_name.parse::<SystemId>() {
            match self.store.get_system(id).await {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.store.find_system(id_or_name).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::not_found(format!("system '{id_or_name}' not found"))
            } else {
                e
            }
        })
    }

    fn seal(&self, id: SystemId, c: &Credential) -> Result<Option<SealedSecret>> {
        match c {
            Credential::None => Ok(None),
            c => self.vault.seal(&id.to_string(), c).map(Some),
        }
    }

    /// Register a system. Its credential is encrypted before it reaches the store.
    pub async fn add_system(&self, p: &(impl AsActor + ?Sized), new: NewSystem) -> Result<System> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        self.authorize(p, Action::SystemCreate, None, ("system", None))
            .await?;
        validate_name(&new.name)?;
        validate_tags(&new.tags)?;
        validate_options(&new.options)?;
        let system_type = new.system_type.unwrap_or(SystemType::Linux);
        let hostname = new.hostname.clone().unwrap_or_else(|| match system_type {
            SystemType::Local => "localhost".to_string(),
            _ => new.name.clone(),
        });
        validate_hostname(&hostname)?;
        crate::text::printable("username", &new.username)?;
        if system_type != SystemType::Local && new.username.trim().is_empty() {
            return Err(Error::invalid(format!(
                "system '{}' needs a username to log in with",
                new.name
            )));
        }
        self.engine.connectors().require(system_type)?;
        let now = self.clock.now();
        let id = SystemId::new();
        let system = System {
            id,
            name: new.name.clone(),
            hostname,
            port: new.port.unwrap_or_else(|| system_type.default_port()),
            system_type,
            username: new.username,
            credential: self.seal(id, &new.credential)?,
            tags: new.tags,
            active: true,
            health: Health::default(),
            host_key_policy: new.host_key_policy.unwrap_or_default(),
            options: new.options,
            created_at: now,
            updated_at: now,
        };
        if system.host_key_policy == crate::model::HostKeyPolicy::Insecure {
            tracing::warn!(system = %system.name, "system registered with host_key_policy=insecure: its SSH host key will NOT be verified");
        }
        let audit = self.audit(
            p,
            "system",
            Some(id.to_string()),
            "create",
            serde_json::json!({
                "name": system.name, "hostname": system.hostname, "port": system.port,
                "type": system_type.as_str(), "credential": new.credential.kind(),
                "tags": system.tags, "host_key_policy": system.host_key_policy.as_str(),
            }),
        );
        let r = self.store.create_system(&system, &audit).await;
        self.wrote(p, &audit, r)?;
        Ok(system)
    }

    /// Register the `local` system if it does not exist; returns it.
    pub async fn ensure_local_system(&self, p: &(impl AsActor + ?Sized)) -> Result<System> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        match self.store.find_system("local").await {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let r = self
                    .add_system(
                        p,
                        NewSystem {
                            name: "local".into(),
                            system_type: Some(SystemType::Local),
                            tags: vec!["local".into()],
                            ..Default::default()
                        },
                    )
                    .await;
                match r {
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        self.store.find_system("local").await
                    }
                    r => r,
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A system by id or name.
    pub async fn get_system(
        &self,
        p: &(impl AsActor + ?Sized),
        id_or_name: &str,
    ) -> Result<System> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let s = self.resolve_system(id_or_name).await?;
        policy::check(p, Action::SystemRead, Some(&s))?;
        Ok(s)
    }

    /// Systems matching `filter` that the principal may see, by name.
    pub async fn list_systems(
        &self,
        p: &(impl AsActor + ?Sized),
        filter: &SystemFilter,
        page: Page,
    ) -> Result<Vec<System>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        Page::new(page.offset, page.limit)?;
        policy::check(p, Action::SystemRead, None)?;
        if p.role == crate::model::Role::Admin {
            return self.store.list_systems(filter, page).await;
        }
        // Scoped principals: filter by policy, paging over the visible systems.
        let mut out = Vec::new();
        let mut skipped = 0u64;
        let mut offset = 0u64;
        loop {
            let batch = self
                .store
                .list_systems(
                    filter,
                    Page {
                        offset,
                        limit: Page::MAX_LIMIT,
                    },
                )
                .await?;
            let n = batch.len();
            for s in batch {
                if policy::in_scope(p, &s) {
                    if skipped < page.offset {
                        skipped += 1;
                    } else {
                        out.push(s);
                        if out.len() as u32 >= page.limit {
                            return Ok(out);
                        }
                    }
                }
            }
            if n < Page::MAX_LIMIT as usize {
                return Ok(out);
            }
            offset += n as u64;
        }
    }

    /// Change a system.
    pub async fn update_system(
        &self,
        p: &(impl AsActor + ?Sized),
        id_or_name: &str,
        patch: SystemPatch,
    ) -> Result<System> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let mut s = self.resolve_system(id_or_name).await?;
        self.authorize(
            p,
            Action::SystemUpdate,
            Some(&s),
            ("system", Some(s.id.to_string())),
        )
        .await?;
        let mut changed = serde_json::Map::new();
        if let Some(h) = patch.hostname {
            validate_hostname(&h)?;
            changed.insert("hostname".into(), h.clone().into());
            s.hostname = h;
        }
        if let Some(port) = patch.port {
            changed.insert("port".into(), port.into());
            s.port = port;
        }
        if let Some(u) = patch.username {
            crate::text::printable("username", &u)?;
            changed.insert("username".into(), u.clone().into());
            s.username = u;
        }
        if let Some(c) = &patch.credential {
            changed.insert(
                "credential".into(),
                format!("replaced ({})", c.kind()).into(),
            );
            s.credential = self.seal(s.id, c)?;
        }
        if let Some(t) = patch.tags {
            validate_tags(&t)?;
            changed.insert("tags".into(), serde_json::json!(t));
            s.tags = t;
        }
        if let Some(a) = patch.active {
            changed.insert("active".into(), a.into());
            s.active = a;
        }
        if let Some(h) = patch.host_key_policy {
            changed.insert("host_key_policy".into(), h.as_str().into());
            s.host_key_policy = h;
        }
        if let Some(o) = patch.options {
            validate_options(&o)?;
            changed.insert("options".into(), serde_json::json!(o));
            s.options = o;
        }
        s.updated_at = self.clock.now();
        let audit = self.audit(
            p,
            "system",
            Some(s.id.to_string()),
            "update",
            serde_json::json!({"name": s.name, "changed": changed}),
        );
        let r = self.store.update_system(&s, &audit).await;
        self.wrote(p, &audit, r)?;
        Ok(s)
    }

    /// Remove a system (refused while it has unfinished executions).
    pub async fn remove_system(&self, p: &(impl AsActor + ?Sized), id_or_name: &str) -> Result<()> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let s = self.resolve_system(id_or_name).await?;
        self.authorize(
            p,
            Action::SystemDelete,
            Some(&s),
            ("system", Some(s.id.to_string())),
        )
        .await?;
        let audit = self.audit(
            p,
            "system",
            Some(s.id.to_string()),
            "delete",
            serde_json::json!({"name": s.name}),
        );
        let r = self.store.delete_system(s.id, &audit).await;
        self.wrote(p, &audit, r)
    }

    /// Probe a system now and record its health.
    pub async fn probe_system(
        &self,
        p: &(impl AsActor + ?Sized),
        id_or_name: &str,
    ) -> Result<Health> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let s = self.resolve_system(id_or_name).await?;
        self.authorize(
            p,
            Action::SystemProbe,
            Some(&s),
            ("system", Some(s.id.to_string())),
        )
        .await?;
        self.engine.probe(&s).await
    }

    /// The systems whose stored credential is sealed under a key other than `not_under` (every
    /// one for `""`), at most `limit`, with the id of the key that seals each (admins; for
    /// key rotation and retirement). No secret leaves.
    pub async fn credential_keys(
        &self,
        p: &(impl AsActor + ?Sized),
        not_under: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, Option<String>)>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        policy::check(p, Action::KeyManage, None)?;
        Ok(self
            .store
            .list_sealed_not_under(not_under, limit)
            .await?
            .into_iter()
            .map(|(id, sealed)| (id, sealed.key_id().map(str::to_string)))
            .collect())
    }

    /// Re-encrypt every credential not under the primary key. Safe to interrupt and run again:
    /// each credential is swapped atomically, and a pass picks up where the last one stopped.
    pub async fn reencrypt_credentials(
        &self,
        p: &(impl AsActor + ?Sized),
    ) -> Result<ReencryptReport> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        self.authorize(p, Action::KeyManage, None, ("key", None))
            .await?;
        let primary = self.vault.primary_id().to_string();
        let mut report = ReencryptReport::default();
        loop {
            let batch = self.store.list_sealed_not_under(&primary, 200).await?;
            if batch.is_empty() {
                break;
            }
            let mut progressed = false;
            for (id, old) in batch {
                let plain = self.vault.open(&id.to_string(), &old)?;
                let new = self.vault.seal(&id.to_string(), &plain)?;
                if self.store.reseal(id, &old, &new).await? {
                    report.reencrypted += 1;
                    progressed = true;
                } else {
                    report.skipped += 1;
                }
            }
            if !progressed {
                break;
            }
        }
        let audit = self.audit(
            p,
            "key",
            Some(primary.clone()),
            "reencrypt",
            serde_json::json!({"primary": primary, "reencrypted": report.reencrypted, "skipped": report.skipped}),
        );
        self.append_audit(p, &audit).await?;
        Ok(report)
    }
}
