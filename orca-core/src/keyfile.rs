//! The key file: the credential [`KeyRing`] an embedded Orca keeps in its data directory.
//!
//! Frontends that run without a configured key ring (the `orca` binary's embedded default, the
//! Python bindings) keep their Fernet keys in `<data dir>/keys.json`, created on first use with
//! mode `0600`:
//!
//! ```json
//! {"primary": "k1", "keys": {"k1": "<fernet key, URL-safe base64 of 32 bytes>"}}
//! ```
//!
//! Every frontend that opens the same data directory reads the same file, so credentials
//! stored by one can be decrypted by the others. To rotate, add a key, make it `primary`,
//! re-encrypt ([`crate::Orca::reencrypt_credentials`]), then remove the old key.
//!
//! ```
//! # fn main() -> orca_core::Result<()> {
//! let dir = std::env::temp_dir().join(format!("orca-keyfile-doc-{}", std::process::id()));
//! let path = dir.join(orca_core::keyfile::KEY_FILE_NAME);
//! let ring = orca_core::keyfile::load_or_create(&path)?;
//! assert_eq!(ring.primary_id(), "k1");
//! // Later opens read the same keys.
//! let again = orca_core::keyfile::load(&path)?;
//! assert_eq!(again.key_ids(), ring.key_ids());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use secrecy::zeroize::Zeroize;

use crate::vault::KeyRing;
use crate::{Error, ErrorKind, Result};

/// The key file's name inside a data directory.
pub const KEY_FILE_NAME: &str = "keys.json";

/// The id of the key a new key file starts with.
pub const FIRST_KEY_ID: &str = "k1";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    primary: String,
    keys: BTreeMap<String, String>,
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        for v in self.keys.values_mut() {
            v.zeroize();
        }
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Storage,
    };
    Error::new(kind, format!("cannot {what} {}: {e}", path.display()))
}

/// Refuse a key file that other users can read or write.
#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the key file {} is accessible by other users (mode {mode:03o}): \
                 run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

/// Read the key ring from the key file at `path`.
///
/// Errors: `NotFound` if it does not exist; `PermissionDenied` if other users may read or
/// write it (Unix); `InvalidInput` if it is not a key file or a key is not a Fernet key.
pub fn load(path: &Path) -> Result<KeyRing> {
    let meta = std::fs::metadata(path).map_err(|e| io_error("read the key file", path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "the key file {} is not a regular file",
            path.display()
        )));
    }
    check_mode(path, &meta)?;
    let mut text =
        std::fs::read_to_string(path).map_err(|e| io_error("read the key file", path, e))?;
    let parsed: std::result::Result<KeyFile, _> = serde_json::from_str(&text);
    text.zeroize();
    let file = parsed.map_err(|e| {
        Error::invalid(format!(
            "{} is not an Orca key file ({e}); expected {{\"primary\": \"k1\", \"keys\": \
             {{\"k1\": \"<fernet key>\"}}}}",
            path.display()
        ))
    })?;
    let keys = file
        .keys
        .iter()
        .map(|(id, k)| (id.clone(), SecretString::from(k.clone())))
        .collect();
    KeyRing::new(keys, &file.primary)
        .map_err(|e| Error::invalid(format!("the key file {}: {}", path.display(), e.message())))
}

/// Create a key file at `path` with one new key, atomically: the file appears complete or not
/// at all, with mode `0600`, and its parent directories are created (mode `0700`).
///
/// Errors: `AlreadyExists` if a key file is there already (it is left untouched).
pub fn create(path: &Path) -> Result<KeyRing> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dir(dir)?;
    let key = KeyRing::generate_key();
    let ring = KeyRing::new(vec![(FIRST_KEY_ID.to_string(), key.clone())], FIRST_KEY_ID)?;
    let mut body = {
        use secrecy::ExposeSecret;
        let file = KeyFile {
            primary: FIRST_KEY_ID.to_string(),
            keys: BTreeMap::from([(FIRST_KEY_ID.to_string(), key.expose_secret().to_string())]),
        };
        serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::unexpected(format!("cannot encode the key file: {e}")))?
    };
    body.push(b'\n');
    let tmp = temp_path(path);
    let written = write_new(&tmp, &body);
    body.zeroize();
    written?;
    // A hard link never replaces an existing file: two processes creating the key file at
    // once end with one winner, and the other sees `AlreadyExists`.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(ring),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::already_exists(
            format!("the key file {} exists already", path.display()),
        )),
        Err(e) => Err(io_error("create the key file", path, e)),
    }
}

/// Read the key file at `path`, creating it with a new key if it does not exist.
pub fn load_or_create(path: &Path) -> Result<KeyRing> {
    match load(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => match create(path) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => load(path),
            r => r,
        },
        r => r,
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| io_error("create the directory", dir, e))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| KEY_FILE_NAME.to_string());
    let unique = uuid::Uuid::now_v7().simple().to_string();
    path.with_file_name(format!(".{name}.{}.{unique}.tmp", std::process::id()))
}

fn write_new(path: &Path, body: &[u8]) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let r = o.open(path).and_then(|mut f| {
        f.write_all(body)?;
        f.sync_all()
    });
    if let Err(e) = r {
        let _ = std::fs::remove_file(path);
        return Err(io_error("write the key file", path, e));
    }
    Ok(())
}

/// Read and parse the key file at `path` (mode checked), for the editing functions below.
fn read_file(path: &Path) -> Result<KeyFile> {
    let meta = std::fs::metadata(path).map_err(|e| io_error("read the key file", path, e))?;
    check_mode(path, &meta)?;
    let mut text =
        std::fs::read_to_string(path).map_err(|e| io_error("read the key file", path, e))?;
    let parsed: std::result::Result<KeyFile, _> = serde_json::from_str(&text);
    text.zeroize();
    parsed.map_err(|e| Error::invalid(format!("{} is not an Orca key file ({e})", path.display())))
}

/// Replace the key file at `path` with `file`, atomically (write a new file, then rename).
fn replace_file(path: &Path, file: &KeyFile) -> Result<()> {
    // Refuse to write a ring that would not load.
    let keys = file
        .keys
        .iter()
        .map(|(id, k)| (id.clone(), SecretString::from(k.clone())))
        .collect();
    KeyRing::new(keys, &file.primary)?;
    let mut body = serde_json::to_vec_pretty(file)
        .map_err(|e| Error::unexpected(format!("cannot encode the key file: {e}")))?;
    body.push(b'\n');
    let tmp = temp_path(path);
    let written = write_new(&tmp, &body);
    body.zeroize();
    written?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error("replace the key file", path, e)
    })
}

/// The id a new key gets: `k<n>` with `n` one more than the highest `k<n>` in the file.
fn next_id(file: &KeyFile) -> String {
    let n = file
        .keys
        .keys()
        .filter_map(|id| id.strip_prefix('k').and_then(|n| n.parse::<u64>().ok()))
        .max()
        .unwrap_or(0);
    format!("k{}", n + 1)
}

/// The order of key ids by age: `k<n>` by `n`, others after them by name.
pub fn key_order(id: &str) -> (u64, String) {
    match id.strip_prefix('k').and_then(|n| n.parse::<u64>().ok()) {
        Some(n) => (n, String::new()),
        None => (u64::MAX, id.to_string()),
    }
}

/// The key ids in the key file at `path` (oldest first) and the primary's id.
pub fn key_ids(path: &Path) -> Result<(Vec<String>, String)> {
    let file = read_file(path)?;
    let mut ids: Vec<String> = file.keys.keys().cloned().collect();
    ids.sort_by_key(|id| key_order(id));
    Ok((ids, file.primary.clone()))
}

/// Add a new random key to the key file at `path` without making it primary; returns its id.
/// Every process that loads the file afterwards can decrypt what the new key encrypts.
pub fn add_key(path: &Path) -> Result<String> {
    let mut file = read_file(path)?;
    let id = next_id(&file);
    {
        use secrecy::ExposeSecret;
        let key = KeyRing::generate_key();
        file.keys
            .insert(id.clone(), key.expose_secret().to_string());
    }
    replace_file(path, &file)?;
    Ok(id)
}

/// Make `id` the primary key of the key file at `path` (the key that encrypts).
pub fn set_primary(path: &Path, id: &str) -> Result<()> {
    let mut file = read_file(path)?;
    if !file.keys.contains_key(id) {
        return Err(Error::not_found(format!(
            "the key file {} has no key '{id}'",
            path.display()
        )));
    }
    file.primary = id.to_string();
    replace_file(path, &file)
}

/// Remove the key `id` from the key file at `path`. The primary cannot be removed. The caller
/// must make sure no stored secret is still sealed under it.
pub fn remove_key(path: &Path, id: &str) -> Result<()> {
    let mut file = read_file(path)?;
    if file.primary == id {
        return Err(Error::conflict(format!(
            "'{id}' is the primary key: it encrypts new credentials and cannot be retired; \
             rotate to a new key first"
        )));
    }
    if file.keys.remove(id).is_none() {
        return Err(Error::not_found(format!(
            "the key file {} has no key '{id}'",
            path.display()
        )));
    }
    replace_file(path, &file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Credential;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "orca-keyfile-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn create_then_load_decrypts_the_same_secrets() {
        let d = dir();
        let path = d.join("sub").join(KEY_FILE_NAME);
        assert_eq!(load(&path).unwrap_err().kind(), ErrorKind::NotFound);
        let ring = load_or_create(&path).unwrap();
        let sealed = ring
            .seal(
                "r",
                &Credential::Password(SecretString::from("pw".to_string())),
            )
            .unwrap();
        let again = load_or_create(&path).unwrap();
        assert!(matches!(
            again.open("r", &sealed).unwrap(),
            Credential::Password(_)
        ));
        assert_eq!(create(&path).unwrap_err().kind(), ErrorKind::AlreadyExists);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(d.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn concurrent_creators_agree_on_one_key() {
        let d = dir();
        let path = d.join(KEY_FILE_NAME);
        let rings: Vec<KeyRing> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create(&path).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let sealed = rings[0].seal("r", &Credential::None).unwrap();
        for r in &rings {
            r.open("r", &sealed).unwrap();
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_files_are_refused_with_what_to_do() {
        let d = dir();
        let path = d.join(KEY_FILE_NAME);
        write_new(&path, b"{\"primary\": \"k1\"}").unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("not an Orca key file"), "{e}");
        std::fs::remove_file(&path).unwrap();
        write_new(
            &path,
            b"{\"primary\": \"k2\", \"keys\": {\"k1\": \"short\"}}",
        )
        .unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            !e.message().contains("short"),
            "a key must not be echoed: {e}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::remove_file(&path).unwrap();
            load_or_create(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
            assert!(e.message().contains("chmod 600"), "{e}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn keys_can_be_added_made_primary_and_removed() {
        let d = dir();
        let path = d.join(KEY_FILE_NAME);
        let old = load_or_create(&path).unwrap();
        let sealed = old.seal("r", &Credential::None).unwrap();
        assert_eq!(add_key(&path).unwrap(), "k2");
        let (ids, primary) = key_ids(&path).unwrap();
        assert_eq!(
            (ids, primary.as_str()),
            (vec!["k1".to_string(), "k2".to_string()], "k1")
        );
        set_primary(&path, "k2").unwrap();
        let ring = load(&path).unwrap();
        assert_eq!(ring.primary_id(), "k2");
        ring.open("r", &sealed).unwrap();
        assert_eq!(
            remove_key(&path, "k2").unwrap_err().kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            set_primary(&path, "k9").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        remove_key(&path, "k1").unwrap();
        assert_eq!(load(&path).unwrap().key_ids(), vec!["k2"]);
        assert_eq!(add_key(&path).unwrap(), "k3");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
