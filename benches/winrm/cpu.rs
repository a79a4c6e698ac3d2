//! CPU time per thread from `/proc/self/task/<tid>/schedstat` (nanoseconds on CPU), so client
//! and server threads of one process are measured apart.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The ids of the threads that belong to the test servers' runtime.
#[derive(Debug, Clone, Default)]
pub struct ServerThreads(Arc<Mutex<HashSet<u32>>>);

impl ServerThreads {
    /// Record the calling thread (call from `on_thread_start`).
    pub fn register_current(&self) {
        if let Some(tid) = current_tid() {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(tid);
        }
    }
    fn contains(&self, tid: u32) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&tid)
    }
}

fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

fn thread_cpu(tid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// CPU used so far by (client threads, server threads).
pub fn split(server: &ServerThreads) -> (Duration, Duration) {
    let (mut client, mut srv) = (0u64, 0u64);
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let ns = thread_cpu(tid).unwrap_or(0);
            if server.contains(tid) {
                srv += ns;
            } else {
                client += ns;
            }
        }
    }
    (Duration::from_nanos(client), Duration::from_nanos(srv))
}
