//! # orca-connectors
//!
//! [`orca_core::Connector`] implementations: `local` (a process on this host, feature `local`),
//! `ssh` (russh, feature `ssh`) and `winrm` (WS-Management over HTTP(S), feature `winrm`).

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "ssh")]
pub mod ssh;
#[cfg(feature = "winrm")]
pub mod winrm;
