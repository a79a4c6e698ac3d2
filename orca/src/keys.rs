//! The key-file rule: which key ring opens the credentials of a database.
//!
//! 1. The key file is loaded if it exists.
//! 2. If it is missing and the database already holds encrypted credentials, opening fails: a
//!    new key could not decrypt them (restore the file from a backup).
//! 3. If it is missing and the database holds none, it is created with a new key when allowed
//!    (a process that runs the engine), and opening fails otherwise (a client uses the
//!    engine's keys, it never makes its own).
//! 4. The ring must decrypt a sample of the credentials in the database: a key file of another
//!    Orca, or an old copy, is refused at once rather than at the first job.

use std::path::Path;

use orca_core::{Error, ErrorKind, KeyRing, Result, Store, keyfile};

/// How many credentials are tried against the key ring.
const SAMPLE: u32 = 50;

/// The key ring in `key_file` for `store`, by the rule above. `create` allows a missing file
/// to be created; `hint` is how the user names the key file, for messages.
pub async fn key_ring(
    store: &dyn Store,
    key_file: &Path,
    create: bool,
    hint: &str,
) -> Result<KeyRing> {
    let sample = store.list_sealed_not_under("", SAMPLE).await?;
    let ring = match keyfile::load(key_file) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound && !sample.is_empty() => {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "the database holds encrypted credentials but the key file {} is missing: \
                     restore it from your backup (or point {hint} at it); a new key could not \
                     decrypt them",
                    key_file.display()
                ),
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound && create => keyfile::load_or_create(key_file)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Error::not_found(format!(
                "the key file {} does not exist: open the database once as its engine to \
                 create it, or point {hint} at the engine's key file",
                key_file.display()
            )));
        }
        Err(e) => return Err(e),
    };
    for (id, sealed) in &sample {
        if let Err(e) = ring.open(&id.to_string(), sealed) {
            let key = sealed.key_id().unwrap_or("?");
            let why = if ring.key_ids().contains(&key) {
                format!("its key '{key}' is not the key that encrypted them")
            } else {
                format!("it has no key '{key}'")
            };
            tracing::debug!(error = %e, "key ring check failed");
            return Err(Error::new(
                ErrorKind::Crypto,
                format!(
                    "the key file {} does not decrypt the credentials in this database ({why}): \
                     it holds another Orca's keys or an old copy; point {hint} at this \
                     database's own key file",
                    key_file.display()
                ),
            ));
        }
    }
    Ok(ring)
}
