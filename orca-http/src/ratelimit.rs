//! Rate limits in fixed one-minute windows. [`LocalLimiter`] counts in this process (per client
//! address, per caller); limits that must hold across nodes (login attempts) are counted in the
//! database through [`orca_core::Store::rate_limit_hit`] (see `AppState::db_limit`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The window length.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The start of the current window and the seconds left in it.
pub(crate) fn window_now() -> (u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let w = WINDOW.as_secs();
    let start = now - now % w;
    (start, (start + w).saturating_sub(now).max(1))
}

/// Counts requests per key in the current window, in memory.
#[derive(Debug, Default)]
pub(crate) struct LocalLimiter {
    counts: Mutex<HashMap<String, (u64, u32)>>,
}

impl LocalLimiter {
    /// Count one hit for `key`; `Err(retry_after_seconds)` when over `limit` in this window.
    pub fn hit(&self, key: &str, limit: u32) -> Result<(), u64> {
        let (start, left) = window_now();
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 100_000 {
            m.retain(|_, (w, _)| *w == start);
        }
        let e = m.entry(key.to_string()).or_insert((start, 0));
        if e.0 != start {
            *e = (start, 0);
        }
        e.1 = e.1.saturating_add(1);
        if e.1 > limit { Err(left) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key() {
        let l = LocalLimiter::default();
        for _ in 0..3 {
            l.hit("a", 3).unwrap();
        }
        let retry = l.hit("a", 3).unwrap_err();
        assert!((1..=60).contains(&retry));
        l.hit("b", 3).unwrap();
    }
}
