//! Settings of the HTTP API: the `http` section of Orca's configuration.
//!
//! Every struct rejects unknown keys, so a typo in the config file is an error, not a silently
//! ignored setting. [`HttpConfig::validate`] checks that the values hang together and names the
//! key that is wrong.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use orca_core::{Error, Result};
use secrecy::{ExposeSecret, SecretString};

/// The HTTP API's settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the server listens on (used by the binary; the router does not bind).
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (larger requests answer 413).
    pub max_body_bytes: usize,
    /// Cross-origin requests. Closed (no CORS headers at all) unless origins are listed.
    pub cors: CorsConfig,
    /// Proxies whose `X-Forwarded-For` header is believed for the client address. Empty: the
    /// peer address of the connection is the client address.
    pub trusted_proxies: Vec<IpAddr>,
    /// Tokens and sessions.
    pub auth: AuthConfig,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Live updates over WebSocket (`/api/v1/ws`).
    pub live_updates: bool,
    /// Prometheus metrics at `/metrics` (`[http.metrics]`; `metrics = true|false` is still
    /// accepted for `enabled`).
    pub metrics: MetricsConfig,
}

/// `[http.metrics]`: Prometheus metrics at `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetricsConfig {
    /// Serve them.
    pub enabled: bool,
    /// Whether `/metrics` needs `Authorization: Bearer` with an admin's access token or API
    /// token (401 without a valid one, 403 for other users). `"auto"` (the default): required
    /// when `listen` is not a loopback address. Set it to `false` only where the port is
    /// reachable by the scraper alone. Env: `ORCA_HTTP_METRICS_REQUIRE_TOKEN`.
    #[serde(serialize_with = "auto_bool::serialize")]
    pub require_token: Option<bool>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            require_token: None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for MetricsConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct Table {
            enabled: bool,
            #[serde(deserialize_with = "auto_bool::deserialize")]
            require_token: Option<bool>,
        }
        impl Default for Table {
            fn default() -> Self {
                let d = MetricsConfig::default();
                Table {
                    enabled: d.enabled,
                    require_token: d.require_token,
                }
            }
        }
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            Flag(bool),
            Table(Table),
        }
        match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "`metrics` is a table: enabled = true|false, require_token = true|false|\"auto\"",
            )
        })? {
            Form::Flag(enabled) => Ok(MetricsConfig {
                enabled,
                ..MetricsConfig::default()
            }),
            Form::Table(t) => Ok(MetricsConfig {
                enabled: t.enabled,
                require_token: t.require_token,
            }),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            cors: CorsConfig::default(),
            trusted_proxies: Vec::new(),
            auth: AuthConfig::default(),
            rate_limit: RateLimitConfig::default(),
            live_updates: true,
            metrics: MetricsConfig::default(),
        }
    }
}

impl HttpConfig {
    /// Whether `/metrics` needs an admin's bearer token: as set, or (`"auto"`) when the server
    /// listens on an address other than loopback.
    pub fn metrics_token_required(&self) -> bool {
        self.metrics
            .require_token
            .unwrap_or_else(|| !self.listen.ip().is_loopback())
    }
}

/// `true`, `false` or `"auto"` (`None`); also `"true"`/`"false"` as strings, as environment
/// variables give them.
mod auto_bool {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bool(*b),
            None => s.serialize_str("auto"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(b) => Ok(Some(b)),
            Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "auto" => Ok(None),
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(serde::de::Error::custom(format!(
                    "expected true, false or \"auto\", not \"{t}\""
                ))),
            },
        }
    }
}

/// Cross-origin resource sharing.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed to call the API from a browser, e.g. `https://orca.example.com`.
    /// Empty (the default): no cross-origin access.
    pub allowed_origins: Vec<String>,
    /// How long browsers may cache a preflight answer, in seconds.
    pub max_age_seconds: u32,
}

/// The secret that signs access tokens (HS256). At least 32 bytes.
#[derive(Clone)]
pub struct JwtSecret(SecretString);

impl JwtSecret {
    /// Wrap a secret.
    pub fn new(secret: SecretString) -> Self {
        JwtSecret(secret)
    }
    /// A fresh random secret (64 random bytes, URL-safe base64).
    pub fn generate() -> Self {
        use base64::Engine;
        let bytes = orca_core::auth::random_bytes::<48>();
        JwtSecret(SecretString::from(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(***)")
    }
}

impl<'de> serde::Deserialize<'de> for JwtSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(JwtSecret(SecretString::from(s)))
    }
}

/// The longest `http.auth.cache_ttl_ms` accepted.
pub const MAX_CACHE_TTL_MS: u64 = 5000;

/// Tokens and sessions.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The HS256 signing secret of access tokens (at least 32 bytes). Required; the binary
    /// generates one into its data directory. Never serialised.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<JwtSecret>,
    /// The `iss` claim written and required.
    pub issuer: String,
    /// The `aud` claim written and required.
    pub audience: String,
    /// Lifetime of access tokens, in seconds (at most 900).
    pub access_ttl_seconds: u64,
    /// Clock skew tolerated when checking `exp`/`nbf`, in seconds (at most 30).
    pub leeway_seconds: u64,
    /// Lifetime of a login session (its refresh tokens), in seconds.
    pub refresh_ttl_seconds: u64,
    /// Longest lifetime of an API token, in days (None: API tokens may never expire).
    pub api_token_max_days: Option<u64>,
    /// Lifetime of a WebSocket ticket, in seconds (at most 120).
    pub ws_ticket_ttl_seconds: u64,
    /// How long this node reuses a verified bearer credential and the caller's role and
    /// grants read with it, in milliseconds (at most 5000; 0: read them on every request).
    /// Changes made on this node (logout, disabling, role, grants, password, token revocation)
    /// take effect on the next request; changes made on another node arrive on the event bus
    /// (PostgreSQL `LISTEN/NOTIFY`, milliseconds) and this bound only covers a notification
    /// lost while the bus was down.
    pub cache_ttl_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            issuer: "orca".into(),
            audience: "orca-api".into(),
            access_ttl_seconds: 900,
            leeway_seconds: 30,
            refresh_ttl_seconds: 14 * 24 * 3600,
            api_token_max_days: Some(365),
            ws_ticket_ttl_seconds: 30,
            cache_ttl_ms: 1000,
        }
    }
}

/// Rate limits. Per-address and per-caller limits are counted on each node; login limits are
/// counted in the database, so they hold across nodes.
///
/// Password checks (`POST /api/v1/auth/login`, and the current password of
/// `POST /api/v1/auth/password`) are limited per client address and per account *and* client
/// address (429 with `Retry-After` beyond); attempts for one account from all addresses are
/// never refused but slowed down: past `login_account_delay_after` attempts in a minute, each
/// further one waits `login_account_delay_ms`, doubling, at most `login_account_delay_max_ms`.
/// So nobody can lock an account (the admin's) out by failing to log in as it from elsewhere.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Switch every limit on or off.
    pub enabled: bool,
    /// Requests per minute from one client address (all endpoints).
    pub per_address_per_minute: u32,
    /// Requests per minute by one authenticated user or API token.
    pub per_caller_per_minute: u32,
    /// Password checks per minute for one account name (known or not) from one client
    /// address. (It used to count the attempts from all addresses, which let anyone
    /// lock an account out; attempts from all addresses now slow down instead, see
    /// `login_account_delay_after`.)
    pub login_per_account_per_minute: u32,
    /// Password checks per minute from one client address (any account).
    pub login_per_address_per_minute: u32,
    /// Password checks per minute for one account, from all addresses, after which each further
    /// check waits (never refused).
    pub login_account_delay_after: u32,
    /// The first such wait, in milliseconds; it doubles with each further attempt.
    pub login_account_delay_ms: u64,
    /// The longest wait, in milliseconds (at most 30000).
    pub login_account_delay_max_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            per_address_per_minute: 6000,
            per_caller_per_minute: 6000,
            login_per_account_per_minute: 10,
            login_per_address_per_minute: 30,
            login_account_delay_after: 5,
            login_account_delay_ms: 250,
            login_account_delay_max_ms: 4000,
        }
    }
}

impl HttpConfig {
    /// Check the settings; the error names the offending key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, m: &str| Err(Error::invalid(format!("http.{key}: {m}")));
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        let a = &self.auth;
        match &a.jwt_secret {
            None => {
                return bad(
                    "auth.jwt_secret",
                    "is required: set it to a random string of at least 32 bytes",
                );
            }
            Some(s) if s.bytes().len() < 32 => {
                return bad("auth.jwt_secret", "must be at least 32 bytes long");
            }
            _ => {}
        }
        if a.issuer.trim().is_empty() || a.audience.trim().is_empty() {
            return bad("auth.issuer/auth.audience", "must not be empty");
        }
        if a.access_ttl_seconds == 0 || a.access_ttl_seconds > 900 {
            return bad("auth.access_ttl_seconds", "must be between 1 and 900");
        }
        if a.leeway_seconds > 30 {
            return bad("auth.leeway_seconds", "must be at most 30");
        }
        if a.refresh_ttl_seconds < a.access_ttl_seconds {
            return bad(
                "auth.refresh_ttl_seconds",
                "must be at least auth.access_ttl_seconds",
            );
        }
        if a.api_token_max_days == Some(0) {
            return bad("auth.api_token_max_days", "must be at least 1 (or unset)");
        }
        if a.ws_ticket_ttl_seconds == 0 || a.ws_ticket_ttl_seconds > 120 {
            return bad("auth.ws_ticket_ttl_seconds", "must be between 1 and 120");
        }
        if a.cache_ttl_ms > MAX_CACHE_TTL_MS {
            return bad(
                "auth.cache_ttl_ms",
                &format!("must be at most {MAX_CACHE_TTL_MS} (0 switches the cache off)"),
            );
        }
        let r = &self.rate_limit;
        if r.enabled
            && [
                r.per_address_per_minute,
                r.per_caller_per_minute,
                r.login_per_account_per_minute,
                r.login_per_address_per_minute,
            ]
            .contains(&0)
        {
            return bad(
                "rate_limit",
                "limits must be at least 1 (or enabled = false)",
            );
        }
        if r.login_account_delay_max_ms > 30_000 {
            return bad(
                "rate_limit.login_account_delay_max_ms",
                "must be at most 30000",
            );
        }
        if r.login_account_delay_ms > r.login_account_delay_max_ms {
            return bad(
                "rate_limit.login_account_delay_ms",
                "must be at most rate_limit.login_account_delay_max_ms",
            );
        }
        for o in &self.cors.allowed_origins {
            if o == "*" {
                return bad(
                    "cors.allowed_origins",
                    "'*' is not allowed: list the origins of your web clients",
                );
            }
            if !(o.starts_with("http://") || o.starts_with("https://")) {
                return bad(
                    "cors.allowed_origins",
                    &format!("'{o}' is not an origin like https://orca.example.com"),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_secret() -> HttpConfig {
        let mut c = HttpConfig::default();
        c.auth.jwt_secret = Some(JwtSecret::generate());
        c
    }

    #[test]
    fn defaults_need_a_secret() {
        let e = HttpConfig::default().validate().unwrap_err();
        assert!(e.message().contains("auth.jwt_secret"), "{e}");
        with_secret().validate().unwrap();
    }

    #[test]
    fn limits_are_enforced() {
        let mut c = with_secret();
        c.auth.access_ttl_seconds = 3600;
        assert!(c.validate().unwrap_err().message().contains("access_ttl"));
        let mut c = with_secret();
        c.auth.leeway_seconds = 60;
        assert!(c.validate().unwrap_err().message().contains("leeway"));
        let mut c = with_secret();
        c.cors.allowed_origins = vec!["*".into()];
        assert!(c.validate().unwrap_err().message().contains("cors"));
        let mut c = with_secret();
        c.auth.cache_ttl_ms = MAX_CACHE_TTL_MS + 1;
        assert!(c.validate().unwrap_err().message().contains("cache_ttl_ms"));
        c.auth.cache_ttl_ms = 0;
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected_and_secret_is_hidden() {
        let e = serde_json::from_str::<HttpConfig>(r#"{"listen":"127.0.0.1:1","bogus":1}"#)
            .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let c: HttpConfig =
            serde_json::from_str(r#"{"auth":{"jwt_secret":"0123456789abcdef0123456789abcdef"}}"#)
                .unwrap();
        c.validate().unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
        let ser = serde_json::to_string(&c).unwrap();
        assert!(!ser.contains("0123456789abcdef"), "{ser}");
    }

    #[test]
    fn metrics_token_is_required_off_loopback_unless_set() {
        let parse = |j: &str| serde_json::from_str::<HttpConfig>(j).unwrap();
        let c = parse(r#"{}"#);
        assert_eq!(c.metrics.require_token, None);
        assert!(!c.metrics_token_required(), "loopback by default");
        assert!(parse(r#"{"listen":"0.0.0.0:8080"}"#).metrics_token_required());
        assert!(parse(r#"{"listen":"[::]:8080"}"#).metrics_token_required());
        assert!(!parse(r#"{"listen":"[::1]:8080"}"#).metrics_token_required());
        for (v, want) in [
            ("true", Some(true)),
            ("false", Some(false)),
            (r#""auto""#, None),
            (r#""true""#, Some(true)),
            (r#""false""#, Some(false)),
        ] {
            let c = parse(&format!(
                r#"{{"listen":"0.0.0.0:1","metrics":{{"require_token":{v}}}}}"#
            ));
            assert_eq!(c.metrics.require_token, want, "{v}");
        }
        assert!(
            !parse(r#"{"listen":"0.0.0.0:1","metrics":{"require_token":false}}"#)
                .metrics_token_required()
        );
        assert!(
            serde_json::from_str::<HttpConfig>(r#"{"metrics":{"require_token":"maybe"}}"#).is_err()
        );
        let ser = serde_json::to_value(HttpConfig::default()).unwrap();
        assert_eq!(ser["metrics"]["require_token"], "auto");
        // The older form `metrics = false` still switches them off.
        assert!(!parse(r#"{"metrics":false}"#).metrics.enabled);
        assert!(parse(r#"{"metrics":{"enabled":true}}"#).metrics.enabled);
    }

    #[test]
    fn login_delays_are_bounded() {
        let mut c = with_secret();
        c.rate_limit.login_account_delay_max_ms = 60_000;
        assert!(c.validate().unwrap_err().message().contains("delay_max_ms"));
        let mut c = with_secret();
        c.rate_limit.login_account_delay_ms = 5000;
        c.rate_limit.login_account_delay_max_ms = 1000;
        assert!(c.validate().unwrap_err().message().contains("delay_ms"));
    }
}
