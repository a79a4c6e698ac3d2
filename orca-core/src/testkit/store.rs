//! The Store conformance suite.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{ManualClock, Store};

/// Makes fresh stores for the suite.
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// A fresh, empty store (its own database, schema or temp dir) whose time is `clock`.
    async fn fresh(&self, clock: Arc<ManualClock>) -> Arc<dyn Store>;
}
