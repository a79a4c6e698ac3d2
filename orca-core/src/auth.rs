//! Account rules shared by every frontend (HTTP, CLI admin verbs, Python): what a password must
//! look like, and how it is hashed and checked (argon2id); and the opaque secrets of sessions,
//! refresh tokens, API tokens and WebSocket tickets (32 random bytes behind a prefix naming
//! what the secret is for; only the SHA-256 of a secret is stored). The flows that use them
//! (login, refresh, logout, API tokens, tickets) are operations of [`crate::Orca`].

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::model::{Role, Timestamp};
use crate::store::TokenRecord;
use crate::{Error, Result};

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (bounds the cost of hashing untrusted input).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Check a new password for `username` against the policy: 12 to 1024 bytes' worth of
/// characters, not the user name, not one repeated character, no control characters.
/// The error never contains the password.
pub fn check_password_policy(username: &str, password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(format!(
            "the password is too long: use at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::invalid(
            "the password contains control characters; use printable characters only",
        ));
    }
    if password.to_lowercase().contains(&username.to_lowercase()) && !username.is_empty() {
        return Err(Error::invalid(
            "the password must not contain the user name",
        ));
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(Error::invalid(
            "the password is one character repeated; choose a real password",
        ));
    }
    Ok(())
}

// ----- Password hashing -----------------------------------------------------------------
//
// argon2id with the crate's defaults (OWASP's: m = 19 MiB, t = 2, p = 1). Hashing runs on the
// blocking pool; unknown users are checked against a dummy hash so that known and unknown user
// names cost the same. One implementation for every frontend (HTTP, the CLI's admin verbs,
// Python).

fn random_bytes_24() -> [u8; 24] {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    b
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hash a password (argon2id, random salt) into a PHC string. Checks the password policy of
/// [`check_password_policy`] first. CPU-heavy: call from blocking context or
/// use [`hash_password_async`].
pub fn hash_password(username: &str, password: &SecretString) -> Result<String> {
    check_password_policy(username, password.expose_secret())?;
    hash_unchecked(password.expose_secret())
}

fn hash_unchecked(password: &str) -> Result<String> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::unexpected(format!("cannot hash a password: {e}")))
}

/// [`hash_password`] on the blocking pool.
pub async fn hash_password_async(username: &str, password: SecretString) -> Result<String> {
    let username = username.to_string();
    tokio::task::spawn_blocking(move || hash_password(&username, &password))
        .await
        .map_err(|e| Error::unexpected(format!("password hashing task failed: {e}")))?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        use base64::Engine;
        let pw = base64::engine::general_purpose::STANDARD.encode(random_bytes_24());
        hash_unchecked(&pw).unwrap_or_default()
    })
}

/// Whether `password` matches `hash`. With no hash (unknown user, or a user without a
/// password), a dummy hash is checked so the answer takes as long, and is `false`.
pub fn verify_password(password: &SecretString, hash: Option<&str>) -> bool {
    let (target, real) = match hash {
        Some(h) => (h, true),
        None => (dummy_hash(), false),
    };
    let ok = match PasswordHash::new(target) {
        Ok(parsed) => argon2()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            // A malformed stored hash: spend the same time, then refuse.
            if let Ok(parsed) = PasswordHash::new(dummy_hash()) {
                let _ = argon2().verify_password(password.expose_secret().as_bytes(), &parsed);
            }
            false
        }
    };
    ok && real
}

/// [`verify_password`] on the blocking pool.
pub async fn verify_password_async(password: SecretString, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
        .await
        .unwrap_or(false)
}

/// What an opaque secret is for. Stored as a `purpose:*` scope on its token record and as a
/// prefix of the secret, and checked on every use, so a secret of one kind never works as
/// another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// A rotating refresh token (`orca_rt_`).
    Refresh,
    /// The anchor record of a login session; never presented by clients.
    Session,
    /// An API token (`orca_at_`).
    Api,
    /// A one-time WebSocket ticket (`orca_wt_`).
    WsTicket,
}

impl TokenPurpose {
    const ALL: [TokenPurpose; 4] = [
        TokenPurpose::Refresh,
        TokenPurpose::Session,
        TokenPurpose::Api,
        TokenPurpose::WsTicket,
    ];
    /// The prefix of its secrets.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenPurpose::Refresh => "orca_rt_",
            TokenPurpose::Session => "orca_ss_",
            TokenPurpose::Api => "orca_at_",
            TokenPurpose::WsTicket => "orca_wt_",
        }
    }
    /// The scope that marks its records.
    pub fn scope(self) -> &'static str {
        match self {
            TokenPurpose::Refresh => "purpose:refresh",
            TokenPurpose::Session => "purpose:session",
            TokenPurpose::Api => "purpose:api",
            TokenPurpose::WsTicket => "purpose:ws_ticket",
        }
    }
    /// The purpose of a record.
    pub fn of(record: &TokenRecord) -> Option<TokenPurpose> {
        Self::ALL
            .into_iter()
            .find(|p| record.scopes.iter().any(|s| s == p.scope()))
    }
}

/// `N` bytes from the operating system's CSPRNG (through `rand`'s thread RNG).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

/// A new opaque secret of `purpose`: prefix + 43 characters of URL-safe base64.
pub fn new_secret(purpose: TokenPurpose) -> String {
    use base64::Engine;
    format!(
        "{}{}",
        purpose.prefix(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// Whether `secret` looks like a secret of `purpose` (checked before any database lookup).
pub fn well_formed(secret: &str, purpose: TokenPurpose) -> bool {
    secret.strip_prefix(purpose.prefix()).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// The stored hash of a secret (hex SHA-256).
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The hash of a session's anchor record.
pub fn session_hash(sid: uuid::Uuid) -> String {
    secret_hash(&format!("{}{sid}", TokenPurpose::Session.prefix()))
}

/// Whether a record is usable at `now`: not revoked, not expired.
pub fn live(record: &TokenRecord, now: Timestamp) -> bool {
    record.revoked_at.is_none() && record.expires_at.is_none_or(|e| e > now)
}

/// The role cap of an API token (`role:<name>` scope), if any.
pub fn role_cap(record: &TokenRecord) -> Option<Role> {
    record
        .scopes
        .iter()
        .find_map(|s| s.strip_prefix("role:"))
        .and_then(|r| Role::parse(r).ok())
}

#[cfg(test)]
mod password_tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let pw = SecretString::from("correct horse battery".to_string());
        let h = hash_password("alice", &pw).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&pw, Some(&h)));
        let wrong = SecretString::from("wrong horse battery".to_string());
        assert!(!verify_password(&wrong, Some(&h)));
        assert!(!verify_password(&pw, None));
        assert!(!verify_password(&pw, Some("not a hash")));
        let short = SecretString::from("short".to_string());
        assert!(hash_password("alice", &short).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_password_policy("alice", "correct horse battery").is_ok());
        for bad in [
            "tiny1",
            "aaaaaaaaaaaaaaaa",
            "xxalice-password",
            "tab\tinside-password",
        ] {
            let e = check_password_policy("alice", bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
            assert!(!e.message().contains(bad), "{e}");
        }
        assert!(check_password_policy("bob", &"ab".repeat(600)).is_err());
    }
}
