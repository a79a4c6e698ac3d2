//! The connectors of this build's features, registered on a builder.

use orca_core::{OrcaBuilder, Result};

use crate::OpenOptions;

/// Add every connector this build has (`local`, `ssh`, `winrm` features) to `b`.
pub(crate) fn register(b: OrcaBuilder, options: &OpenOptions) -> Result<OrcaBuilder> {
    let _ = options;
    #[cfg(feature = "local")]
    let b = b.connector(std::sync::Arc::new(
        orca_connectors::local::LocalConnector::new(options.local.clone())?,
    ));
    #[cfg(feature = "ssh")]
    let b = b.connector(std::sync::Arc::new(
        orca_connectors::ssh::SshConnector::new(options.ssh.clone())?,
    ));
    #[cfg(feature = "winrm")]
    let b = b.connector(std::sync::Arc::new(
        orca_connectors::winrm::WinRmConnector::new(),
    ));
    Ok(b)
}
