//! How to connect a PostgreSQL store.

use std::fmt;
use std::time::Duration;

use orca_core::{Error, Result};

/// Where "now" comes from for leases, queue times and every time the store stamps itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// The database server's clock (`now()`): every node agrees on lease expiry even when
    /// their own clocks drift. The default for production.
    #[default]
    Database,
    /// The clock given to [`super::PostgresStore::connect`] (tests advance a manual clock).
    Injected,
}

/// Options for [`super::PostgresStore::connect`].
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database` (the password is never logged).
    pub url: String,
    /// The most connections this node opens for the store (the LISTEN connection of the event
    /// bus and work waker is extra).
    pub max_connections: u32,
    /// The schema that holds Orca's tables (created if missing); `None` means `public`.
    /// Letters, digits and `_` only, at most 48 characters.
    pub schema: Option<String>,
    /// Where "now" comes from.
    pub clock: ClockSource,
    /// How long to wait for a connection (also bounds connecting at start-up).
    pub connect_timeout: Duration,
    /// Check a pooled connection before using it, so connections the server closed are
    /// replaced transparently (costs one round trip per checkout).
    pub test_before_acquire: bool,
    /// A name for this node, shown to operators as the sessions' `application_name`
    /// (`orca/<schema>/<node>`; without it `orca/<schema>`). Letters, digits, `-` and `_`.
    pub node_name: Option<String>,
    /// For tests: drop the schema when the last handle of the store is dropped. Never set
    /// this on a database that holds data you want to keep.
    pub ephemeral: bool,
}

impl PostgresOptions {
    /// Defaults for `url`: 10 connections, schema `public`, database clock, 10 s connect
    /// timeout.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            max_connections: 10,
            schema: None,
            clock: ClockSource::Database,
            connect_timeout: Duration::from_secs(10),
            test_before_acquire: true,
            node_name: None,
            ephemeral: false,
        }
    }
    /// Same options with another schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
    /// Same options with another pool size.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }
    /// Same options with another clock source.
    pub fn clock(mut self, clock: ClockSource) -> Self {
        self.clock = clock;
        self
    }

    /// The schema name, validated.
    pub(crate) fn schema_name(&self) -> Result<String> {
        let s = self.schema.clone().unwrap_or_else(|| "public".to_string());
        let ok = !s.is_empty()
            && s.len() <= 48
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok || s.starts_with("pg_") {
            return Err(Error::invalid(format!(
                "invalid PostgreSQL schema name '{s}': use lower-case letters, digits and '_' \
                 (at most 48 characters, not starting with a digit or 'pg_')"
            )));
        }
        Ok(s)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_connections == 0 {
            return Err(Error::invalid(
                "database max_connections must be at least 1",
            ));
        }
        self.application_name().map(|_| ())
    }

    /// The `application_name` of the store's sessions: `orca/<schema>[/<node>]`.
    pub fn application_name(&self) -> Result<String> {
        let schema = self.schema_name()?;
        match &self.node_name {
            None => Ok(format!("orca/{schema}")),
            Some(n) => {
                let name = format!("orca/{schema}/{n}");
                let ok = !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && name.len() <= 63;
                if !ok {
                    return Err(Error::invalid(format!(
                        "invalid node name '{n}': use letters, digits, '-' and '_', and keep \
                         'orca/<schema>/<node>' within 63 characters"
                    )));
                }
                Ok(name)
            }
        }
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("schema", &self.schema)
            .field("clock", &self.clock)
            .field("connect_timeout", &self.connect_timeout)
            .field("test_before_acquire", &self.test_before_acquire)
            .field("node_name", &self.node_name)
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

/// The URL with any password replaced by `***`, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable url>".to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    // Query parameters may carry a password too.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", q.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://orca:s3cret@db:5432/orca"),
            "postgres://orca:***@db:5432/orca"
        );
        assert_eq!(
            redact_url("postgres://orca@db/orca?password=x&sslmode=require"),
            "postgres://orca@db/orca?password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://db"), "postgres://db");
        let dbg = format!("{:?}", PostgresOptions::new("postgres://u:pw@h/d"));
        assert!(!dbg.contains("pw@"), "{dbg}");
    }

    #[test]
    fn schema_names_are_checked() {
        let o = PostgresOptions::new("postgres://h/d");
        assert_eq!(o.schema_name().unwrap(), "public");
        assert!(o.clone().schema("orca_1").validate().is_ok());
        for bad in ["", "1x", "a-b", "Orca", "pg_x", "x;drop", &"a".repeat(49)] {
            assert!(o.clone().schema(bad).validate().is_err(), "{bad}");
        }
    }
}
