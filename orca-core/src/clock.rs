//! Injected time, so leases, backoff and timeouts are testable without sleeping.

use std::fmt::Debug;
use std::sync::Mutex;

use crate::model::Timestamp;

/// A source of the current time.
pub trait Clock: Debug + Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        crate::model::micros(chrono::Utc::now())
    }
}

/// A clock that only moves when told to (for tests).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Mutex::new(crate::model::micros(start)),
        }
    }
    /// A manual clock starting at the current wall time.
    pub fn starting_now() -> Self {
        Self::new(chrono::Utc::now())
    }
    /// Move the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut g = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *g += chrono::TimeDelta::from_std(by).unwrap_or(chrono::TimeDelta::MAX);
    }
    /// Set the clock.
    pub fn set(&self, t: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = crate::model::micros(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `t + d`, saturating.
pub fn add(t: Timestamp, d: std::time::Duration) -> Timestamp {
    t + chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}
