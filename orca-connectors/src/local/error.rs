//! Errors of the local connector, converted into [`orca_core::Error`] at the boundary.

use std::io;
use std::path::Path;

use orca_core::{Error, ErrorKind, Retry};

/// Why a local command could not be started.
#[derive(Debug)]
pub(crate) enum LocalError {
    /// The system's `cwd` option names a directory that does not exist.
    CwdMissing { system: String, cwd: String },
    /// The system's `cwd` option is not usable (not absolute, not a directory...).
    CwdInvalid {
        system: String,
        cwd: String,
        why: String,
    },
    /// The shell could not be started (as `user`, when Orca dropped privileges to it).
    Spawn {
        shell: String,
        user: Option<String>,
        source: io::Error,
    },
    /// Waiting for the process failed.
    Wait(io::Error),
}

impl From<LocalError> for Error {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::CwdMissing { system, cwd } => Error::new(
                ErrorKind::ConnectionFailed,
                format!(
                    "local system '{system}': working directory '{cwd}' does not exist on this \
                     host; create it or fix the system's `cwd` option"
                ),
            ),
            LocalError::CwdInvalid { system, cwd, why } => Error::invalid(format!(
                "local system '{system}': working directory '{cwd}' {why}; fix the system's \
                 `cwd` option"
            )),
            LocalError::Spawn {
                shell,
                user,
                source,
            } => spawn_error(&shell, user.as_deref(), source),
            LocalError::Wait(source) => {
                Error::unexpected(format!("waiting for a local command failed: {source}"))
                    .with_retry(Retry::Unsafe)
            }
        }
    }
}

fn spawn_error(shell: &str, user: Option<&str>, source: io::Error) -> Error {
    match source.kind() {
        io::ErrorKind::NotFound => Error::new(
            ErrorKind::Unsupported,
            format!(
                "the shell '{shell}' does not exist on this host: install it, pick another \
                 shell for the job, or change the local connector's sh_path/bash_path"
            ),
        ),
        io::ErrorKind::PermissionDenied => {
            let who = user
                .map(|u| format!(" as the user '{u}' (setting `execution.local.user`)"))
                .unwrap_or_default();
            Error::denied(format!(
                "this host refused to start '{shell}'{who} (permission denied): check the \
                 file's mode and the working directory's permissions"
            ))
        }
        io::ErrorKind::InvalidInput => Error::invalid(format!(
            "the command or its environment cannot be passed to '{shell}': {source}"
        )),
        // fork/exec failures such as EAGAIN or EMFILE: transient, and nothing ran.
        _ => Error::new(
            ErrorKind::ConnectionFailed,
            format!("could not start a local process with '{shell}': {source}"),
        ),
    }
}

/// Check that `cwd` is usable as a working directory for commands of `system`.
pub(crate) async fn check_cwd(system: &str, cwd: &str) -> Result<(), LocalError> {
    let invalid = |why: &str| LocalError::CwdInvalid {
        system: system.to_string(),
        cwd: cwd.to_string(),
        why: why.to_string(),
    };
    if !Path::new(cwd).is_absolute() {
        return Err(invalid("is not an absolute path"));
    }
    match tokio::fs::metadata(cwd).await {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(invalid("is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LocalError::CwdMissing {
            system: system.to_string(),
            cwd: cwd.to_string(),
        }),
        Err(e) => Err(invalid(&format!("cannot be read ({e})"))),
    }
}
