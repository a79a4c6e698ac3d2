//! Host key verification: runs inside the key exchange, before any credential is sent.

use std::sync::Arc;

use orca_core::ids::SystemId;
use orca_core::model::{HostKey, HostKeyPolicy};
use orca_core::{Error, ErrorKind, HostKeyStore, Result};
use russh::keys::{Algorithm, HashAlg, PublicKey};

/// `SHA256:<base64 without padding>`, as `ssh-keygen -l` and `ssh` print it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The key's algorithm name as OpenSSH writes it in `known_hosts` (`ssh-ed25519`, `ssh-rsa`...).
pub fn algorithm(key: &PublicKey) -> String {
    key.algorithm().as_str().to_string()
}

/// Everything needed to judge the key a server offers.
#[derive(Debug, Clone)]
pub(crate) struct HostKeyCheck {
    pub system: SystemId,
    /// `name (host:port)`, for messages.
    pub label: String,
    pub policy: HostKeyPolicy,
    pub store: Option<Arc<dyn HostKeyStore>>,
    /// The pins read before connecting.
    pub pinned: Vec<HostKey>,
}

impl HostKeyCheck {
    /// Read the pins of the system (skipped under `insecure`).
    pub(crate) async fn load(
        system: SystemId,
        label: String,
        policy: HostKeyPolicy,
        store: Option<Arc<dyn HostKeyStore>>,
    ) -> Result<Self> {
        let pinned = match (&store, policy) {
            (Some(s), HostKeyPolicy::Strict | HostKeyPolicy::Tofu) => s.pinned(system).await?,
            _ => Vec::new(),
        };
        Ok(HostKeyCheck {
            system,
            label,
            policy,
            store,
            pinned,
        })
    }

    /// Host key algorithms in the order to offer them: the families of pinned keys first, so a
    /// server with several host keys shows the one we know.
    pub(crate) fn preferred_algorithms(&self) -> Vec<Algorithm> {
        let default: &[Algorithm] = &russh::Preferred::DEFAULT.key;
        if self.pinned.is_empty() {
            return default.to_vec();
        }
        let pinned_family = |a: &Algorithm| {
            self.pinned
                .iter()
                .any(|p| match Algorithm::new(&p.algorithm) {
                    Ok(Algorithm::Rsa { .. }) => matches!(a, Algorithm::Rsa { .. }),
                    Ok(pa) => &pa == a,
                    Err(_) => false,
                })
        };
        let mut out: Vec<Algorithm> = default
            .iter()
            .filter(|a| pinned_family(a))
            .cloned()
            .collect();
        out.extend(default.iter().filter(|a| !pinned_family(a)).cloned());
        out
    }

    /// Accept or refuse `key`. Under `tofu` with nothing pinned, pins it (atomically through
    /// the store: when two first contacts race, one key wins and the other is refused unless
    /// it is the same key).
    pub(crate) async fn verify(&self, key: &PublicKey) -> Result<()> {
        let fp = fingerprint(key);
        let alg = algorithm(key);
        if self.policy == HostKeyPolicy::Insecure {
            tracing::warn!(
                system = %self.system,
                target_host = %self.label,
                algorithm = %alg,
                fingerprint = %fp,
                "SSH host key NOT VERIFIED: host key policy is 'insecure' for this system; \
                 anyone on the network path can impersonate it"
            );
            return Ok(());
        }
        if !self.pinned.is_empty() {
            return self.check_against(&self.pinned, &alg, &fp);
        }
        let Some(store) = &self.store else {
            return Err(self.rejected(format!(
                "cannot verify the host key of {}: no host key store is configured (the server \
                 offered {alg} {fp})",
                self.label
            )));
        };
        match self.policy {
            HostKeyPolicy::Tofu => {
                let after = store.pin_first(self.system, &alg, &fp).await?;
                self.check_against(&after, &alg, &fp)?;
                tracing::info!(
                    system = %self.system,
                    target_host = %self.label,
                    algorithm = %alg,
                    fingerprint = %fp,
                    "SSH host key pinned on first use (policy tofu)"
                );
                Ok(())
            }
            _ => Err(self.rejected(format!(
                "the host key of {} is unknown: the server offered {alg} {fp} and policy \
                 'strict' accepts only pinned keys. Compare it with `ssh-keygen -lf \
                 /etc/ssh/ssh_host_*_key.pub` on the host, then pin it (or set the system's \
                 host key policy to 'tofu')",
                self.label
            ))),
        }
    }

    fn check_against(&self, pins: &[HostKey], alg: &str, fp: &str) -> Result<()> {
        if pins.iter().any(|p| p.fingerprint == fp) {
            return Ok(());
        }
        let known: Vec<String> = pins
            .iter()
            .map(|p| format!("{} {}", p.algorithm, p.fingerprint))
            .collect();
        Err(self.rejected(format!(
            "HOST KEY MISMATCH for {}: the server offered {alg} {fp}, but the pinned key is {}. \
             Someone may be impersonating the host. If the host was re-keyed on purpose, check \
             the new fingerprint on the host and replace the pin",
            self.label,
            known.join(", ")
        )))
    }

    fn rejected(&self, msg: String) -> Error {
        Error::new(ErrorKind::HostKeyRejected, msg).with_system(self.system)
    }
}
