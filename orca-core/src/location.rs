//! Where an embedded Orca keeps its data: one rule for every frontend that takes "a path or a
//! database URL" (the `orca` binary, the Python bindings).
//!
//! - nothing given: SQLite in `./orca-data/orca.db`;
//! - `sqlite://PATH` or `sqlite:PATH`, or a plain path: SQLite at that path (an existing
//!   directory means `<dir>/orca.db`);
//! - `postgres://…` or `postgresql://…`: PostgreSQL.
//!
//! The key file ([`crate::keyfile`]) lives beside a SQLite database, and in `./orca-data` for
//! PostgreSQL unless the frontend is told otherwise.
//!
//! ```
//! use orca_core::location::DatabaseLocation;
//! let loc = DatabaseLocation::parse("sqlite:///var/lib/orca/orca.db").unwrap();
//! assert_eq!(loc, DatabaseLocation::Sqlite("/var/lib/orca/orca.db".into()));
//! assert_eq!(loc.key_file(), std::path::Path::new("/var/lib/orca/keys.json"));
//! assert!(DatabaseLocation::parse("mysql://db/orca").is_err());
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use crate::keyfile::KEY_FILE_NAME;
use crate::{Error, Result};

/// The data directory used when none is given, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "orca-data";

/// The SQLite database file's name inside a data directory.
pub const DATABASE_FILE_NAME: &str = "orca.db";

/// A database to open.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (may hold a password: see the `Debug`/`Display` forms,
    /// which hide it).
    Postgres(String),
}

impl DatabaseLocation {
    /// The default: `./orca-data/orca.db`.
    pub fn default_sqlite() -> Self {
        DatabaseLocation::Sqlite(Path::new(DEFAULT_DATA_DIR).join(DATABASE_FILE_NAME))
    }

    /// Parse a path or URL (see the module docs); `None` or an empty string gives the default.
    pub fn parse_opt(s: Option<&str>) -> Result<Self> {
        match s.map(str::trim) {
            None | Some("") => Ok(Self::default_sqlite()),
            Some(s) => Self::parse(s),
        }
    }

    /// Parse a path or URL (see the module docs).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid(
                "the database location is empty: give a path, sqlite://PATH or postgres://URL",
            ));
        }
        if s.contains('\0') {
            return Err(Error::invalid("the database location contains a NUL byte"));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(s.to_string()));
        }
        let path = if let Some(rest) = s.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            if rest.contains('?') {
                return Err(Error::invalid(format!(
                    "the SQLite URL '{s}' has query parameters; Orca chooses the SQLite \
                     settings itself: give only the path"
                )));
            }
            if rest.is_empty() || rest == ":memory:" {
                return Err(Error::invalid(format!(
                    "the SQLite URL '{s}' names no file: give sqlite://PATH"
                )));
            }
            rest
        } else if let Some((scheme, _)) = s.split_once("://") {
            return Err(Error::invalid(format!(
                "unsupported database URL scheme '{scheme}': use a path, sqlite://PATH or \
                 postgres://USER@HOST/DB"
            )));
        } else {
            s
        };
        let path = PathBuf::from(path);
        if path.is_dir() {
            return Ok(DatabaseLocation::Sqlite(path.join(DATABASE_FILE_NAME)));
        }
        Ok(DatabaseLocation::Sqlite(path))
    }

    /// The data directory: the SQLite file's directory, or `./orca-data` for PostgreSQL.
    pub fn data_dir(&self) -> PathBuf {
        match self {
            DatabaseLocation::Sqlite(p) => match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            },
            DatabaseLocation::Postgres(_) => PathBuf::from(DEFAULT_DATA_DIR),
        }
    }

    /// The key file of this location (see [`crate::keyfile`]).
    pub fn key_file(&self) -> PathBuf {
        self.data_dir().join(KEY_FILE_NAME)
    }
}

/// Hides a password in a URL: `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseLocation::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DatabaseLocation::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

impl fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseLocation({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        assert_eq!(
            DatabaseLocation::parse_opt(None).unwrap(),
            DatabaseLocation::Sqlite("orca-data/orca.db".into())
        );
        assert_eq!(
            DatabaseLocation::parse("x/y.db").unwrap(),
            DatabaseLocation::Sqlite("x/y.db".into())
        );
        assert_eq!(
            DatabaseLocation::parse("sqlite:rel.db").unwrap(),
            DatabaseLocation::Sqlite("rel.db".into())
        );
        let tmp = std::env::temp_dir();
        assert_eq!(
            DatabaseLocation::parse(tmp.to_str().unwrap()).unwrap(),
            DatabaseLocation::Sqlite(tmp.join("orca.db"))
        );
        let pg = DatabaseLocation::parse("postgres://u:secret@h:5432/db?sslmode=disable").unwrap();
        assert!(matches!(pg, DatabaseLocation::Postgres(_)));
        assert_eq!(pg.to_string(), "postgres://u:***@h:5432/db?sslmode=disable");
        assert!(!format!("{pg:?}").contains("secret"));
        assert_eq!(pg.key_file(), Path::new("orca-data/keys.json"));
        assert_eq!(
            DatabaseLocation::parse("db.sqlite").unwrap().key_file(),
            Path::new("./keys.json")
        );
    }

    #[test]
    fn bad_locations_say_what_to_do() {
        for bad in [
            "",
            "  ",
            "mysql://h/db",
            "sqlite://",
            "sqlite::memory:",
            "sqlite://a?mode=ro",
        ] {
            let e = DatabaseLocation::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad}");
        }
    }
}
