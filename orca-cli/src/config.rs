//! The configuration of the `orca` binary: one TOML file (`--config`), then `ORCA_*`
//! environment variables, then command-line flags (each layer overrides the one before).
//!
//! Sections: `database`, `security`, `execution` (the engine: [`EngineConfig`], plus the
//! binary's own `execution.shutdown_grace` and `[execution.local]`), `http` (the API:
//! [`HttpConfig`]), `logging` and `features`, plus the top-level `data_dir`. Every struct
//! rejects unknown keys, and every error names the key and where it came from (the file or
//! the environment variable). See `docs/config.example.toml` for every key with its default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orca::connectors::local::LocalConfig;
use orca::stores::sqlite::Synchronous;
use orca_core::location::{DEFAULT_DATA_DIR, DatabaseLocation};
use orca_core::{EngineConfig, Error, Result};
use orca_http::HttpConfig;

/// Environment variables starting with `ORCA_` that are not settings.
const NOT_SETTINGS: &[&str] = &[
    "ORCA_CONFIG",
    "ORCA_TOKEN",
    "ORCA_SERVER",
    "ORCA_ADMIN_PASSWORD",
    "ORCA_ADMIN_PASSWORD_FILE",
    "ORCA_OUTPUT",
    "ORCA_CREDENTIALS",
];

/// Keys that may be absent from the defaults (optional values) and their kind.
const OPTIONAL_KEYS: &[(&str, Kind)] = &[
    ("data_dir", Kind::Str),
    ("database.url", Kind::Str),
    ("database.schema", Kind::Str),
    ("security.key_file", Kind::Str),
    ("security.jwt_secret_file", Kind::Str),
    ("http.auth.jwt_secret", Kind::Str),
    ("http.auth.api_token_max_days", Kind::Other),
    ("execution.per_system", Kind::Other),
    ("execution.default_timeout", Kind::Other),
    ("execution.health_interval", Kind::Other),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Other,
}

/// Where the database lives and how to reach it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A path, `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`. Default:
    /// `<data_dir>/orca.db`.
    #[serde(skip_serializing)]
    pub url: Option<String>,
    /// PostgreSQL: the most connections this process opens.
    pub max_connections: u32,
    /// PostgreSQL: the schema holding Orca's tables (default `public`).
    pub schema: Option<String>,
    /// PostgreSQL: how long to wait for a connection, in seconds.
    pub connect_timeout: f64,
    /// SQLite: commit durability, `normal` or `full`.
    pub synchronous: Synchronous,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 10,
            schema: None,
            connect_timeout: 10.0,
            synchronous: Synchronous::Normal,
        }
    }
}

/// Where the secrets are kept.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// The Fernet key ring file (default `<data_dir>/keys.json`, created on first start).
    pub key_file: Option<PathBuf>,
    /// The file holding the secret that signs access tokens (default `<data_dir>/jwt.secret`,
    /// created on first start). Ignored when `http.auth.jwt_secret` is set.
    pub jwt_secret_file: Option<PathBuf>,
}

/// `[execution.local]`: how commands on `local` systems (this host) run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalExecutionConfig {
    /// When Orca runs as root, local commands run as this user (default `nobody`).
    pub user: String,
    /// Whether `user` may be root (uid 0), giving local commands Orca's own privileges.
    pub allow_root: bool,
}

impl Default for LocalExecutionConfig {
    fn default() -> Self {
        let d = LocalConfig::default();
        LocalExecutionConfig {
            user: d.user,
            allow_root: d.allow_root,
        }
    }
}

impl LocalExecutionConfig {
    /// The local connector's settings.
    pub fn connector(&self) -> LocalConfig {
        LocalConfig {
            user: self.user.clone(),
            allow_root: self.allow_root,
            ..LocalConfig::default()
        }
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Logs (always on standard error).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A `tracing` filter: `info`, `debug`, `orca_core=debug,info`... (`RUST_LOG` wins).
    pub level: String,
    /// `human` or `json`.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            format: LogFormat::Human,
        }
    }
}

/// Feature switches (all on by default).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Live updates over WebSocket (`/api/v1/ws`).
    pub live_updates: bool,
    /// Automatic health probes of active systems (every `execution.health_interval`).
    pub health_checks: bool,
    /// Every audit record is also written to the log (target `orca::audit`). The audit trail
    /// in the database is always kept.
    pub audit_logging: bool,
    /// Rate limits of the HTTP API (`http.rate_limit`).
    pub rate_limiting: bool,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            live_updates: true,
            health_checks: true,
            audit_logging: true,
            rate_limiting: true,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database and the generated secrets live (default `./orca-data`).
    pub data_dir: Option<PathBuf>,
    /// The database.
    pub database: DatabaseConfig,
    /// Secrets.
    pub security: SecurityConfig,
    /// The engine (plus `shutdown_grace`, see [`Config::shutdown_grace`]).
    pub execution: EngineConfig,
    /// The HTTP API.
    pub http: HttpConfig,
    /// Logs.
    pub logging: LoggingConfig,
    /// Feature switches.
    pub features: FeaturesConfig,
    /// How long running executions may take to finish on shutdown (`execution.shutdown_grace`,
    /// seconds).
    #[serde(skip)]
    pub shutdown_grace: Duration,
    /// How local commands run (`[execution.local]`).
    #[serde(skip)]
    pub local: LocalExecutionConfig,
    /// Where the configuration came from, for messages.
    #[serde(skip)]
    pub source: String,
}

/// Default `execution.shutdown_grace`.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

impl Config {
    /// Load `file` (if any), then `ORCA_*` variables of `env`. Validates everything.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Config> {
        let (mut table, source) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid(format!(
                        "cannot read the config file {}: {e}",
                        path.display()
                    ))
                })?;
                let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                    let line = e
                        .span()
                        .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
                    let at = line.map(|l| format!(" line {l}:")).unwrap_or_default();
                    Error::invalid(format!(
                        "{}:{at} not valid TOML: {}",
                        path.display(),
                        e.message().trim()
                    ))
                })?;
                (table, path.display().to_string())
            }
            None => (toml::Table::new(), "the defaults".to_string()),
        };
        let from_env = apply_env(&mut table, env)?;
        let grace = take_grace(&mut table, &source, &from_env)?;
        let local = take_local(&mut table, &source, &from_env)?;
        let value = toml::Value::Table(table);
        let mut cfg: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            let origin = origin_of(&key, &from_env, &source);
            Error::invalid(format!(
                "{origin}: setting `{key}`: {}",
                e.inner().message().trim()
            ))
        })?;
        cfg.shutdown_grace = grace;
        cfg.local = local;
        cfg.source = source;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        let src = &self.source;
        self.execution
            .validate()
            .map_err(|e| Error::invalid(format!("{src}: [execution] {}", e.message())))?;
        if let Some(url) = &self.database.url {
            DatabaseLocation::parse(url).map_err(|e| {
                Error::invalid(format!("{src}: setting `database.url`: {}", e.message()))
            })?;
        }
        if self.database.max_connections == 0 {
            return Err(Error::invalid(format!(
                "{src}: setting `database.max_connections`: must be at least 1"
            )));
        }
        if !(self.database.connect_timeout > 0.0 && self.database.connect_timeout < 3600.0) {
            return Err(Error::invalid(format!(
                "{src}: setting `database.connect_timeout`: must be between 0 and 3600 seconds"
            )));
        }
        tracing_subscriber::EnvFilter::try_new(&self.logging.level).map_err(|e| {
            Error::invalid(format!(
                "{src}: setting `logging.level`: '{}' is not a log filter ({e}); use e.g. \
                 info, debug or orca_core=debug,info",
                self.logging.level
            ))
        })?;
        // The JWT secret is checked when the server starts (it may come from the data dir).
        let mut http = self.http.clone();
        if http.auth.jwt_secret.is_none() {
            http.auth.jwt_secret = Some(orca_http::JwtSecret::generate());
        }
        http.validate()
            .map_err(|e| Error::invalid(format!("{src}: {}", e.message())))?;
        Ok(())
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// The database to open.
    pub fn database(&self) -> Result<DatabaseLocation> {
        match &self.database.url {
            Some(u) => DatabaseLocation::parse(u),
            None => Ok(DatabaseLocation::Sqlite(
                self.data_dir()
                    .join(orca_core::location::DATABASE_FILE_NAME),
            )),
        }
    }

    /// The key ring file.
    pub fn key_file(&self) -> PathBuf {
        self.security
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir().join(orca_core::keyfile::KEY_FILE_NAME))
    }

    /// The JWT secret file.
    pub fn jwt_secret_file(&self) -> PathBuf {
        self.security
            .jwt_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir().join(crate::datadir::JWT_SECRET_FILE_NAME))
    }

    /// The engine settings with the feature switches applied.
    pub fn engine(&self) -> EngineConfig {
        let mut e = self.execution.clone();
        if !self.features.health_checks {
            e.health_interval = None;
        }
        e
    }

    /// The HTTP settings with the feature switches applied.
    pub fn http(&self) -> HttpConfig {
        let mut h = self.http.clone();
        h.live_updates &= self.features.live_updates;
        h.rate_limit.enabled &= self.features.rate_limiting;
        h
    }

    /// The effective configuration as TOML, without secrets.
    pub fn to_toml(&self) -> String {
        let mut v = match toml::Value::try_from(self) {
            Ok(v) => v,
            Err(e) => return format!("# cannot show the configuration: {e}\n"),
        };
        if let Some(t) = v.as_table_mut() {
            let url = self.database().map(|d| d.to_string()).unwrap_or_default();
            if let Some(db) = t.get_mut("database").and_then(|d| d.as_table_mut()) {
                db.insert("url".into(), toml::Value::String(url));
            }
            if let Some(ex) = t.get_mut("execution").and_then(|d| d.as_table_mut()) {
                ex.insert(
                    "shutdown_grace".into(),
                    toml::Value::Float(self.shutdown_grace.as_secs_f64()),
                );
                if let Ok(local) = toml::Value::try_from(&self.local) {
                    ex.insert("local".into(), local);
                }
            }
            if self.http.auth.jwt_secret.is_some()
                && let Some(auth) = t
                    .get_mut("http")
                    .and_then(|h| h.as_table_mut())
                    .and_then(|h| h.get_mut("auth"))
                    .and_then(|a| a.as_table_mut())
            {
                auth.insert("jwt_secret".into(), toml::Value::String("<hidden>".into()));
            }
        }
        toml::to_string_pretty(&v).unwrap_or_default()
    }
}

fn origin_of(key: &str, from_env: &BTreeMap<String, String>, source: &str) -> String {
    from_env
        .iter()
        .find(|(path, _)| key == path.as_str() || key.starts_with(&format!("{path}.")))
        .map(|(_, var)| format!("environment variable {var}"))
        .unwrap_or_else(|| source.to_string())
}

/// `execution.shutdown_grace` is the binary's own key beside the engine's settings.
fn take_grace(
    table: &mut toml::Table,
    source: &str,
    from_env: &BTreeMap<String, String>,
) -> Result<Duration> {
    let Some(exec) = table.get_mut("execution") else {
        return Ok(DEFAULT_GRACE);
    };
    let Some(exec) = exec.as_table_mut() else {
        let origin = origin_of("execution", from_env, source);
        return Err(Error::invalid(format!(
            "{origin}: `execution` must be a section ([execution])"
        )));
    };
    let Some(v) = exec.remove("shutdown_grace") else {
        return Ok(DEFAULT_GRACE);
    };
    let secs = match v {
        toml::Value::Integer(i) => i as f64,
        toml::Value::Float(f) => f,
        _ => f64::NAN,
    };
    if !(0.0..=86400.0).contains(&secs) {
        let origin = origin_of("execution.shutdown_grace", from_env, source);
        return Err(Error::invalid(format!(
            "{origin}: setting `execution.shutdown_grace`: must be a number of seconds \
             between 0 and 86400"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `[execution.local]` is the binary's own table beside the engine's settings: the local
/// connector's `user` and `allow_root`.
fn take_local(
    table: &mut toml::Table,
    source: &str,
    from_env: &BTreeMap<String, String>,
) -> Result<LocalExecutionConfig> {
    // take_grace has checked that `execution`, if present, is a table.
    let Some(v) = table
        .get_mut("execution")
        .and_then(|e| e.as_table_mut())
        .and_then(|e| e.remove("local"))
    else {
        return Ok(LocalExecutionConfig::default());
    };
    let local: LocalExecutionConfig = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            "execution.local".to_string()
        } else {
            format!("execution.local.{path}")
        };
        let origin = origin_of(&key, from_env, source);
        Error::invalid(format!(
            "{origin}: setting `{key}`: {}",
            e.inner().message().trim()
        ))
    })?;
    local.connector().validate().map_err(|e| {
        let origin = origin_of("execution.local.user", from_env, source);
        Error::invalid(format!(
            "{origin}: setting `execution.local.user`: {}",
            e.message()
        ))
    })?;
    Ok(local)
}

/// Every settable key (dotted) with its kind, from the defaults plus the optional keys.
fn known_keys() -> BTreeMap<String, Kind> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, Kind>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out);
                }
            }
            toml::Value::String(_) => {
                out.insert(prefix.to_string(), Kind::Str);
            }
            _ => {
                out.insert(prefix.to_string(), Kind::Other);
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = toml::Value::try_from(Config::default()) {
        walk("", &v, &mut out);
    }
    out.insert("execution.shutdown_grace".into(), Kind::Other);
    out.insert("execution.local.user".into(), Kind::Str);
    out.insert("execution.local.allow_root".into(), Kind::Other);
    for (k, kind) in OPTIONAL_KEYS {
        out.insert((*k).to_string(), *kind);
    }
    out
}

/// Apply `ORCA_<PATH>` variables (path segments joined by `_`, upper case) to `table`.
/// Returns which keys came from which variable.
fn apply_env(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let keys = known_keys();
    let sections = [
        "DATABASE_",
        "SECURITY_",
        "EXECUTION_",
        "HTTP_",
        "LOGGING_",
        "FEATURES_",
    ];
    let mut used = BTreeMap::new();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix("ORCA_") else {
            continue;
        };
        if NOT_SETTINGS.contains(&var.as_str()) || rest.starts_with("TEST_") {
            continue;
        }
        let mut wanted = rest.to_ascii_lowercase();
        if wanted == "http_metrics" {
            // Before `[http.metrics]` was a table, `http.metrics` was the on/off switch.
            wanted = "http_metrics_enabled".into();
        }
        let found = keys
            .iter()
            .find(|(k, _)| k.replace('.', "_") == wanted)
            .map(|(k, kind)| (k.clone(), *kind));
        let Some((key, kind)) = found else {
            if sections.iter().any(|s| rest.starts_with(s)) {
                return Err(Error::invalid(format!(
                    "environment variable {var}: no such setting; settings are named \
                     ORCA_<SECTION>_<KEY>, e.g. ORCA_HTTP_LISTEN (see docs/config.example.toml)"
                )));
            }
            continue;
        };
        let value = match kind {
            Kind::Str => toml::Value::String(raw.clone()),
            Kind::Other => parse_value(raw),
        };
        set_path(table, &key, value).map_err(|m| {
            Error::invalid(format!("environment variable {var}: setting `{key}`: {m}"))
        })?;
        used.insert(key, var.clone());
    }
    Ok(used)
}

/// A TOML value from an environment variable: a number, boolean, array... or else a string.
fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> std::result::Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` in the config file is not a section"))?;
    }
    t.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("orca.toml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, &BTreeMap::new()).unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir(), PathBuf::from("orca-data"));
        assert_eq!(c.shutdown_grace, DEFAULT_GRACE);
        assert!(c.features.rate_limiting && c.features.live_updates);
    }

    #[test]
    fn file_then_env() {
        let (_d, p) = write(
            "data_dir = \"/tmp/x\"\n[http]\nlisten = \"127.0.0.1:9000\"\n[execution]\n\
             max_concurrency = 4\nshutdown_grace = 5\n[features]\nrate_limiting = false\n",
        );
        let c = Config::load(
            Some(&p),
            &env(&[
                ("ORCA_EXECUTION_MAX_CONCURRENCY", "7"),
                ("ORCA_LOGGING_FORMAT", "json"),
                (
                    "ORCA_HTTP_AUTH_JWT_SECRET",
                    "0123456789012345678901234567890123",
                ),
                ("ORCA_TOKEN", "ignored"),
                ("ORCA_TEST_REQUIRE_ALL", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.listen.port(), 9000);
        assert_eq!(c.execution.max_concurrency, 7);
        assert_eq!(c.logging.format, LogFormat::Json);
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert!(!c.http().rate_limit.enabled);
        assert!(c.http.auth.jwt_secret.is_some());
        assert!(!c.to_toml().contains("0123456789"));
    }

    #[test]
    fn errors_name_the_key_and_the_source() {
        let (_d, p) = write("[execution]\nmax_concurency = 4\n");
        let e = Config::load(Some(&p), &BTreeMap::new()).unwrap_err();
        let m = e.message();
        assert!(
            m.contains(&p.display().to_string()) && m.contains("max_concurency"),
            "{m}"
        );

        let (_d, p) = write("[http]\nlisten = 8080\n");
        let m = Config::load(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(m.contains("http.listen") && m.contains("orca.toml"), "{m}");

        let (_d, p) = write("[http\n");
        let m = Config::load(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(m.contains("line 1") && m.contains("not valid TOML"), "{m}");

        let m = Config::load(None, &env(&[("ORCA_HTTP_LISTN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(m.contains("ORCA_HTTP_LISTN"), "{m}");

        let m = Config::load(None, &env(&[("ORCA_EXECUTION_MAX_CONCURRENCY", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("ORCA_EXECUTION_MAX_CONCURRENCY") && m.contains("execution.max_concurrency"),
            "{m}"
        );

        let (_d, p) = write("[execution]\nlease = 10\nheartbeat_interval = 9\n");
        let m = Config::load(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(m.contains("[execution]") && m.contains("heartbeat"), "{m}");

        let m = Config::load(Some(Path::new("/nonexistent/orca.toml")), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(m.contains("/nonexistent/orca.toml"), "{m}");
    }

    #[test]
    fn execution_local_from_file_and_env() {
        let d = Config::load(None, &BTreeMap::new()).unwrap();
        assert_eq!(d.local.user, "nobody");
        assert!(!d.local.allow_root);

        let (_d, p) =
            write("[execution]\nmax_concurrency = 4\n[execution.local]\nuser = \"orca-jobs\"\n");
        let c = Config::load(Some(&p), &BTreeMap::new()).unwrap();
        assert_eq!(c.local.user, "orca-jobs");
        assert_eq!(c.execution.max_concurrency, 4);
        let lc = c.local.connector();
        assert_eq!((lc.user.as_str(), lc.allow_root), ("orca-jobs", false));
        assert!(c.to_toml().contains("[execution.local]"), "{}", c.to_toml());

        let c = Config::load(
            Some(&p),
            &env(&[
                ("ORCA_EXECUTION_LOCAL_USER", "root"),
                ("ORCA_EXECUTION_LOCAL_ALLOW_ROOT", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.local.user, "root");
        assert!(c.local.allow_root);
        // Without a file at all.
        let c = Config::load(None, &env(&[("ORCA_EXECUTION_LOCAL_USER", "daemon")])).unwrap();
        assert_eq!(c.local.user, "daemon");
    }

    #[test]
    fn http_metrics_keys_from_file_and_environment() {
        let c = Config::load(None, &env(&[("ORCA_HTTP_METRICS_REQUIRE_TOKEN", "true")])).unwrap();
        assert_eq!(c.http.metrics.require_token, Some(true));
        let c = Config::load(None, &env(&[("ORCA_HTTP_METRICS_REQUIRE_TOKEN", "auto")])).unwrap();
        assert_eq!(c.http.metrics.require_token, None);
        // The older on/off switch, as a variable and in a file.
        let c = Config::load(None, &env(&[("ORCA_HTTP_METRICS", "false")])).unwrap();
        assert!(!c.http.metrics.enabled);
        let (_d, p) = write("[http]\nmetrics = false\n");
        assert!(
            !Config::load(Some(&p), &BTreeMap::new())
                .unwrap()
                .http
                .metrics
                .enabled
        );
        let (_d, p) = write("[http.metrics]\nrequire_token = false\n");
        let c = Config::load(Some(&p), &BTreeMap::new()).unwrap();
        assert_eq!(c.http.metrics.require_token, Some(false));
        assert!(c.http.metrics.enabled);
    }

    #[test]
    fn execution_local_errors_name_the_key_and_the_source() {
        let (_d, p) = write("[execution.local]\nusr = \"x\"\n");
        let m = Config::load(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(m.contains("orca.toml") && m.contains("usr"), "{m}");

        let (_d, p) = write("[execution.local]\nallow_root = \"yes\"\n");
        let m = Config::load(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("orca.toml") && m.contains("execution.local.allow_root"),
            "{m}"
        );

        let (_d, p) = write("[execution]\nlocal = 3\n");
        let m = Config::load(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(m.contains("`execution.local`"), "{m}");

        let m = Config::load(None, &env(&[("ORCA_EXECUTION_LOCAL_ALLOW_ROOT", "maybe")]))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("ORCA_EXECUTION_LOCAL_ALLOW_ROOT")
                && m.contains("execution.local.allow_root"),
            "{m}"
        );

        let m = Config::load(None, &env(&[("ORCA_EXECUTION_LOCAL_USER", "")]))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("ORCA_EXECUTION_LOCAL_USER") && m.contains("execution.local.user"),
            "{m}"
        );

        let m = Config::load(None, &env(&[("ORCA_EXECUTION_LOCAL_USR", "x")]))
            .unwrap_err()
            .to_string();
        assert!(m.contains("ORCA_EXECUTION_LOCAL_USR"), "{m}");
    }

    #[test]
    fn feature_switches_apply() {
        let (_d, p) = write("[features]\nhealth_checks = false\nlive_updates = false\n");
        let c = Config::load(Some(&p), &BTreeMap::new()).unwrap();
        assert_eq!(c.engine().health_interval, None);
        assert!(!c.http().live_updates);
    }

    #[test]
    fn the_example_config_is_valid_and_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.example.toml");
        let c = Config::load(Some(&path), &BTreeMap::new()).unwrap();
        let d = Config::load(None, &BTreeMap::new()).unwrap();
        let mut a = c.execution.clone();
        a.worker_name = d.execution.worker_name.clone();
        assert_eq!(a, d.execution, "execution defaults differ from the example");
        assert_eq!(c.shutdown_grace, d.shutdown_grace);
        assert_eq!(
            c.local, d.local,
            "[execution.local] defaults differ from the example"
        );
        assert_eq!(c.http.listen, d.http.listen);
        assert_eq!(c.data_dir(), d.data_dir());
        // Every key of the defaults appears in the example.
        let text = std::fs::read_to_string(&path).unwrap();
        for key in known_keys().keys() {
            let leaf = key.rsplit('.').next().unwrap();
            assert!(
                text.contains(&format!("{leaf} =")),
                "{key} is not in the example"
            );
        }
    }
}
