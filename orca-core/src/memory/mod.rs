//! An in-memory [`Store`] for tests, examples and engine benchmarks (not durable).
//!
//! Each area trait is implemented in the file of its name (`systems`, `jobs`, `queue`,
//! `output`, `audit`, `users`), next to the `State` methods it calls.
//!
//! All state sits behind one mutex that is never held across an `await`, so every operation
//! is atomic: a mutation and its audit record are written together or not at all, and
//! `claim` is exclusive. It passes the same conformance suite as the database stores
//! (`orca_core::store_conformance!`).
//!
//! ```
//! use std::sync::Arc;
//! use orca_core::{MemoryStore, Store, SystemClock};
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
//! assert!(!store.capabilities().multi_node);
//! ```

mod audit;
mod jobs;
mod output;
mod queue;
mod state;
mod systems;
mod users;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use self::state::State;
use crate::model::Timestamp;
use crate::{Clock, Store, StoreCapabilities};

/// A [`Store`] that keeps everything in memory, for one process.
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store whose times come from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-done mutation behind (every
        // operation checks before it writes), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Timestamp {
        crate::model::micros(self.clock.now())
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryStore")
            .field("systems", &s.systems.len())
            .field("jobs", &s.jobs.len())
            .field("executions", &s.executions.len())
            .field("pending", &s.pending.len())
            .field("running", &s.running.len())
            .finish_non_exhaustive()
    }
}

impl Store for MemoryStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities { multi_node: false }
    }
}
