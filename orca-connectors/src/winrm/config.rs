//! WinRM settings of a system, read from `System::options` (never secrets).
//!
//! | option | values | default |
//! |---|---|---|
//! | `transport` | `ntlm`, `basic` | `ntlm` |
//! | `scheme` | `http`, `https` | `https` on port 5986, else `http` |
//! | `path` | URL path | `/wsman` |
//! | `ca_file` | PEM file of trusted CA certificates (replaces the system roots) | system roots |
//! | `thumbprint` | SHA-1 (40 hex) or SHA-256 (64 hex) of the server certificate; pins it | none |
//! | `allow_unencrypted` | `true` to allow Basic over plain HTTP (logged loudly) | `false` |
//! | `codepage` | console code page of the shell | `65001` (UTF-8) |
//! | `working_dir` | working directory of the shell | the user's profile |
//! | `operation_timeout_secs` | WS-Management `OperationTimeout` of each Receive poll | `20` |
//! | `read_timeout_secs` | HTTP read timeout; must exceed the operation timeout | operation + 10 |
//! | `connect_timeout_secs` | TCP + TLS + authentication | `10` |
//! | `max_shells` | concurrent shells (and connections) per system and user | `8` |
//! | `shell_idle_secs` | reuse a shell only if used within this many seconds | `120` |
//! | `locale` | `xml:lang` of requests | `en-US` |
//! | `max_envelope_size` | `MaxEnvelopeSize` in bytes | `512000` |

use std::collections::BTreeMap;
use std::time::Duration;

use orca_core::model::{System, SystemType};

use super::error::WinRmError;

/// How the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// NTLMv2 (sealed messages over HTTP).
    Ntlm,
    /// HTTP Basic (HTTPS, or HTTP with `allow_unencrypted`).
    Basic,
}

/// How the server certificate is checked (HTTPS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertCheck {
    /// The system's root store.
    SystemRoots,
    /// Only the CA certificates in this PEM file.
    CaFile(String),
    /// Only a certificate with this SHA-1 or SHA-256 digest (lowercase hex).
    Thumbprint(String),
}

/// Parsed settings of one system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WinRmConfig {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `true` for HTTPS.
    pub https: bool,
    /// URL path.
    pub path: String,
    /// Authentication.
    pub auth: AuthMethod,
    /// Certificate check (HTTPS only).
    pub cert: CertCheck,
    /// Operator allowed unencrypted traffic.
    pub allow_unencrypted: bool,
    /// Shell code page.
    pub codepage: u32,
    /// Shell working directory.
    pub working_dir: Option<String>,
    /// Receive poll timeout (WS-Management `OperationTimeout`).
    pub operation_timeout: Duration,
    /// HTTP read timeout.
    pub read_timeout: Duration,
    /// Connect + handshake timeout.
    pub connect_timeout: Duration,
    /// Concurrent shells per system and user.
    pub max_shells: usize,
    /// Reuse a shell only if it was used this recently.
    pub shell_idle: Duration,
    /// Locale.
    pub locale: String,
    /// `MaxEnvelopeSize`.
    pub max_envelope: u32,
}

const KNOWN: &[&str] = &[
    "transport",
    "scheme",
    "path",
    "ca_file",
    "thumbprint",
    "allow_unencrypted",
    "codepage",
    "working_dir",
    "operation_timeout_secs",
    "read_timeout_secs",
    "connect_timeout_secs",
    "max_shells",
    "shell_idle_secs",
    "locale",
    "max_envelope_size",
];

fn num<T: std::str::FromStr>(
    o: &BTreeMap<String, String>,
    k: &str,
    default: T,
) -> Result<T, WinRmError> {
    match o.get(k) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| WinRmError::Config(format!("option {k}='{v}' is not a valid number"))),
    }
}

impl WinRmConfig {
    /// Read the settings of `system`.
    pub fn from_system(system: &System) -> Result<Self, WinRmError> {
        if system.system_type != SystemType::Windows {
            return Err(WinRmError::Config(format!(
                "system '{}' is of type {}, the WinRM connector serves windows systems",
                system.name,
                system.system_type.as_str()
            )));
        }
        Self::from_options(&system.hostname, system.port, &system.options)
    }

    /// Read settings from a host, port and options map.
    pub fn from_options(
        host: &str,
        port: u16,
        o: &BTreeMap<String, String>,
    ) -> Result<Self, WinRmError> {
        if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(WinRmError::Config(format!(
                "unknown WinRM option '{k}': known options are {}",
                KNOWN.join(", ")
            )));
        }
        if host.trim().is_empty() {
            return Err(WinRmError::Config("the system has no host name".into()));
        }
        let port = if port == 0 { 5985 } else { port };
        let auth = match o
            .get("transport")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("ntlm") | Some("negotiate") => AuthMethod::Ntlm,
            Some("basic") => AuthMethod::Basic,
            Some("kerberos") => {
                return Err(WinRmError::Config(
                    "transport 'kerberos' is not supported yet: use ntlm or basic".into(),
                ));
            }
            Some(other) => {
                return Err(WinRmError::Config(format!(
                    "unknown transport '{other}': use ntlm or basic"
                )));
            }
        };
        let https = match o
            .get("scheme")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None => port == 5986,
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(WinRmError::Config(format!(
                    "unknown scheme '{other}': use http or https"
                )));
            }
        };
        let allow_unencrypted = match o
            .get("allow_unencrypted")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") | Some("no") | Some("0") => false,
            Some("true") | Some("yes") | Some("1") => true,
            Some(other) => {
                return Err(WinRmError::Config(format!(
                    "allow_unencrypted='{other}': use true or false"
                )));
            }
        };
        if auth == AuthMethod::Basic && !https && !allow_unencrypted {
            return Err(WinRmError::Config(
                "Basic authentication over plain HTTP sends the password in clear: use scheme=https, \
                 transport=ntlm, or set allow_unencrypted=true if you really mean it"
                    .into(),
            ));
        }
        let cert = match (o.get("ca_file"), o.get("thumbprint")) {
            (Some(_), Some(_)) => {
                return Err(WinRmError::Config(
                    "set either ca_file or thumbprint, not both".into(),
                ));
            }
            (Some(f), None) => CertCheck::CaFile(f.clone()),
            (None, Some(t)) => {
                let hex: String = t
                    .chars()
                    .filter(|c| !matches!(c, ':' | ' ' | '-'))
                    .collect::<String>()
                    .to_ascii_lowercase();
                if !(hex.len() == 40 || hex.len() == 64)
                    || !hex.chars().all(|c| c.is_ascii_hexdigit())
                {
                    return Err(WinRmError::Config(
                        "thumbprint must be the SHA-1 (40 hex digits) or SHA-256 (64 hex digits) of the certificate"
                            .into(),
                    ));
                }
                CertCheck::Thumbprint(hex)
            }
            (None, None) => CertCheck::SystemRoots,
        };
        if !https && cert != CertCheck::SystemRoots {
            return Err(WinRmError::Config(
                "ca_file and thumbprint need scheme=https".into(),
            ));
        }
        let operation_timeout = Duration::from_secs_f64(num(o, "operation_timeout_secs", 20.0f64)?);
        if operation_timeout < Duration::from_millis(100)
            || operation_timeout > Duration::from_secs(3600)
        {
            return Err(WinRmError::Config(
                "operation_timeout_secs must be between 0.1 and 3600".into(),
            ));
        }
        let read_timeout = match o.get("read_timeout_secs") {
            Some(_) => Duration::from_secs_f64(num(o, "read_timeout_secs", 0.0f64)?),
            None => operation_timeout + Duration::from_secs(10),
        };
        if read_timeout <= operation_timeout {
            return Err(WinRmError::Config(
                "read_timeout_secs must be longer than operation_timeout_secs (the server answers a poll only \
                 when the operation timeout has passed)"
                    .into(),
            ));
        }
        let connect_timeout = Duration::from_secs_f64(num(o, "connect_timeout_secs", 10.0f64)?);
        let max_shells: usize = num(o, "max_shells", 8)?;
        if max_shells == 0 || max_shells > 1000 {
            return Err(WinRmError::Config(
                "max_shells must be between 1 and 1000".into(),
            ));
        }
        let path = o.get("path").cloned().unwrap_or_else(|| "/wsman".into());
        if !path.starts_with('/') {
            return Err(WinRmError::Config("path must start with '/'".into()));
        }
        Ok(WinRmConfig {
            host: host.trim().to_string(),
            port,
            https,
            path,
            auth,
            cert,
            allow_unencrypted,
            codepage: num(o, "codepage", 65001)?,
            working_dir: o.get("working_dir").cloned(),
            operation_timeout,
            read_timeout,
            connect_timeout,
            max_shells,
            shell_idle: Duration::from_secs_f64(num(o, "shell_idle_secs", 120.0f64)?),
            locale: o.get("locale").cloned().unwrap_or_else(|| "en-US".into()),
            max_envelope: num(o, "max_envelope_size", 512_000)?,
        })
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "{}://{host}:{}{}",
            if self.https { "https" } else { "http" },
            self.port,
            self.path
        )
    }

    /// Whether messages are sealed by NTLM (NTLM over plain HTTP).
    pub fn sealed(&self) -> bool {
        self.auth == AuthMethod::Ntlm && !self.https
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_validation() {
        let c = WinRmConfig::from_options("h", 5985, &opts(&[])).unwrap();
        assert_eq!(
            (c.auth, c.https, c.codepage),
            (AuthMethod::Ntlm, false, 65001)
        );
        assert!(c.sealed());
        assert_eq!(c.endpoint(), "http://h:5985/wsman");
        assert!(c.read_timeout > c.operation_timeout);
        let c = WinRmConfig::from_options("h", 5986, &opts(&[("transport", "basic")])).unwrap();
        assert!(c.https && !c.sealed());
        let e = WinRmConfig::from_options("h", 5985, &opts(&[("transport", "basic")])).unwrap_err();
        assert!(e.to_string().contains("allow_unencrypted"));
        assert!(
            WinRmConfig::from_options(
                "h",
                5985,
                &opts(&[("transport", "basic"), ("allow_unencrypted", "true")])
            )
            .is_ok()
        );
        assert!(WinRmConfig::from_options("h", 1, &opts(&[("bogus", "1")])).is_err());
        assert!(WinRmConfig::from_options("h", 5986, &opts(&[("thumbprint", "zz")])).is_err());
        let c = WinRmConfig::from_options("h", 5986, &opts(&[("thumbprint", &"AB:".repeat(20))]))
            .unwrap();
        assert_eq!(c.cert, CertCheck::Thumbprint("ab".repeat(20)));
        assert!(
            WinRmConfig::from_options(
                "h",
                1,
                &opts(&[
                    ("operation_timeout_secs", "30"),
                    ("read_timeout_secs", "20")
                ])
            )
            .is_err()
        );
    }
}
