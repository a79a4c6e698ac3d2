//! The Connector conformance suite.

use std::sync::Arc;

use crate::{Connector, Target};

/// Provides a connector and targets for the suite.
pub trait ConnectorFixture: Send + Sync + 'static {
    /// The connector under test.
    fn connector(&self) -> Arc<dyn Connector>;
    /// A reachable target the connector can run POSIX `sh` commands on (or whatever the
    /// fixture's command set expects).
    fn target(&self) -> Target;
    /// A target that cannot be reached (refused port, unknown host...).
    fn bad_target(&self) -> Target;
}
