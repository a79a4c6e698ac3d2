//! PostgreSQL failures and their conversion into [`orca_core::Error`].

use orca_core::{Error, ErrorKind, Retry};

/// The SQLSTATE our transition trigger raises for an illegal execution state change.
pub(crate) const ILLEGAL_TRANSITION: &str = "OR001";

/// What went wrong inside the PostgreSQL backend, before it becomes an [`orca_core::Error`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    /// A driver or server error while doing `what`.
    #[error("{what}: {source}")]
    Sqlx {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A stored value that cannot be read back.
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Sqlx { what, source } => convert(what, source),
            PgError::Corrupt { .. } => Error::new(ErrorKind::Storage, e.to_string()),
        }
    }
}

/// Shorthand: a closure that converts a sqlx error met while doing `what`.
pub(crate) fn db(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |source| PgError::Sqlx { what, source }.into()
}

/// A stored value that cannot be read back.
pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Error {
    PgError::Corrupt {
        what,
        detail: detail.to_string(),
    }
    .into()
}

fn convert(what: &'static str, source: sqlx::Error) -> Error {
    use sqlx::Error as E;
    match &source {
        E::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = d.message().to_string();
            match code.as_str() {
                "23505" => Error::already_exists(format!(
                    "{what}: already exists ({})",
                    d.constraint().unwrap_or("unique key")
                )),
                "23503" => Error::not_found(format!(
                    "{what}: a referenced record does not exist ({})",
                    d.constraint().unwrap_or("foreign key")
                )),
                ILLEGAL_TRANSITION => Error::conflict(format!("{what}: {msg}")),
                // Serialization failure, deadlock, lock timeout: try again.
                "40001" | "40P01" | "55P03" => {
                    Error::new(ErrorKind::Storage, format!("{what}: {msg}; try again"))
                        .with_retry(Retry::Safe)
                }
                "22021" | "22P05" => Error::invalid(format!(
                    "{what}: text must be valid UTF-8 without NUL characters ({msg})"
                )),
                "54000" | "22001" | "22003" => Error::invalid(format!("{what}: {msg}")),
                c if c.starts_with("28") => Error::new(
                    ErrorKind::AuthFailed,
                    format!(
                        "{what}: PostgreSQL refused the credentials ({msg}); check the user and \
                         password in the database URL"
                    ),
                ),
                "3D000" => Error::new(
                    ErrorKind::ConnectionFailed,
                    format!("{what}: {msg}; create it or fix the database name in the URL"),
                )
                .with_retry(Retry::Never),
                // Connection exceptions, admin shutdown, crash recovery, too many connections.
                c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => Error::new(
                    ErrorKind::ConnectionFailed,
                    format!("{what}: the database connection failed ({msg})"),
                ),
                "42501" => Error::new(
                    ErrorKind::Storage,
                    format!("{what}: the database user lacks a privilege ({msg})"),
                )
                .with_retry(Retry::Never),
                _ => Error::new(
                    ErrorKind::Storage,
                    format!("{what}: {msg} (SQLSTATE {code})"),
                ),
            }
        }
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::PoolTimedOut | E::PoolClosed => Error::new(
            ErrorKind::ConnectionFailed,
            format!("{what}: cannot reach PostgreSQL ({source})"),
        ),
        E::WorkerCrashed | E::BeginFailed => {
            Error::new(ErrorKind::ConnectionFailed, format!("{what}: {source}"))
        }
        E::Configuration(_) | E::InvalidArgument(_) => {
            Error::invalid(format!("{what}: invalid database settings ({source})"))
        }
        E::RowNotFound => Error::not_found(format!("{what}: not found")),
        E::Migrate(m) => Error::new(
            ErrorKind::Incompatible,
            format!("{what}: the database schema cannot be migrated ({m})"),
        ),
        _ => Error::new(ErrorKind::Storage, format!("{what}: {source}")),
    }
}
