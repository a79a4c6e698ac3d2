//! Host key pins through the Store, shared by every node and audited.

use crate::actor::{Actor, AsActor};
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

/// Check a host key given as a full OpenSSH SHA256 fingerprint (`SHA256:` and the 43
/// characters of unpadded base64 of a 32-byte digest, as `ssh-keygen -lf` prints) or as a public
/// key (`ssh-ed25519 AAAA... [comment]`, as in `*.pub` files and `known_hosts`); returns the
/// fingerprint.
pub fn normalize_fingerprint(algorithm: &str, fingerprint: &str) -> Result<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    crate::text::printable("algorithm", algorithm)?;
    crate::text::printable("fingerprint", fingerprint)?;
    if algorithm.trim().is_empty() || algorithm.len() > 64 {
        return Err(Error::invalid(
            "a host key needs its algorithm, e.g. ssh-ed25519",
        ));
    }
    let fp = fingerprint.trim();
    if let Some(b) = fp.strip_prefix("SHA256:") {
        let b = b.trim_end_matches('=');
        if b.len() == 43 && STANDARD_NO_PAD.decode(b).is_ok_and(|d| d.len() == 32) {
            return Ok(format!("SHA256:{b}"));
        }
        return Err(Error::invalid(format!(
            "fingerprint {fp:?} is not a full OpenSSH SHA256 fingerprint: SHA256: and 43 \
             characters of base64 (a 32-byte digest), as `ssh-keygen -lf` prints"
        )));
    }
    let mut parts = fp.split_whitespace();
    if let (Some(kind), Some(blob)) = (parts.next(), parts.next())
        && let Ok(raw) = STANDARD.decode(blob)
    {
        // The blob starts with the key type as an SSH string (4-byte length, then the name).
        let named = raw
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .and_then(|n| raw.get(4..4 + n));
        if named != Some(kind.as_bytes()) {
            return Err(Error::invalid(format!(
                "fingerprint: the public key's data does not start with its type '{kind}'"
            )));
        }
        if kind != algorithm {
            return Err(Error::invalid(format!(
                "fingerprint: the public key is of type '{kind}', not '{algorithm}'"
            )));
        }
        use sha2::Digest;
        return Ok(format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(sha2::Sha256::digest(&raw))
        ));
    }
    Err(Error::invalid(format!(
        "fingerprint {fp:?} is neither an OpenSSH SHA256 fingerprint (SHA256:<base64>, as \
         `ssh-keygen -lf` prints) nor a public key ('ssh-ed25519 AAAA...')"
    )))
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
        let fingerprint = &normalize_fingerprint(algorithm, fingerprint)?;
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
    pub async fn host_keys(
        &self,
        p: &(impl AsActor + ?Sized),
        system: &str,
    ) -> Result<Vec<HostKey>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let s = self.get_system(p, system).await?;
        self.store.list_host_keys(s.id).await
    }

    /// Approve (pin) a host key for a system that has none pinned; if one is pinned already,
    /// `Conflict` (use [`Orca::replace_host_keys`]).
    pub async fn approve_host_key(
        &self,
        p: &(impl AsActor + ?Sized),
        system: &str,
        algorithm: &str,
        fingerprint: &str,
    ) -> Result<HostKey> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let s = self.resolve_system(system).await?;
        self.authorize(
            p,
            Action::HostKeyManage,
            Some(&s),
            ("host_key", Some(s.id.to_string())),
        )
        .await?;
        let fingerprint = &normalize_fingerprint(algorithm, fingerprint)?;
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
        let r = self.store.pin_host_key_if_none(&key, &audit).await;
        let pinned = self.wrote(p, &audit, r)?;
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
        p: &(impl AsActor + ?Sized),
        system: &str,
        keys: &[(String, String)],
    ) -> Result<Vec<HostKey>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
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
            let fp = normalize_fingerprint(alg, fp)?;
            new.push(HostKey {
                id: HostKeyId::new(),
                system_id: s.id,
                algorithm: alg.clone(),
                fingerprint: fp,
                created_at: self.clock.now(),
            });
        }
        let audit = self.audit(
            p,
            "host_key",
            Some(s.id.to_string()),
            "replace",
            serde_json::json!({"system": s.name, "fingerprints": new.iter().map(|k| &k.fingerprint).collect::<Vec<_>>()}),
        );
        let r = self.store.replace_host_keys(s.id, &new, &audit).await;
        self.wrote(p, &audit, r)?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_fingerprint;

    // `ssh-keygen -lf` of this key prints FP.
    const PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq9YIPtZWPbLtvv3t7QI5cB6Vx/Lx6tCHTuwJCsoo/R test";
    const FP: &str = "SHA256:/jkrb8HU2ZDopA5mOeBMlXCr6V334s3XJZRJly8mzIA";

    #[test]
    fn fingerprints_are_full_or_computed_from_a_public_key() {
        let fp = normalize_fingerprint("ssh-ed25519", PUB).unwrap();
        assert_eq!(fp, FP);
        assert_eq!(normalize_fingerprint("ssh-ed25519", &fp).unwrap(), fp);
        assert_eq!(
            normalize_fingerprint("ssh-ed25519", &format!("{fp}=")).unwrap(),
            fp
        );
        for bad in [
            "SHA256:C",
            "SHA256:",
            "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2",
            "MD5:aa:bb",
            "ssh-ed25519 !!!",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIBq9YIPtZWPbLtvv3t7QI5cB6Vx/Lx6tCHTuwJCsoo/R",
            "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\n",
        ] {
            assert!(
                normalize_fingerprint("ssh-ed25519", bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(normalize_fingerprint("ssh-rsa", PUB).is_err());
    }
}
