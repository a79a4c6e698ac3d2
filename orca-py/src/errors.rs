//! One Python exception class per [`orca_core::ErrorKind`], all under `orca.OrcaError`.
//!
//! Each class carries the kind's stable code in its `kind` attribute, and the exception's
//! message is the message from Rust.

use orca_core::{Error, ErrorKind};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyErr, create_exception};

create_exception!(
    orca,
    OrcaError,
    PyException,
    "Base class of every error Orca raises."
);

macro_rules! kinds {
    ($($name:ident => $kind:ident, $doc:literal;)*) => {
        $(create_exception!(orca, $name, OrcaError, $doc);)*

        /// The Python exception for an Orca error.
        pub fn to_py_err(e: Error) -> PyErr {
            let msg = e.message().to_string();
            match e.kind() {
                $(ErrorKind::$kind => $name::new_err(msg),)*
                _ => Unexpected::new_err(msg),
            }
        }

        /// Add the exception classes to the module, each with its `kind` code.
        pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            let py = m.py();
            let base = py.get_type::<OrcaError>();
            base.setattr("kind", py.None())?;
            m.add("OrcaError", base)?;
            $(
                let t = py.get_type::<$name>();
                t.setattr("kind", ErrorKind::$kind.code())?;
                m.add(stringify!($name), t)?;
            )*
            Ok(())
        }
    };
}

kinds! {
    NotFound => NotFound, "The thing asked for does not exist (or is outside your scope).";
    AlreadyExists => AlreadyExists, "A thing with the same unique key exists already.";
    Conflict => Conflict, "The request conflicts with the current state (or the Orca is closed).";
    LeaseLost => LeaseLost, "A worker's lease on an execution is no longer valid.";
    InvalidInput => InvalidInput, "The input is malformed or violates a rule.";
    PermissionDenied => PermissionDenied, "The actor is not allowed to do this.";
    Unauthenticated => Unauthenticated, "The caller is not authenticated.";
    Timeout => Timeout, "An operation did not finish in time.";
    ConnectionFailed => ConnectionFailed, "A remote system or service could not be reached.";
    AuthFailed => AuthFailed, "Authentication against a remote system failed.";
    HostKeyRejected => HostKeyRejected, "A remote host key was unknown or did not match.";
    Unsupported => Unsupported, "The backend does not support what was asked.";
    Crypto => Crypto, "A stored credential could not be decrypted.";
    Incompatible => Incompatible, "The database is not Orca's, is newer, or has another engine.";
    Storage => Storage, "The database failed.";
    Unexpected => Unexpected, "Anything else: a bug or an unexpected condition.";
}

/// An [`orca_core::Error`] raised as its Python class.
pub trait IntoPyResult<T> {
    /// Convert the error.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for orca_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
