//! A short-lived cache of authenticated callers, so a burst of requests with the same bearer
//! credential does not verify the token and read its session, user and grants from the store
//! every time.
//!
//! # What is cached, and for how long
//! The key is the SHA-256 of the bearer credential (an access token or an API token; the secret
//! itself is not kept). The value is the [`Caller`] the uncached path produced: the principal
//! as stored (role, active user, grants; an API token's role cap applied) and how it
//! authenticated. An entry is used only while all of these hold:
//! - it is younger than `http.auth.cache_ttl_ms` (default 1 s, at most 5 s; 0 switches the
//!   cache off);
//! - the access token is not past its `exp` (plus the configured leeway), and the session or
//!   API token record is not past its `expires_at` (by the Orca clock);
//! - no change of a user, of a user's grants or of any token was written through this
//!   process's [`crate::AuditContextLayer`] since the entry's store reads began (the
//!   process-wide [`epoch`]).
//!
//! # Logout, disabling, role and password changes
//! On **this node** they take effect on the next request: they are store writes
//! (`revoke_tokens`, `update_user`, `set_grants`) that pass through the audit layer, which calls
//! [`auth_changed`] after each of them, and every entry read before that is never used again.
//! An authentication that read the store before the write but finishes after it carries the
//! older epoch, so it is not used either. The epoch is process-wide on purpose: any such write
//! empties every cache of the process (they are rare next to reads).
//!
//! On **another node** (several `orca serve` over one PostgreSQL) the change is in the
//! database at once, but this node may answer from its cache for at most `cache_ttl_ms` after
//! the change, then reads the store again. That is the bound; set `cache_ttl_ms = 0` where even
//! that is too long.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orca_core::model::Timestamp;
use sha2::{Digest, Sha256};

use super::Caller;

/// Entries kept at most; when full, expired entries are dropped, and if none were, all.
const MAX_ENTRIES: usize = 16_384;

static EPOCH: AtomicU64 = AtomicU64::new(0);

/// The current authorisation epoch of this process. Read it *before* the store reads whose
/// result is cached.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::SeqCst)
}

/// Say that a user, a user's grants or a token changed (call *after* the write): every cached
/// caller of this process is stale from now on.
pub(crate) fn auth_changed() {
    EPOCH.fetch_add(1, Ordering::SeqCst);
}

/// How long a freshly authenticated caller may be reused, besides the cache's own TTL.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Validity {
    /// The access token's `exp` plus the leeway (Unix seconds), if it is a JWT.
    pub token_until_unix: Option<u64>,
    /// The session's or API token's record expiry (Orca clock).
    pub record_expires: Option<Timestamp>,
}

struct Entry {
    caller: Caller,
    epoch: u64,
    until: Instant,
    record_expires: Option<Timestamp>,
}

/// The cache (one per [`crate::AppState`]).
pub(crate) struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The cache key of a bearer credential.
pub(crate) fn key(bearer: &str) -> [u8; 32] {
    Sha256::digest(bearer.as_bytes()).into()
}

impl AuthCache {
    /// A cache whose entries live at most `ttl` (zero: nothing is cached).
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether anything is cached at all.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding the lock cannot leave a half-written entry: use the map.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached caller for `key`, if still valid at `now` (Orca clock).
    pub fn get(&self, key: &[u8; 32], now: Timestamp) -> Option<Caller> {
        if !self.enabled() {
            return None;
        }
        let current = epoch();
        let mut map = self.lock();
        let e = map.get(key)?;
        if e.epoch == current
            && e.until > Instant::now()
            && e.record_expires.is_none_or(|x| x > now)
        {
            return Some(e.caller.clone());
        }
        map.remove(key);
        None
    }

    /// Remember `caller`, authenticated by store reads that began at epoch `read_at`.
    pub fn insert(&self, key: [u8; 32], caller: &Caller, read_at: u64, validity: Validity) {
        if !self.enabled() || read_at != epoch() {
            return;
        }
        let now = Instant::now();
        let mut until = now + self.ttl;
        if let Some(t) = validity.token_until_unix {
            let left = t.saturating_sub(jsonwebtoken::get_current_timestamp());
            until = until.min(now + Duration::from_secs(left));
        }
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            let current = epoch();
            map.retain(|_, e| e.epoch == current && e.until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            key,
            Entry {
                caller: caller.clone(),
                epoch: read_at,
                until,
                record_expires: validity.record_expires,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Via;
    use orca_core::ids::UserId;
    use orca_core::model::{Principal, Role};

    fn caller() -> Caller {
        let user_id = UserId::new();
        Caller {
            principal: Principal {
                user_id: Some(user_id),
                name: "u".into(),
                role: Role::Viewer,
                scopes: vec![],
            },
            user_id,
            via: Via::Session(uuid::Uuid::now_v7()),
        }
    }

    fn now() -> Timestamp {
        chrono::Utc::now()
    }

    // The epoch is process-wide and other tests bump it: retry a few times so a bump by a test
    // running in parallel between `epoch()` and `get` cannot make these flaky.
    fn with_quiet_epoch(f: impl Fn() -> bool) {
        assert!((0..50).any(|_| f()), "never saw a hit in 50 tries");
    }

    #[test]
    fn hit_until_ttl_and_disabled_when_zero() {
        let c = AuthCache::new(Duration::from_millis(200));
        let k = key("token-a");
        with_quiet_epoch(|| {
            c.insert(k, &caller(), epoch(), Validity::default());
            c.get(&k, now()).is_some()
        });
        assert!(c.get(&key("token-b"), now()).is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(c.get(&k, now()).is_none(), "expired after the TTL");
        assert_eq!(c.len(), 0, "an expired entry is dropped when seen");

        let off = AuthCache::new(Duration::ZERO);
        off.insert(k, &caller(), epoch(), Validity::default());
        assert!(off.get(&k, now()).is_none());
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn a_change_makes_every_entry_stale() {
        let c = AuthCache::new(Duration::from_secs(5));
        let k = key("token-c");
        with_quiet_epoch(|| {
            c.insert(k, &caller(), epoch(), Validity::default());
            c.get(&k, now()).is_some()
        });
        auth_changed();
        assert!(c.get(&k, now()).is_none(), "stale after a change");
        // An authentication whose reads began before a change is not cached at all.
        let before = epoch();
        auth_changed();
        c.insert(k, &caller(), before, Validity::default());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn record_and_token_expiry_bound_an_entry() {
        let c = AuthCache::new(Duration::from_secs(5));
        let k = key("token-d");
        let past = now() - chrono::TimeDelta::seconds(1);
        c.insert(
            k,
            &caller(),
            epoch(),
            Validity {
                record_expires: Some(past),
                ..Default::default()
            },
        );
        assert!(c.get(&k, now()).is_none(), "the record expired");
        let gone = jsonwebtoken::get_current_timestamp().saturating_sub(1);
        c.insert(
            k,
            &caller(),
            epoch(),
            Validity {
                token_until_unix: Some(gone),
                ..Default::default()
            },
        );
        assert!(c.get(&k, now()).is_none(), "the token expired");
    }

    #[test]
    fn size_is_bounded() {
        let c = AuthCache::new(Duration::from_secs(5));
        let e = epoch();
        for i in 0..(MAX_ENTRIES + 10) {
            c.insert(key(&format!("t{i}")), &caller(), e, Validity::default());
        }
        assert!(c.len() <= MAX_ENTRIES, "{}", c.len());
    }
}
