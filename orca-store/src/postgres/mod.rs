//! PostgreSQL store and event bus.
