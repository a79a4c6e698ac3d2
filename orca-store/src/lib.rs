//! # orca-store
//!
//! [`orca_core::Store`] implementations: SQLite (the embedded default, feature `sqlite`) and
//! PostgreSQL (feature `postgres`, one or many nodes, with a LISTEN/NOTIFY event bus).

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
