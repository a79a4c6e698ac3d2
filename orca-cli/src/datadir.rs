//! The data directory of an embedded Orca: the SQLite database (`orca.db`), the Fernet key ring
//! (`keys.json`, see [`orca_core::keyfile`]) and the secret that signs access tokens
//! (`jwt.secret`), all created on first start, files with mode `0600`, the directory `0700`.
//!
//! A directory owned by another user is refused with one line that says what to do; so is a key
//! ring that does not decrypt the credentials in the database (the key-file rule of
//! [`orca::keys`]).

use std::io::Write;
use std::path::Path;

use orca_core::{Error, ErrorKind, Result};
use secrecy::SecretString;

/// The JWT secret file's name inside a data directory.
pub const JWT_SECRET_FILE_NAME: &str = "jwt.secret";

/// Create `dir` (mode `0700`) if it is missing; refuse it if another user owns it.
pub fn prepare(dir: &Path) -> Result<()> {
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir).map_err(|e| {
            Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "cannot create the data directory {}: {e}; choose another with --data-dir",
                    dir.display()
                ),
            )
        })?;
    }
    check_owner(dir)
}

/// Refuse a directory that is not a directory or belongs to another user.
pub fn check_owner(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        Error::new(
            ErrorKind::NotFound,
            format!("cannot read the data directory {}: {e}", dir.display()),
        )
    })?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "the data directory {} is not a directory; choose another with --data-dir",
            dir.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            let owner = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
                .ok()
                .flatten()
                .map(|u| format!("'{}'", u.name))
                .unwrap_or_else(|| format!("uid {}", meta.uid()));
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the data directory {} belongs to user {owner}, not to you (uid {me}): run \
                     orca as that user, or choose your own directory with --data-dir",
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Give the SQLite database at `path` and its `-wal` and `-shm` files mode `0600` (SQLite
/// creates those two with the database's mode), in case they were created under a permissive
/// umask (before `orca serve` set its own, or by an older Orca). Missing files are skipped; a
/// file whose mode cannot be changed (another owner) is left alone with a warning.
pub fn make_database_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = Path::new(&name);
            let Ok(meta) = std::fs::metadata(file) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if !meta.is_file() || mode & 0o077 == 0 {
                continue;
            }
            match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => tracing::info!(
                    file = %file.display(),
                    was = format!("{mode:03o}"),
                    "made the database file private (mode 600)"
                ),
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    mode = format!("{mode:03o}"),
                    error = %e,
                    "the database file is accessible by other users and its mode cannot be changed"
                ),
            }
        }
    }
}

/// Read the JWT secret at `path`, creating a random one (mode `0600`) if it does not exist.
pub fn load_or_create_jwt_secret(path: &Path) -> Result<orca_http::JwtSecret> {
    match read_secret(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            use base64::Engine;
            let mut bytes = [0u8; 48];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            match write_new_secret(path, text.as_bytes()) {
                Ok(()) => read_secret(path),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => read_secret(path),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

fn read_secret(path: &Path) -> Result<orca_http::JwtSecret> {
    let meta = std::fs::metadata(path).map_err(|e| io_err("read", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the secret file {} is accessible by other users (mode {mode:03o}): run \
                     `chmod 600 {}`",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| io_err("read", path, e))?;
    let text = text.trim();
    if text.len() < 32 {
        return Err(Error::invalid(format!(
            "the secret file {} holds fewer than 32 bytes: delete it to generate a new one \
             (everyone will have to log in again)",
            path.display()
        )));
    }
    Ok(orca_http::JwtSecret::new(SecretString::from(
        text.to_string(),
    )))
}

fn write_new_secret(path: &Path, body: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create the directory of", path, e))?;
    }
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        uuid::Uuid::now_v7().simple()
    ));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let written = o.open(&tmp).and_then(|mut f| {
        f.write_all(body)?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("write", path, e));
    }
    // A hard link never replaces an existing file: concurrent first starts agree on one secret.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::already_exists(
            format!("{} exists already", path.display()),
        )),
        Err(e) => Err(io_err("create", path, e)),
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Storage,
    };
    Error::new(kind, format!("cannot {what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_secret_is_created_once_with_mode_0600() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub").join(JWT_SECRET_FILE_NAME);
        load_or_create_jwt_secret(&p).unwrap();
        let first = std::fs::read_to_string(&p).unwrap();
        load_or_create_jwt_secret(&p).unwrap();
        assert_eq!(first, std::fs::read_to_string(&p).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_or_create_jwt_secret(&p).unwrap_err();
            assert!(e.message().contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn database_files_are_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("orca.db");
        for name in ["orca.db", "orca.db-wal", "other"] {
            let p = d.path().join(name);
            std::fs::write(&p, "x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        make_database_private(&db);
        let mode = |n: &str| {
            std::fs::metadata(d.path().join(n))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("orca.db"), 0o600);
        assert_eq!(mode("orca.db-wal"), 0o600);
        assert_eq!(mode("other"), 0o644, "only the database's files");
    }

    #[test]
    fn prepare_creates_a_private_directory() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("data");
        prepare(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        let f = d.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(
            prepare(&f)
                .unwrap_err()
                .message()
                .contains("not a directory")
        );
    }
}
