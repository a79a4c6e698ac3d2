//! `impl Store for PostgresStore`: each area trait is implemented in the module of its name
//! (`systems`, `jobs`, `queue`, `output`, `audit`, `users`).

use orca_core::{Store, StoreCapabilities};

use super::PostgresStore;

impl Store for PostgresStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities { multi_node: true }
    }
}
