//! The Store conformance suite against [`MemoryStore`].
#![cfg(feature = "testkit")]

use std::sync::Arc;

use orca_core::testkit::store::StoreFactory;
use orca_core::{ManualClock, MemoryStore, Store};

/// Hands out fresh in-memory stores.
struct MemoryFactory;

#[orca_core::async_trait]
impl StoreFactory for MemoryFactory {
    async fn fresh(&self, clock: Arc<ManualClock>) -> Arc<dyn Store> {
        Arc::new(MemoryStore::new(clock))
    }
}

orca_core::store_conformance!(MemoryFactory);
