//! The credential vault: Fernet with a key ring.
//!
//! Every key has an id. One key, the primary, encrypts; all keys decrypt, so keys can be
//! rotated: add a new primary, re-encrypt (see [`crate::Orca::reencrypt_credentials`]), retire
//! the old key. A sealed secret reads `orca1:<key id>:<fernet token>`, and the plaintext inside
//! carries the id of the record it belongs to, so a ciphertext copied onto another record fails
//! to decrypt. Plaintext exists only as `secrecy` types and short-lived buffers that are zeroed.

use std::fmt;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};

use crate::model::{Credential, SealedSecret};
use crate::{Error, ErrorKind, Result};

const PREFIX: &str = "orca1";

struct VaultKey {
    id: String,
    fernet: fernet::Fernet,
}

/// A ring of Fernet keys: one primary that encrypts, all that decrypt.
pub struct KeyRing {
    keys: Vec<VaultKey>,
    primary: usize,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.key_ids())
            .field("primary", &self.primary_id())
            .finish()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Plain {
    /// The record this secret belongs to.
    r: String,
    /// Kind: none | password | private_key.
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
}

impl Drop for Plain {
    fn drop(&mut self) {
        if let Some(s) = self.s.as_mut() {
            s.zeroize();
        }
        if let Some(p) = self.p.as_mut() {
            p.zeroize();
        }
    }
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl KeyRing {
    /// A new random Fernet key (URL-safe base64 of 32 bytes).
    pub fn generate_key() -> SecretString {
        SecretString::from(fernet::Fernet::generate_key())
    }

    /// A ring from `(id, key)` pairs; `primary` names the key that encrypts.
    pub fn new(keys: Vec<(String, SecretString)>, primary: &str) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::invalid("the key ring needs at least one key"));
        }
        let mut ring = Vec::with_capacity(keys.len());
        for (id, key) in keys {
            if !valid_key_id(&id) {
                return Err(Error::invalid(format!(
                    "key id '{id}' is invalid: use 1-32 letters, digits, '-' or '_'"
                )));
            }
            if ring.iter().any(|k: &VaultKey| k.id == id) {
                return Err(Error::invalid(format!(
                    "key id '{id}' appears twice in the key ring"
                )));
            }
            let fernet = fernet::Fernet::new(key.expose_secret()).ok_or_else(|| {
                Error::invalid(format!(
                    "key '{id}' is not a valid Fernet key (32 bytes, URL-safe base64)"
                ))
            })?;
            ring.push(VaultKey { id, fernet });
        }
        let primary = ring.iter().position(|k| k.id == primary).ok_or_else(|| {
            Error::invalid(format!(
                "the primary key '{primary}' is not in the key ring"
            ))
        })?;
        Ok(KeyRing {
            keys: ring,
            primary,
        })
    }

    /// A ring with one freshly generated key (tests, throw-away setups).
    pub fn ephemeral() -> Self {
        KeyRing::new(vec![("k1".into(), Self::generate_key())], "k1")
            .unwrap_or_else(|_| unreachable!("a generated key is valid"))
    }

    /// Ids of all keys.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// The id of the primary key.
    pub fn primary_id(&self) -> &str {
        &self.keys[self.primary].id
    }

    /// Encrypt `credential` for the record `record` (e.g. a system id) with the primary key.
    pub fn seal(&self, record: &str, credential: &Credential) -> Result<SealedSecret> {
        let plain = match credential {
            Credential::None => Plain {
                r: record.into(),
                k: "none".into(),
                s: None,
                p: None,
            },
            Credential::Password(p) => Plain {
                r: record.into(),
                k: "password".into(),
                s: Some(p.expose_secret().to_string()),
                p: None,
            },
            Credential::PrivateKey { key, passphrase } => Plain {
                r: record.into(),
                k: "private_key".into(),
                s: Some(key.expose_secret().to_string()),
                p: passphrase.as_ref().map(|p| p.expose_secret().to_string()),
            },
        };
        let mut buf = serde_json::to_vec(&plain)
            .map_err(|e| Error::unexpected(format!("cannot encode a credential: {e}")))?;
        let key = &self.keys[self.primary];
        let token = key.fernet.encrypt(&buf);
        buf.zeroize();
        Ok(SealedSecret(format!("{PREFIX}:{}:{token}", key.id)))
    }

    /// Decrypt a sealed secret that must belong to `record`.
    pub fn open(&self, record: &str, sealed: &SealedSecret) -> Result<Credential> {
        let crypto = |m: String| Error::new(ErrorKind::Crypto, m);
        let rest = sealed
            .0
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(|| crypto("the stored credential is not in Orca's sealed format".into()))?;
        let (key_id, token) = rest
            .split_once(':')
            .ok_or_else(|| crypto("the stored credential has no key id".into()))?;
        let key = self.keys.iter().find(|k| k.id == key_id).ok_or_else(|| {
            crypto(format!(
                "the credential was encrypted with key '{key_id}', which is not in the key ring; \
                 add that key (it may be retired only after re-encrypting)"
            ))
        })?;
        let mut buf = key.fernet.decrypt(token).map_err(|_| {
            crypto(format!(
                "the credential does not decrypt with key '{key_id}': wrong key or tampered data"
            ))
        })?;
        let parsed: std::result::Result<Plain, _> = serde_json::from_slice(&buf);
        buf.zeroize();
        let mut plain =
            parsed.map_err(|_| crypto("the decrypted credential is malformed".into()))?;
        if plain.r != record {
            return Err(crypto(
                "the credential belongs to another record (a ciphertext copied between records \
                 is refused)"
                    .into(),
            ));
        }
        let cred = match plain.k.as_str() {
            "none" => Credential::None,
            "password" => {
                Credential::Password(SecretString::from(plain.s.take().unwrap_or_default()))
            }
            "private_key" => Credential::PrivateKey {
                key: SecretString::from(plain.s.take().unwrap_or_default()),
                passphrase: plain.p.take().map(SecretString::from),
            },
            other => return Err(crypto(format!("unknown credential kind '{other}'"))),
        };
        Ok(cred)
    }

    /// Whether `sealed` is under the primary key already.
    pub fn is_current(&self, sealed: &SealedSecret) -> bool {
        sealed.key_id() == Some(self.primary_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Credential {
        Credential::Password(SecretString::from(s.to_string()))
    }

    #[test]
    fn round_trip_and_binding() {
        let ring = KeyRing::ephemeral();
        let sealed = ring.seal("rec-1", &pw("hunter22")).unwrap();
        assert!(sealed.0.starts_with("orca1:k1:"));
        assert!(!sealed.0.contains("hunter22"));
        match ring.open("rec-1", &sealed).unwrap() {
            Credential::Password(p) => assert_eq!(p.expose_secret(), "hunter22"),
            other => panic!("unexpected {other:?}"),
        }
        let err = ring.open("rec-2", &sealed).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Crypto);
        assert!(err.message().contains("another record"));
    }

    #[test]
    fn private_key_with_passphrase() {
        let ring = KeyRing::ephemeral();
        let c = Credential::PrivateKey {
            key: SecretString::from("-----BEGIN KEY-----".to_string()),
            passphrase: Some(SecretString::from("pp".to_string())),
        };
        let sealed = ring.seal("r", &c).unwrap();
        match ring.open("r", &sealed).unwrap() {
            Credential::PrivateKey { key, passphrase } => {
                assert_eq!(key.expose_secret(), "-----BEGIN KEY-----");
                assert_eq!(passphrase.unwrap().expose_secret(), "pp");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rotation_old_keys_decrypt_new_primary_encrypts() {
        let k1 = KeyRing::generate_key();
        let k2 = KeyRing::generate_key();
        let old = KeyRing::new(vec![("k1".into(), k1.clone())], "k1").unwrap();
        let sealed = old.seal("r", &pw("x")).unwrap();
        let ring = KeyRing::new(vec![("k1".into(), k1), ("k2".into(), k2)], "k2").unwrap();
        assert!(!ring.is_current(&sealed));
        assert!(matches!(
            ring.open("r", &sealed).unwrap(),
            Credential::Password(_)
        ));
        let resealed = ring.seal("r", &pw("x")).unwrap();
        assert_eq!(resealed.key_id(), Some("k2"));
        assert!(ring.is_current(&resealed));
    }

    #[test]
    fn wrong_key_and_tampering_fail_with_crypto() {
        let a = KeyRing::ephemeral();
        let b = KeyRing::ephemeral();
        let sealed = a.seal("r", &pw("x")).unwrap();
        assert_eq!(b.open("r", &sealed).unwrap_err().kind(), ErrorKind::Crypto);
        let mut t = sealed.0.clone();
        t.pop();
        t.push('A');
        assert_eq!(
            a.open("r", &SealedSecret(t)).unwrap_err().kind(),
            ErrorKind::Crypto
        );
        let missing =
            KeyRing::new(vec![("other".into(), KeyRing::generate_key())], "other").unwrap();
        let e = missing.open("r", &sealed).unwrap_err();
        assert!(e.message().contains("'k1'"), "{e}");
    }

    #[test]
    fn bad_ring_inputs() {
        assert!(KeyRing::new(vec![], "k").is_err());
        assert!(
            KeyRing::new(
                vec![("k".into(), SecretString::from("short".to_string()))],
                "k"
            )
            .is_err()
        );
        assert!(KeyRing::new(vec![("bad id".into(), KeyRing::generate_key())], "bad id").is_err());
        assert!(KeyRing::new(vec![("k".into(), KeyRing::generate_key())], "other").is_err());
        let dbg = format!("{:?}", KeyRing::ephemeral());
        assert!(dbg.contains("k1") && !dbg.contains("fernet"));
    }
}
