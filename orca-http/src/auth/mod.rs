//! Authentication: passwords, access tokens (JWT), refresh tokens (opaque, rotated, reuse
//! revokes the family), API tokens (opaque, shown once) and WebSocket tickets (opaque, one-time,
//! short-lived). Opaque secrets are 32 random bytes; only their SHA-256 is stored.
//!
//! Every authenticated request reads the user's role, active flag and grants fresh
//! ([`orca_core::Orca::principal_for`]) and checks that its session is still open, so logout,
//! disabling a user and role changes take effect on the next request. A verified credential and
//! what was read with it are reused for at most `http.auth.cache_ttl_ms` (module `cache`); changes
//! made on this node end that reuse at once, changes made on another node as soon as they arrive
//! on the event bus.

pub(crate) mod cache;
pub(crate) mod cookie;
pub mod jwt;
mod live;
pub mod password;
mod session;
mod throttle;
mod tokens;

use orca_core::TokenRecord;
use orca_core::ids::UserId;
use orca_core::model::{Principal, Role, Timestamp};
use sha2::{Digest, Sha256};

#[cfg(test)]
pub(crate) use live::EndReason;
pub(crate) use live::{AuthChanges, Credential, follow_auth_changes};
pub use password::{hash_password, hash_password_async, verify_password};
pub use session::TokenPair;
pub use tokens::ApiTokenCreated;
pub(crate) use tokens::created_via;

/// `N` bytes from the operating system's CSPRNG (through `rand`'s thread RNG).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

/// What an opaque secret is for. Stored as a `purpose:*` scope on its record and as a prefix
/// of the secret, and checked on every use, so a secret of one kind never works as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A rotating refresh token (`orca_rt_`).
    Refresh,
    /// The anchor record of a login session; never presented by clients.
    Session,
    /// An API token (`orca_at_`).
    Api,
    /// A one-time WebSocket ticket (`orca_wt_`).
    WsTicket,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Refresh => "orca_rt_",
            Purpose::Session => "orca_ss_",
            Purpose::Api => "orca_at_",
            Purpose::WsTicket => "orca_wt_",
        }
    }
    pub fn scope(self) -> &'static str {
        match self {
            Purpose::Refresh => "purpose:refresh",
            Purpose::Session => "purpose:session",
            Purpose::Api => "purpose:api",
            Purpose::WsTicket => "purpose:ws_ticket",
        }
    }
    pub fn of(record: &TokenRecord) -> Option<Purpose> {
        [
            Purpose::Refresh,
            Purpose::Session,
            Purpose::Api,
            Purpose::WsTicket,
        ]
        .into_iter()
        .find(|p| record.scopes.iter().any(|s| s == p.scope()))
    }
}

/// A new opaque secret of `purpose`: prefix + 43 characters of URL-safe base64.
pub(crate) fn new_secret(purpose: Purpose) -> String {
    use base64::Engine;
    format!(
        "{}{}",
        purpose.prefix(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// Whether `secret` looks like a secret of `purpose` (checked before any database lookup).
pub(crate) fn well_formed(secret: &str, purpose: Purpose) -> bool {
    secret.strip_prefix(purpose.prefix()).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// The stored hash of a secret (hex SHA-256).
pub(crate) fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The hash of a session's anchor record.
pub(crate) fn session_hash(sid: uuid::Uuid) -> String {
    secret_hash(&format!("{}{sid}", Purpose::Session.prefix()))
}

/// Whether a record is usable now: not revoked, not expired.
pub(crate) fn live(record: &TokenRecord, now: Timestamp) -> bool {
    record.revoked_at.is_none() && record.expires_at.is_none_or(|e| e > now)
}

/// The role cap of an API token (`role:<name>` scope), if any.
pub(crate) fn role_cap(record: &TokenRecord) -> Option<Role> {
    record
        .scopes
        .iter()
        .find_map(|s| s.strip_prefix("role:"))
        .and_then(|r| Role::parse(r).ok())
}

/// How a caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// An access token of a login session.
    Session(uuid::Uuid),
    /// An API token.
    ApiToken(uuid::Uuid),
}

/// An authenticated caller: the principal as stored now.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: Principal,
    pub user_id: UserId,
    pub via: Via,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_purpose() {
        let s = new_secret(Purpose::Refresh);
        assert!(well_formed(&s, Purpose::Refresh));
        assert!(!well_formed(&s, Purpose::Api));
        assert!(!well_formed("orca_rt_short", Purpose::Refresh));
        assert!(!well_formed(
            &format!("orca_ss_{}", uuid::Uuid::nil()),
            Purpose::Refresh
        ));
        assert_ne!(new_secret(Purpose::Api), new_secret(Purpose::Api));
        assert_eq!(secret_hash("x").len(), 64);
    }
}
