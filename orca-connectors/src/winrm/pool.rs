//! Warm sessions and shells per (system, settings, user, credential), within a cap.
//!
//! Each entry is one authenticated connection with at most one shell. A run takes an entry
//! (or opens a new one while below `max_shells`), and gives it back when the command ended
//! cleanly, so a job's commands on one system reuse one shell: a warm command costs a Command
//! and a Receive.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use orca_core::ids::SystemId;
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::WinRmConfig;
use super::error::WinRmError;
use super::transport::{Endpoint, Session};

/// Identifies interchangeable sessions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    system: SystemId,
    config: WinRmConfig,
    user: String,
    secret: [u8; 32],
}

impl PoolKey {
    /// The key of a system's sessions. The password is kept only as a digest, to tell a
    /// changed credential apart.
    pub fn new(
        system: SystemId,
        config: &WinRmConfig,
        user: &str,
        password: &SecretString,
    ) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(b"orca-winrm-pool\0");
        h.update(password.expose_secret().as_bytes());
        PoolKey {
            system,
            config: config.clone(),
            user: user.to_string(),
            secret: h.finalize().into(),
        }
    }
}

/// A shell that lives on the server.
#[derive(Debug, Clone)]
pub struct WarmShell {
    /// Its id.
    pub id: String,
    /// The environment it was created with.
    pub env: BTreeMap<String, String>,
    /// When it was last used.
    pub last_used: Instant,
    /// Commands started in it (finished commands hold server resources until the shell goes).
    pub commands: u32,
}

/// A session and its shell.
#[derive(Debug)]
pub struct Warm {
    /// The connection.
    pub session: Session,
    /// The shell on it, if any.
    pub shell: Option<WarmShell>,
}

#[derive(Debug)]
struct Slot {
    sem: Arc<Semaphore>,
    idle: Mutex<Vec<Warm>>,
}

/// The pool.
#[derive(Debug, Default)]
pub struct Pool {
    slots: Mutex<HashMap<PoolKey, Arc<Slot>>>,
}

/// A checked-out entry; give it back with [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
    /// The warm entry, if one was idle.
    pub warm: Option<Warm>,
}

impl Lease {
    /// Return `warm` for reuse if its session is still good.
    pub fn release(self, warm: Warm) {
        if warm.session.is_usable()
            && let Ok(mut idle) = self.slot.idle.lock()
        {
            idle.push(warm);
        }
    }
}

impl Pool {
    fn slot(&self, key: &PoolKey, max: usize) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    sem: Arc::new(Semaphore::new(max)),
                    idle: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    /// Wait for room under the cap and take an idle entry if there is one.
    pub async fn checkout(&self, key: &PoolKey, cfg: &WinRmConfig) -> Result<Lease, WinRmError> {
        let slot = self.slot(key, cfg.max_shells);
        let permit = slot
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WinRmError::Connect("the session pool is closed".into()))?;
        let warm = {
            let mut idle = slot.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|w| w.session.is_usable());
            // Most recently used first: its shell is the least likely to have idled out.
            idle.pop()
        };
        Ok(Lease {
            slot,
            _permit: permit,
            warm,
        })
    }

    /// Take every idle entry (for shutdown).
    pub fn drain(&self) -> Vec<Warm> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for s in slots.values() {
            out.append(&mut s.idle.lock().unwrap_or_else(|p| p.into_inner()));
        }
        out
    }
}

/// Open a new session.
pub async fn open(
    endpoint: &Endpoint,
    user: &str,
    password: &SecretString,
) -> Result<Warm, WinRmError> {
    Ok(Warm {
        session: Session::open(endpoint, user, password).await?,
        shell: None,
    })
}
