//! User authentication: password (with keyboard-interactive as a fallback), private keys
//! (OpenSSH, PEM and PKCS#8; encrypted with a passphrase; RSA signed with rsa-sha2-512/256).
//! Secrets are exposed only in the call that sends or decodes them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use orca_core::model::Credential;
use orca_core::{Error, ErrorKind, Result};
use russh::MethodKind;
use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::client::ClientHandler;
use super::error::{Phase, russh_error};

/// Decoded private keys, keyed by a digest of key text and passphrase. Decoding an encrypted
/// OpenSSH key runs bcrypt (tens of milliseconds): a fan-out to a thousand hosts with one key
/// decodes it once. Failures are cached too (the same text gives the same answer).
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    map: Mutex<HashMap<[u8; 32], KeySlot>>,
}

/// One decoded key (or the reason it cannot be decoded), decoded once.
type KeySlot = Arc<OnceCell<Result<Arc<PrivateKey>>>>;

/// Entries kept at most; past that the cache starts over.
const KEY_CACHE_MAX: usize = 256;

impl KeyCache {
    /// The decoded key of `credential`, or `None` for credentials without a key.
    pub(crate) async fn key(&self, credential: &Credential) -> Result<Option<Arc<PrivateKey>>> {
        let Credential::PrivateKey { key, passphrase } = credential else {
            return Ok(None);
        };
        let mut h = Sha256::new();
        h.update(key.expose_secret().as_bytes());
        h.update([0u8]);
        if let Some(p) = passphrase {
            h.update([1u8]);
            h.update(p.expose_secret().as_bytes());
        }
        let digest: [u8; 32] = h.finalize().into();
        let cell = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= KEY_CACHE_MAX && !map.contains_key(&digest) {
                map.clear();
            }
            map.entry(digest).or_default().clone()
        };
        let key = key.clone();
        let passphrase = passphrase.clone();
        cell.get_or_init(|| async move {
            tokio::task::spawn_blocking(move || {
                decode_key(
                    key.expose_secret(),
                    passphrase.as_ref().map(|p| p.expose_secret()),
                )
            })
            .await
            .unwrap_or_else(|e| Err(Error::unexpected(format!("key decoding task failed: {e}"))))
        })
        .await
        .clone()
        .map(Some)
    }
}

/// Parse a private key, with precise errors for the usual mistakes.
pub(crate) fn decode_key(text: &str, passphrase: Option<&str>) -> Result<Arc<PrivateKey>> {
    use russh::keys::Error as K;
    if !text.contains("-----BEGIN ") && !text.trim_start().starts_with("PuTTY-User-Key-File-") {
        return Err(Error::invalid(
            "the SSH private key is not in a known format: expected an OpenSSH \
             ('-----BEGIN OPENSSH PRIVATE KEY-----'), PEM or PKCS#8 private key",
        ));
    }
    match russh::keys::decode_secret_key(text, passphrase) {
        Ok(k) => Ok(Arc::new(k)),
        Err(K::KeyIsEncrypted) => Err(Error::invalid(
            "the SSH private key is encrypted and no passphrase is configured: add the \
             passphrase to the credential",
        )),
        Err(e) => {
            let s = e.to_string();
            let wrong_pass = passphrase.is_some()
                && (matches!(e, K::CouldNotReadKey)
                    || s.contains("crypto")
                    || s.contains("Crypto")
                    || s.contains("decrypt")
                    || s.contains("padding")
                    || s.contains("checkint"));
            if wrong_pass {
                Err(Error::invalid(
                    "the SSH private key could not be decrypted: the passphrase is wrong",
                ))
            } else {
                Err(Error::invalid(format!(
                    "the SSH private key is malformed or unsupported ({s}): check that the \
                     whole key, with its BEGIN/END lines, was stored"
                )))
            }
        }
    }
}

fn methods(m: &russh::MethodSet) -> String {
    let names: Vec<&str> = m.iter().map(<&str>::from).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn auth_failed(msg: String) -> Error {
    Error::new(ErrorKind::AuthFailed, msg)
}

/// Authenticate `user` on `handle` with `credential` (`key` is its decoded private key).
pub(crate) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    addr: &str,
    user: &str,
    credential: &Credential,
    key: Option<Arc<PrivateKey>>,
) -> Result<()> {
    let err = |e: russh::Error| russh_error(&e, addr, Phase::Auth);
    match credential {
        Credential::None => {
            let r = handle.authenticate_none(user).await.map_err(err)?;
            match r {
                AuthResult::Success => Ok(()),
                AuthResult::Failure {
                    remaining_methods, ..
                } => Err(auth_failed(format!(
                    "{addr} requires authentication for user '{user}' and no credential is \
                     configured (the server accepts: {})",
                    methods(&remaining_methods)
                ))),
            }
        }
        Credential::Password(password) => {
            let r = handle
                .authenticate_password(user, password.expose_secret())
                .await
                .map_err(err)?;
            let remaining = match r {
                AuthResult::Success => return Ok(()),
                AuthResult::Failure {
                    remaining_methods, ..
                } => remaining_methods,
            };
            if remaining.contains(&MethodKind::KeyboardInteractive) {
                return keyboard_interactive(handle, addr, user, password.expose_secret()).await;
            }
            Err(auth_failed(format!(
                "{addr} rejected the password of user '{user}' (the server accepts: {})",
                methods(&remaining)
            )))
        }
        Credential::PrivateKey { .. } => {
            let key = key.ok_or_else(|| Error::unexpected("private key was not decoded"))?;
            let hash = if key.algorithm().is_rsa() {
                // `None` from the server means it did not say: modern servers all take SHA-256.
                match handle.best_supported_rsa_hash().await.map_err(err)? {
                    Some(h) => h,
                    None => Some(HashAlg::Sha256),
                }
            } else {
                None
            };
            let fp = key.public_key().fingerprint(HashAlg::Sha256).to_string();
            let r = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
                .await
                .map_err(err)?;
            match r {
                AuthResult::Success => Ok(()),
                AuthResult::Failure {
                    remaining_methods, ..
                } => Err(auth_failed(format!(
                    "{addr} refused the key {fp} for user '{user}': is its public key in the \
                     user's authorized_keys? (the server accepts: {})",
                    methods(&remaining_methods)
                ))),
            }
        }
    }
}

/// Keyboard-interactive: every hidden prompt gets the password, visible prompts the user
/// name. At most a few rounds.
async fn keyboard_interactive(
    handle: &mut Handle<ClientHandler>,
    addr: &str,
    user: &str,
    password: &str,
) -> Result<()> {
    let err = |e: russh::Error| russh_error(&e, addr, Phase::Auth);
    let mut r = handle
        .authenticate_keyboard_interactive_start(user, None::<String>)
        .await
        .map_err(err)?;
    for _ in 0..8 {
        match r {
            KeyboardInteractiveAuthResponse::Success => return Ok(()),
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods, ..
            } => {
                return Err(auth_failed(format!(
                    "{addr} rejected the password of user '{user}' (keyboard-interactive; the \
                     server accepts: {})",
                    methods(&remaining_methods)
                )));
            }
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| {
                        if p.echo {
                            user.to_string()
                        } else {
                            password.to_string()
                        }
                    })
                    .collect();
                r = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .map_err(err)?;
            }
        }
    }
    Err(auth_failed(format!(
        "{addr} kept asking keyboard-interactive questions for user '{user}': only password \
         prompts can be answered"
    )))
}
