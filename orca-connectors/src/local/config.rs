//! Settings of the local connector.

use std::path::PathBuf;
use std::time::Duration;

/// Environment variables copied from the Orca process into every local command by default.
///
/// Everything else in Orca's own environment (database URLs, `ORCA_*` key material...) is kept
/// away from the commands users run: a local command sees only these, the job's `env` and
/// `ORCA_EXECUTION_ID`.
pub const DEFAULT_ENV_PASSTHROUGH: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
];

/// The user local commands run as when Orca runs as root (see [`LocalConfig::user`]).
pub const DEFAULT_USER: &str = "nobody";

/// The `PATH` a command gets when Orca's own environment has none.
pub const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the local connector runs commands.
///
/// Durations are written in milliseconds in configuration files (`kill_grace_ms`...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// After `SIGTERM`, how long the process group may take to exit before it gets `SIGKILL`.
    #[serde(rename = "kill_grace_ms", with = "millis")]
    pub kill_grace: Duration,
    /// After `SIGKILL`, how long to wait for the process group to disappear before reporting
    /// the kill as unconfirmed.
    #[serde(rename = "kill_confirm_ms", with = "millis")]
    pub kill_confirm: Duration,
    /// After the command's main process exits, how long leftover processes that still hold
    /// its stdout/stderr may keep writing before the process group is killed.
    #[serde(rename = "drain_grace_ms", with = "millis")]
    pub drain_grace: Duration,
    /// The longest a probe (`true`) may take before the system is reported unhealthy.
    #[serde(rename = "probe_timeout_ms", with = "millis")]
    pub probe_timeout: Duration,
    /// The POSIX shell for `Shell::Default` and `Shell::Sh`.
    pub sh_path: PathBuf,
    /// The shell for `Shell::Bash`.
    pub bash_path: PathBuf,
    /// Bytes read from a pipe at a time (one output piece at most this big).
    pub read_chunk: usize,
    /// Names of variables copied from Orca's environment into commands (see
    /// [`DEFAULT_ENV_PASSTHROUGH`]).
    pub env_passthrough: Vec<String>,
    /// The user that commands run as when Orca itself runs as root (default `nobody`):
    /// privileges are dropped to its uid and primary group (no supplementary groups) before
    /// the shell starts, so a command cannot read Orca's data directory. A user that resolves
    /// to uid 0 is refused unless [`LocalConfig::allow_root`] is set. When Orca does not run as
    /// root, commands run as Orca's own user and this is not used.
    pub user: String,
    /// Whether [`LocalConfig::user`] may be root (uid 0), so that commands run with all of
    /// Orca's privileges, its secrets included. Off by default.
    pub allow_root: bool,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            kill_grace: Duration::from_secs(2),
            kill_confirm: Duration::from_secs(2),
            drain_grace: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(5),
            sh_path: PathBuf::from("/bin/sh"),
            bash_path: PathBuf::from("/bin/bash"),
            read_chunk: 32 * 1024,
            env_passthrough: DEFAULT_ENV_PASSTHROUGH
                .iter()
                .map(|s| s.to_string())
                .collect(),
            user: DEFAULT_USER.to_string(),
            allow_root: false,
        }
    }
}

impl LocalConfig {
    /// Check the settings; a bad value is `InvalidInput` naming the field.
    pub fn validate(&self) -> orca_core::Result<()> {
        if self.read_chunk == 0 || self.read_chunk > 16 * 1024 * 1024 {
            return Err(orca_core::Error::invalid(format!(
                "local connector: read_chunk must be between 1 byte and 16 MiB, got {}",
                self.read_chunk
            )));
        }
        for (field, path) in [("sh_path", &self.sh_path), ("bash_path", &self.bash_path)] {
            if !path.is_absolute() {
                return Err(orca_core::Error::invalid(format!(
                    "local connector: {field} must be an absolute path, got '{}'",
                    path.display()
                )));
            }
        }
        if self.user.is_empty() || self.user.contains(['\0', ':', '/']) {
            return Err(orca_core::Error::invalid(format!(
                "local connector: user must be a user name, got {:?}",
                self.user
            )));
        }
        Ok(())
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_through_json() {
        let c = LocalConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["kill_grace_ms"], 2000);
        assert_eq!(json["user"], "nobody");
        assert_eq!(json["allow_root"], false);
        let back: LocalConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let err = serde_json::from_str::<LocalConfig>(r#"{"kill_grace": 5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let c: LocalConfig = serde_json::from_str(r#"{"read_chunk": 0}"#).unwrap();
        let err = c.validate().unwrap_err();
        assert_eq!(err.kind(), orca_core::ErrorKind::InvalidInput);
        assert!(err.message().contains("read_chunk"));
        let c: LocalConfig = serde_json::from_str(r#"{"sh_path": "sh"}"#).unwrap();
        assert!(c.validate().unwrap_err().message().contains("sh_path"));
        let c: LocalConfig = serde_json::from_str(r#"{"user": ""}"#).unwrap();
        assert!(c.validate().unwrap_err().message().contains("user"));
    }
}
