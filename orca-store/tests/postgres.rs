//! PostgreSQL store and event bus against a real server.
//!
//! The server is `ORCA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Each test works in a fresh schema that is dropped afterwards. When the server cannot be
//! reached the tests say so loudly and skip, unless `ORCA_TEST_REQUIRE_ALL=1`, where they fail.
#![cfg(feature = "postgres")]

#[path = "postgres/bus.rs"]
mod bus;
#[path = "postgres/connect.rs"]
mod connect;
#[path = "postgres/queue.rs"]
mod queue;
#[path = "postgres/support.rs"]
mod support;

orca_core::store_conformance!({
    if !support::available() {
        return;
    }
    support::PgFactory
});
