//! Who a local command runs as, and where.
//!
//! When Orca runs as root, commands run as [`LocalConfig::user`] (default `nobody`), never
//! silently as root: a user that resolves to uid 0 is refused unless
//! [`LocalConfig::allow_root`] is set. When Orca runs as another user there is nothing to drop
//! to, and commands run as that user. Either way each run gets a private working directory of
//! its own, removed with everything in it when the run ends.

use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User, geteuid, mkdtemp};
use orca_core::ids::ExecutionId;
use orca_core::{Error, ErrorKind, Result};

#[cfg(doc)]
use super::config::LocalConfig;

/// The unprivileged user a command runs as, because Orca runs as root.
#[derive(Debug, Clone)]
pub(crate) struct RunAs {
    pub(crate) uid: Uid,
    pub(crate) gid: Gid,
    pub(crate) name: String,
}

/// Whom commands run as, given [`LocalConfig::user`] and [`LocalConfig::allow_root`]: `Some`
/// user to drop to (Orca runs as root), or `None` to run as Orca's own user (Orca is not root,
/// or root was allowed explicitly). Blocking: it asks the user database (NSS).
pub(crate) fn run_as(user: &str, allow_root: bool) -> Result<Option<RunAs>> {
    if !geteuid().is_root() {
        return Ok(None);
    }
    let name = user;
    let user = User::from_name(name)
        .map_err(|e| {
            Error::unexpected(format!(
                "local connector: looking up the user '{name}' failed: {e}"
            ))
        })?
        .ok_or_else(|| {
            Error::invalid(format!(
                "local connector: the user '{name}' does not exist on this host; Orca runs as root \
                 and runs local commands as that user (setting `execution.local.user`): create \
                 it, or set `execution.local.user` to an existing unprivileged user"
            ))
        })?;
    if user.uid.is_root() {
        if allow_root {
            return Ok(None);
        }
        return Err(Error::denied(format!(
            "local connector: refusing to run a command as root: Orca runs as root and \
             `execution.local.user` is '{name}' (uid 0), so the command could read Orca's own \
             secrets; set `execution.local.user` to an unprivileged user, or set \
             `execution.local.allow_root = true` to accept that"
        )));
    }
    Ok(Some(RunAs {
        uid: user.uid,
        gid: user.gid,
        name: user.name,
    }))
}

/// A private working directory for one run: created by `mkdtemp` (mode `0700`), owned by the
/// user the command runs as, and removed with everything in it by [`WorkDir::remove`] or, if
/// the run is abandoned, on drop.
#[derive(Debug)]
pub(crate) struct WorkDir {
    path: Option<PathBuf>,
}

impl WorkDir {
    /// Create one under `parent`, named after the execution when there is one. Blocking.
    pub(crate) fn create(
        parent: &Path,
        execution: Option<ExecutionId>,
        owner: Option<&RunAs>,
    ) -> Result<WorkDir> {
        let name = match execution {
            Some(id) => format!("orca-{id}-XXXXXX"),
            None => "orca-run-XXXXXX".to_string(),
        };
        let failed = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::ConnectionFailed,
                format!(
                    "cannot create a working directory for a local command under {}: {e}; it \
                     must exist and be writable by Orca (the directory is Orca's TMPDIR)",
                    parent.display()
                ),
            )
        };
        let path = mkdtemp(&parent.join(name)).map_err(|e| failed(&e))?;
        let dir = WorkDir { path: Some(path) };
        if let Some(u) = owner {
            // On failure `dir` is dropped, which removes it.
            std::os::unix::fs::chown(dir.path(), Some(u.uid.as_raw()), Some(u.gid.as_raw()))
                .map_err(|e| failed(&e))?;
        }
        Ok(dir)
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new("/nonexistent"))
    }

    /// Remove it and everything in it (best effort; failures are logged).
    pub(crate) async fn remove(mut self) {
        if let Some(path) = self.path.take() {
            let p = path.clone();
            if tokio::task::spawn_blocking(move || remove_tree(&p))
                .await
                .is_err()
            {
                // Refused (the runtime is shutting down) or panicked: try here.
                remove_tree(&path);
            }
        }
    }
}

impl Drop for WorkDir {
    /// An abandoned run (its future dropped, e.g. while the runtime shuts down): remove the
    /// directory here and now. A blocking task could be refused by a runtime that is shutting
    /// down, leaving the directory behind; this is rare enough to block briefly.
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            remove_tree(&path);
        }
    }
}

/// Remove `dir` and everything in it, best effort. `remove_dir_all` never follows symlinks
/// (it works on directory handles), so a command cannot make Orca delete files elsewhere.
///
/// Root removes anything. When Orca is not root, the command ran as Orca's own user and may
/// have left directories without write permission (`chmod 500 d`), which that user cannot
/// empty: those are made writable and the removal is tried once more. (As root this step is
/// never needed, so Orca never changes modes on paths a less privileged command controls.)
fn remove_tree(dir: &Path) {
    let first = match std::fs::remove_dir_all(dir) {
        Ok(()) => return,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => e,
    };
    if !geteuid().is_root() {
        make_writable(dir);
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => {}
        }
    }
    tracing::warn!(
        dir = %dir.display(),
        error = %first,
        "could not remove a local command's working directory"
    );
}

/// Give every directory under `dir` (symlinks not followed) mode `0700`.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_dir_is_private_and_removed_with_its_contents() {
        let parent = std::env::temp_dir();
        let id = ExecutionId::new();
        let dir = WorkDir::create(&parent, Some(id), None).unwrap();
        let path = dir.path().to_path_buf();
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("orca-{id}-")),
            "{}",
            path.display()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let locked = path.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join("f"), "x").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        std::os::unix::fs::symlink("/etc", path.join("etc")).unwrap();
        drop(dir);
        assert!(!path.exists(), "{} was removed", path.display());
        assert!(
            Path::new("/etc/passwd").exists(),
            "symlinks are not followed"
        );
    }

    #[test]
    fn a_missing_parent_is_a_clear_error() {
        let e = WorkDir::create(Path::new("/nonexistent/orca"), None, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionFailed);
        assert!(e.message().contains("/nonexistent/orca"), "{e}");
    }
}
