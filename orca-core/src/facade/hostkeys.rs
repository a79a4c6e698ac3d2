//! Host key pins through the Store, shared by every node and audited.

use std::sync::Arc;

use async_trait::async_trait;

use super::Orca;
use crate::clock::Clock;
use crate::connector::HostKeyStore;
use crate::ids::{HostKeyId, SystemId};
use crate::model::{AuditRecord, HostKey, Principal};
use crate::policy::Action;
use crate::store::Store;
use crate::{Error, Result};

/// [`HostKeyStore`] backed by a [`Store`]; trust-on-first-use pins are audited as the engine.
#[derive(Debug)]
pub struct StoreHostKeys {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl StoreHostKeys {
    /// Over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        StoreHostKeys { store, clock }
    }
}

fn validate_fingerprint(algorithm: &str, fingerprint: &str) -> Result<()> {
    if algorithm.trim().is_empty() || algorithm.len() > 64 {
        return Err(Error::invalid(
            "a host key needs its algorithm, e.g. ssh-ed25519",
        ));
    }
    let ok = fingerprint.strip_prefix("SHA256:").is_some_and(|b| {
        !b.is_empty()
            && b.len() <= 64
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
    });
    if !ok {
        return Err(Error::invalid(format!(
            "'{fingerprint}' is not an OpenSSH SHA256 fingerprint (SHA256:<base64>, as `ssh-keygen -lf` prints)"
        )));
    }
    Ok(())
}

#[async_trait]
impl HostKeyStore for StoreHostKeys {
    async fn pinned(&self, system: SystemId) -> Result<Vec<HostKey>> {
        self.store.list_host_keys(system).await
    }
    async fn pin_first(
        &self,
        system: SystemId,
        algorithm: &str,
        fingerprint: &str,
    ) -> Result<Vec<HostKey>> {
        validate_fingerprint(algorithm, fingerprint)?;
        let key = HostKey {
            id: HostKeyId::new(),
            system_id: system,
            algorithm: algorithm.to_string(),
            fingerprint: fingerprint.to_string(),
            created_at: self.clock.now(),
        };
        let audit = AuditRecord::new(
            self.clock.now(),
            &Principal::system("engine"),
            "host_key",
            Some(system.to_string()),
            "pin_tofu",
            serde_json::json!({"algorithm": algorithm, "fingerprint": fingerprint}),
        );
        self.store.pin_host_key_if_none(&key, &audit).await
    }
}

impl Orca {
    /// The host keys pinned for a system.
    pub async fn host_keys(&self, p: &Principal, system: &str) -> Result<Vec<HostKey>> {
        let s = self.get_system(p, system).await?;
        self.store.list_host_keys(s.id).await
    }

    /// Approve (pin) a host key for a system that has none pinned; if one is pinned already,
    /// `Conflict` (use [`Orca::replace_host_keys`]).
    pub async fn approve_host_key(
        &self,
        p: &Principal,
        system: &str,
        algorithm: &str,
        fingerprint: &str,
    ) -> Result<HostKey> {
        let s = self.resolve_system(system).await?;
        self.authorize(
            p,
            Action::HostKeyManage,
            Some(&s),
            ("host_key", Some(s.id.to_string())),
        )
        .await?;
        validate_fingerprint(algorithm, fingerprint)?;
        let key = HostKey {
            id: HostKeyId::new(),
            system_id: s.id,
            algorithm: algorithm.to_string(),
            fingerprint: fingerprint.to_string(),
            created_at: self.clock.now(),
        };
        let audit = self.audit(
            p,
            "host_key",
            Some(s.id.to_string()),
            "approve",
            serde_json::json!({"system": s.name, "algorithm": algorithm, "fingerprint": fingerprint}),
        );
        let pinned = self.store.pin_host_key_if_none(&key, &audit).await?;
        match pinned.iter().find(|k| k.id == key.id) {
            Some(k) => Ok(k.clone()),
            None => Err(Error::conflict(format!(
                "system '{}' already has a pinned host key ({}); replace it explicitly",
                s.name,
                pinned
                    .iter()
                    .map(|k| k.fingerprint.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Replace every pinned key of a system (after a legitimate key change).
    pub async fn replace_host_keys(
        &self,
        p: &Principal,
        system: &str,
        keys: &[(String, String)],
    ) -> Result<Vec<HostKey>> {
        let s = self.resolve_system(system).await?;
        self.authorize(
            p,
            Action::HostKeyManage,
            Some(&s),
            ("host_key", Some(s.id.to_string())),
        )
        .await?;
        let mut new = Vec::new();
        for (alg, fp) in keys {
            validate_fingerprint(alg, fp)?;
            new.push(HostKey {
                id: HostKeyId::new(),
                system_id: s.id,
                algorithm: alg.clone(),
                fingerprint: fp.clone(),
                created_at: self.clock.now(),
            });
        }
        let audit = self.audit(
            p,
            "host_key",
            Some(s.id.to_string()),
            "replace",
            serde_json::json!({"system": s.name, "fingerprints": keys.iter().map(|k| &k.1).collect::<Vec<_>>()}),
        );
        self.store.replace_host_keys(s.id, &new, &audit).await?;
        Ok(new)
    }
}
