//! Systems, their credentials and host keys.

use async_trait::async_trait;

use super::MemoryStore;
use super::state::{State, paginate};
use crate::ids::SystemId;
use crate::model::{AuditRecord, Health, HostKey, Page, SealedSecret, System, SystemFilter};
use crate::{Error, Result, SystemStore};

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
}

#[async_trait]
impl SystemStore for MemoryStore {
    async fn create_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        self.lock().create_system(system, audit)
    }
    async fn update_system(&self, system: &System, audit: &AuditRecord) -> Result<()> {
        self.lock().update_system(system, audit)
    }
    async fn delete_system(&self, id: SystemId, audit: &AuditRecord) -> Result<()> {
        self.lock().delete_system(id, audit)
    }
    async fn get_system(&self, id: SystemId) -> Result<System> {
        self.lock().system(id).cloned()
    }
    async fn find_system(&self, name: &str) -> Result<System> {
        let s = self.lock();
        s.system_names
            .get(name)
            .and_then(|id| s.systems.get(id))
            .cloned()
            .ok_or_else(|| crate::Error::not_found(format!("no system named '{name}'")))
    }
    async fn list_systems(&self, filter: &SystemFilter, page: Page) -> Result<Vec<System>> {
        Ok(self.lock().list_systems(filter, page))
    }
    async fn record_health(&self, id: SystemId, health: &Health) -> Result<()> {
        self.lock().record_health(id, health)
    }
    async fn list_sealed_not_under(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<(SystemId, SealedSecret)>> {
        Ok(self.lock().list_sealed_not_under(key_id, limit))
    }
    async fn reseal(&self, id: SystemId, old: &SealedSecret, new: &SealedSecret) -> Result<bool> {
        self.lock().reseal(id, old, new)
    }

    async fn list_host_keys(&self, system: SystemId) -> Result<Vec<HostKey>> {
        Ok(self
            .lock()
            .host_keys
            .get(&system)
            .cloned()
            .unwrap_or_default())
    }
    async fn pin_host_key_if_none(
        &self,
        key: &HostKey,
        audit: &AuditRecord,
    ) -> Result<Vec<HostKey>> {
        self.lock().pin_host_key_if_none(key, audit)
    }
    async fn replace_host_keys(
        &self,
        system: SystemId,
        keys: &[HostKey],
        audit: &AuditRecord,
    ) -> Result<()> {
        self.lock().replace_host_keys(system, keys, audit)
    }
}
