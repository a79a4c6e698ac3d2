//! Conformance suites that every [`crate::Store`] and [`crate::Connector`] implementation must
//! pass, and helpers for tests. Enabled by the `testkit` feature.
//!
//! A backend's test file calls the suite's macro once with a factory or fixture:
//!
//! ```ignore
//! orca_core::store_conformance!(my_factory());
//! orca_core::connector_conformance!(my_fixture());
//! ```
//! which expands to one `#[tokio::test]` per case, so failures name the case.

pub mod connector;
pub mod store;
