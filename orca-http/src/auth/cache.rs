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
//! - no change of a user, of a user's grants or of any token became known to this node since
//!   the entry's store reads began (the node's [`AuthEpoch`]).
//!
//! # Logout, disabling, role and password changes
//! They are operations of the facade ([`orca_core::Orca::logout`], `update_user`,
//! `set_grants`, `revoke_api_token`, a refresh token's reuse...), made by HTTP handlers, the
//! CLI's admin verbs or Python alike. After each write the facade
//! 1. bumps its [`AuthEpoch`] ([`orca_core::Orca::auth_epoch`]), which the caches of the
//!    [`crate::AppState`]s built over that Orca read, so on **this node** the change takes
//!    effect on the next request, synchronously, before the write's caller even gets its
//!    answer; and
//! 2. publishes [`orca_core::Event::AuthChanged`] on the Orca's event bus (in-process, or
//!    PostgreSQL `LISTEN/NOTIFY` with `PgEventBus`).
//!
//! Every `AppState` follows its bus and bumps the epoch on each `AuthChanged` it receives,
//! its own and **other nodes'** (several `orca serve` over one PostgreSQL, or an
//! `orca user passwd` beside them), so there too the change takes effect on the next request
//! once the notification arrived (milliseconds after the commit). A subscription that lagged
//! behind the bus counts as a change, and so does a PostgreSQL LISTEN connection that came
//! back after a break (the bus delivers an `AuthChanged` then): a notification is never
//! silently skipped. The epoch is per Orca (not per process), so two nodes in one process, as
//! in the tests, do not see each other's changes except through their buses.
//!
//! An authentication that read the store before a change but finishes after it carries the
//! older epoch, so it is not cached either. Any change empties the whole cache of the node
//! (they are rare next to reads).
//!
//! # What is still bounded by the TTL
//! Another process's change reaches this node only through a shared bus. These are covered by
//! `cache_ttl_ms` alone (the change takes effect within it):
//! - a change written by another process on SQLite, whose bus is in-process (an
//!   `orca user passwd` beside a running `orca serve`);
//! - a notification lost while this node's LISTEN connection was down (the bus says so once it
//!   is back, but entries may be used until then) or while the writer could not publish (it
//!   logs a warning).
//!
//! Set `cache_ttl_ms = 0` where even that is too long.
//!
//! # WebSockets
//! An open socket does not use this cache: it re-reads its caller (user, grants, the session or
//! API token behind its ticket, with that credential as the caller's `via`, as here) on every
//! subscribe and on every `AuthChanged` it hears, and closes when they changed (module `ws`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use orca_core::model::Timestamp;
use orca_core::{AuthEpoch, Event, EventBus};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;

use super::Caller;

/// Entries kept at most; when full, expired entries are dropped, and if none were, all.
const MAX_ENTRIES: usize = 16_384;

/// Bump `epoch` on every [`Event::AuthChanged`] that `bus` delivers (this node's and other
/// nodes'), and on every lag of the subscription (an event may have been missed), until the
/// bus closes or the epoch is dropped. Subscribes before returning: events published after
/// this call are seen. Needs a Tokio runtime.
pub(crate) fn follow_bus(bus: &Arc<dyn EventBus>, epoch: &Arc<AuthEpoch>) -> orca_core::Result<()> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| {
        orca_core::Error::invalid(
            "the HTTP API follows the event bus to invalidate cached credentials: build the \
             AppState inside a Tokio runtime (or set http.auth.cache_ttl_ms = 0)",
        )
    })?;
    let mut rx = bus.subscribe();
    let epoch: Weak<AuthEpoch> = Arc::downgrade(epoch);
    handle.spawn(async move {
        loop {
            let changed = match rx.recv().await {
                Ok(ev) => matches!(ev.as_ref(), Event::AuthChanged { .. }),
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(
                        missed = n,
                        "the credential cache lagged behind the event bus; dropping its entries"
                    );
                    true
                }
                Err(RecvError::Closed) => return,
            };
            if changed {
                let Some(e) = epoch.upgrade() else { return };
                e.bump();
            }
        }
    });
    Ok(())
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
    epoch: Arc<AuthEpoch>,
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
    /// A cache whose entries live at most `ttl` (zero: nothing is cached) and only while
    /// `epoch` stays where it was when they were read.
    pub fn new(ttl: Duration, epoch: Arc<AuthEpoch>) -> Self {
        AuthCache {
            ttl,
            epoch,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The current epoch. Read it *before* the store reads whose result is cached.
    pub fn epoch(&self) -> u64 {
        self.epoch.current()
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
        let current = self.epoch();
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
        if !self.enabled() || read_at != self.epoch() {
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
            let current = self.epoch();
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
    use orca_core::LocalBus;
    use orca_core::ids::{JobId, UserId};
    use orca_core::model::{JobStatus, Principal, Role};

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

    fn cache(ttl: Duration) -> AuthCache {
        AuthCache::new(ttl, Arc::default())
    }

    #[test]
    fn hit_until_ttl_and_disabled_when_zero() {
        let c = cache(Duration::from_millis(200));
        let k = key("token-a");
        c.insert(k, &caller(), c.epoch(), Validity::default());
        assert!(c.get(&k, now()).is_some());
        assert!(c.get(&key("token-b"), now()).is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(c.get(&k, now()).is_none(), "expired after the TTL");
        assert_eq!(c.len(), 0, "an expired entry is dropped when seen");

        let off = cache(Duration::ZERO);
        off.insert(k, &caller(), off.epoch(), Validity::default());
        assert!(off.get(&k, now()).is_none());
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn a_change_makes_every_entry_stale() {
        let epoch = Arc::new(AuthEpoch::default());
        let c = AuthCache::new(Duration::from_secs(5), epoch.clone());
        let other = cache(Duration::from_secs(5));
        let k = key("token-c");
        c.insert(k, &caller(), c.epoch(), Validity::default());
        other.insert(k, &caller(), other.epoch(), Validity::default());
        assert!(c.get(&k, now()).is_some());
        epoch.bump();
        assert!(c.get(&k, now()).is_none(), "stale after a change");
        assert!(
            other.get(&k, now()).is_some(),
            "a cache over another epoch (another node) is not affected"
        );
        // An authentication whose reads began before a change is not cached at all.
        let before = c.epoch();
        epoch.bump();
        c.insert(k, &caller(), before, Validity::default());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn record_and_token_expiry_bound_an_entry() {
        let c = cache(Duration::from_secs(5));
        let k = key("token-d");
        let past = now() - chrono::TimeDelta::seconds(1);
        c.insert(
            k,
            &caller(),
            c.epoch(),
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
            c.epoch(),
            Validity {
                token_until_unix: Some(gone),
                ..Default::default()
            },
        );
        assert!(c.get(&k, now()).is_none(), "the token expired");
    }

    #[test]
    fn size_is_bounded() {
        let c = cache(Duration::from_secs(5));
        let e = c.epoch();
        for i in 0..(MAX_ENTRIES + 10) {
            c.insert(key(&format!("t{i}")), &caller(), e, Validity::default());
        }
        assert!(c.len() <= MAX_ENTRIES, "{}", c.len());
    }

    /// Wait (a little) until `epoch` is past `from`.
    async fn moves_past(epoch: &AuthEpoch, from: u64) -> bool {
        for _ in 0..200 {
            if epoch.current() > from {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    #[tokio::test]
    async fn following_the_bus_bumps_on_auth_changes_and_on_lag_only() {
        let bus: Arc<dyn EventBus> = Arc::new(LocalBus::new(16));
        let epoch = Arc::new(AuthEpoch::default());
        follow_bus(&bus, &epoch).unwrap();

        // Other events leave it alone.
        let job = Event::Job {
            job_id: JobId::new(),
            status: JobStatus::Running,
        };
        bus.publish(vec![job.clone(); 3]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(epoch.current(), 0, "a job event is not a change");

        // An AuthChanged (with or without a user) is.
        bus.publish(vec![Event::AuthChanged {
            user_id: Some(UserId::new()),
        }])
        .await
        .unwrap();
        assert!(moves_past(&epoch, 0).await, "AuthChanged bumps the epoch");
        let e = epoch.current();
        bus.publish(vec![Event::AuthChanged { user_id: None }])
            .await
            .unwrap();
        assert!(moves_past(&epoch, e).await);

        // A lag counts as a change: flood the bus faster than the follower can read (on this
        // single-threaded runtime it cannot read at all until we yield).
        let e = epoch.current();
        bus.publish(vec![job; 100]).await.unwrap();
        assert!(
            moves_past(&epoch, e).await,
            "a lagging subscription bumps the epoch"
        );
    }

    #[test]
    fn following_the_bus_needs_a_runtime() {
        let bus: Arc<dyn EventBus> = Arc::new(LocalBus::default());
        let err = follow_bus(&bus, &Arc::default()).unwrap_err();
        assert!(err.message().contains("Tokio runtime"), "{err}");
    }
}
