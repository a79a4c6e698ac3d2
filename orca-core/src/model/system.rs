use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;

use super::Timestamp;
use crate::ids::{HostKeyId, SystemId};

/// How Orca reaches a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemType {
    /// A Linux (or other POSIX) host over SSH.
    Linux,
    /// A Windows host over WinRM.
    Windows,
    /// The machine Orca runs on, through a local process.
    Local,
}

impl SystemType {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            SystemType::Linux => "linux",
            SystemType::Windows => "windows",
            SystemType::Local => "local",
        }
    }
    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "linux" => Ok(Self::Linux),
            "windows" => Ok(Self::Windows),
            "local" => Ok(Self::Local),
            o => Err(crate::Error::invalid(format!(
                "unknown system type '{o}': use linux, windows or local"
            ))),
        }
    }
    /// The port used when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            SystemType::Linux => 22,
            SystemType::Windows => 5985,
            SystemType::Local => 0,
        }
    }
}

/// Last known health of a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Never probed.
    Unknown,
    /// The last probe succeeded.
    Healthy,
    /// The last probe failed.
    Unhealthy,
}

impl HealthStatus {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "unknown",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "unknown" => Ok(Self::Unknown),
            "healthy" => Ok(Self::Healthy),
            "unhealthy" => Ok(Self::Unhealthy),
            o => Err(crate::Error::invalid(format!(
                "unknown health status '{o}'"
            ))),
        }
    }
}

/// The result of a health probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// Status.
    pub status: HealthStatus,
    /// When it was checked.
    pub checked_at: Option<Timestamp>,
    /// Round-trip latency of the probe in milliseconds.
    pub latency_ms: Option<u64>,
    /// Why it failed.
    pub reason: Option<String>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            status: HealthStatus::Unknown,
            checked_at: None,
            latency_ms: None,
            reason: None,
        }
    }
}

/// What to do with an SSH host key that is not pinned yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyPolicy {
    /// The key must match a pinned fingerprint (default).
    #[default]
    Strict,
    /// Pin the key seen on first contact; refuse a changed key afterwards.
    Tofu,
    /// Accept any key (explicit operator choice; logged loudly).
    Insecure,
}

impl HostKeyPolicy {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyPolicy::Strict => "strict",
            HostKeyPolicy::Tofu => "tofu",
            HostKeyPolicy::Insecure => "insecure",
        }
    }
    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "strict" => Ok(Self::Strict),
            "tofu" => Ok(Self::Tofu),
            "insecure" => Ok(Self::Insecure),
            o => Err(crate::Error::invalid(format!(
                "unknown host key policy '{o}': use strict, tofu or insecure"
            ))),
        }
    }
}

/// A pinned SSH host key of a system.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostKey {
    /// Id.
    pub id: HostKeyId,
    /// The system.
    pub system_id: SystemId,
    /// Key algorithm, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:<base64>` fingerprint, as OpenSSH prints it.
    pub fingerprint: String,
    /// When it was pinned.
    pub created_at: Timestamp,
}

/// An encrypted credential as stored: `orca1:<key id>:<fernet token>`. Opaque outside the vault.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(pub String);

impl SealedSecret {
    /// The id of the key that encrypted it, if the format is recognised.
    pub fn key_id(&self) -> Option<&str> {
        let rest = self.0.strip_prefix("orca1:")?;
        rest.split_once(':').map(|(k, _)| k)
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecret(key={:?}, ..)", self.key_id())
    }
}

/// A credential in clear, held only in memory as secrecy types.
#[derive(Clone, Default)]
pub enum Credential {
    /// No secret (the `local` system, or agent-less auth).
    #[default]
    None,
    /// A password.
    Password(SecretString),
    /// A private key (OpenSSH or PEM text) and its optional passphrase.
    PrivateKey {
        /// The key text.
        key: SecretString,
        /// The passphrase, if the key is encrypted.
        passphrase: Option<SecretString>,
    },
}

impl Credential {
    /// A short name of the variant, safe to log.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::Password(_) => "password",
            Credential::PrivateKey { .. } => "private_key",
        }
    }
    /// The secret strings this credential holds (for output masking).
    pub fn secrets(&self) -> Vec<&SecretString> {
        match self {
            Credential::None => vec![],
            Credential::Password(p) => vec![p],
            Credential::PrivateKey { key, passphrase } => {
                let mut v = vec![key];
                v.extend(passphrase.iter());
                v
            }
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential::{}(***)", self.kind())
    }
}

/// A registered target machine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct System {
    /// Id.
    pub id: SystemId,
    /// Unique name.
    pub name: String,
    /// Host name or address.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Type.
    pub system_type: SystemType,
    /// Login user name.
    pub username: String,
    /// The encrypted credential, if any. Never leaves through an API.
    #[serde(skip_serializing)]
    #[serde(default)]
    pub credential: Option<SealedSecret>,
    /// Tags used to select systems.
    pub tags: Vec<String>,
    /// Inactive systems are not selected by tags nor probed.
    pub active: bool,
    /// Last health.
    pub health: Health,
    /// SSH host key policy.
    pub host_key_policy: HostKeyPolicy,
    /// Connector-specific settings (e.g. WinRM transport); never secrets.
    pub options: BTreeMap<String, String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last updated.
    pub updated_at: Timestamp,
}

/// What a caller gives to register a system.
#[derive(Debug, Clone, Default)]
pub struct NewSystem {
    /// Unique name.
    pub name: String,
    /// Host name or address (defaults to the name; `localhost` for local).
    pub hostname: Option<String>,
    /// Port (defaults by type).
    pub port: Option<u16>,
    /// Type.
    pub system_type: Option<SystemType>,
    /// Login user (empty for local).
    pub username: String,
    /// Credential in clear; the facade encrypts it.
    pub credential: Credential,
    /// Tags.
    pub tags: Vec<String>,
    /// Host key policy (strict if not given).
    pub host_key_policy: Option<HostKeyPolicy>,
    /// Connector-specific options.
    pub options: BTreeMap<String, String>,
}

/// A partial update of a system; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct SystemPatch {
    /// New host name.
    pub hostname: Option<String>,
    /// New port.
    pub port: Option<u16>,
    /// New user name.
    pub username: Option<String>,
    /// New credential.
    pub credential: Option<Credential>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// Active flag.
    pub active: Option<bool>,
    /// Host key policy.
    pub host_key_policy: Option<HostKeyPolicy>,
    /// Options (replaces all).
    pub options: Option<BTreeMap<String, String>>,
}

/// Filter for system listings. Empty fields match everything. Ordered by name.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SystemFilter {
    /// Systems that carry any of these tags.
    pub tags: Vec<String>,
    /// Only this type.
    pub system_type: Option<SystemType>,
    /// Only this health status.
    pub health: Option<HealthStatus>,
    /// Only active (true) or inactive (false) systems.
    pub active: Option<bool>,
    /// Name contains this text.
    pub name_contains: Option<String>,
}

impl SystemFilter {
    /// Whether `s` passes the filter.
    pub fn matches(&self, s: &System) -> bool {
        (self.tags.is_empty() || self.tags.iter().any(|t| s.tags.contains(t)))
            && self.system_type.is_none_or(|t| s.system_type == t)
            && self.health.is_none_or(|h| s.health.status == h)
            && self.active.is_none_or(|a| s.active == a)
            && self
                .name_contains
                .as_ref()
                .is_none_or(|n| s.name.contains(n.as_str()))
    }
}
