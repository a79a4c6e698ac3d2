//! `impl Store for SqliteStore`: each area trait is implemented in the module of its name
//! (`systems`, `jobs`, `queue`, `output`, `audit`, `users`).

use orca_core::{Store, StoreCapabilities};

use super::SqliteStore;

impl Store for SqliteStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities { multi_node: false }
    }
}
