//! SSH connector (russh).
//!
//! [`SshConnector`] runs commands on Linux systems:
//! - **Authentication**: password (falling back to keyboard-interactive, answering password
//!   prompts), private keys in OpenSSH, PEM or PKCS#8 form (ed25519, ECDSA, RSA signed with
//!   rsa-sha2-512/256), encrypted keys with their passphrase.
//! - **Host keys** are checked inside the key exchange, before any credential is sent, against
//!   the pins of [`orca_core::HostKeyStore`] under the system's [`HostKeyPolicy`]: `strict`
//!   (default, only pinned keys), `tofu` (pin on first contact, atomically), `insecure`
//!   (anything, with a loud warning). A changed key is refused under `strict` and `tofu` with
//!   the offered `SHA256:` fingerprint in the error.
//! - **Execution** without a PTY; stdout and stderr streamed as they arrive; exit status or
//!   signal (a channel that closes without either is unknown, never 0);
//!   `ORCA_EXECUTION_ID` and the command's environment exported. Cancel and timeout stop the
//!   remote **process group** (TERM, then KILL after `kill_grace`) and report whether that was
//!   confirmed: see [`wrapper`] for how.
//! - **Connections** are pooled per (system, credential) and shared through channels; see
//!   [`pool`] for limits, idle close, keepalives and replacement of broken connections.
//!
//! [`HostKeyPolicy`]: orca_core::model::HostKeyPolicy

mod auth;
mod backend;
mod client;
mod config;
mod error;
mod exec;
mod hostkey;
pub mod known_hosts;
pub mod pool;
pub mod wrapper;

pub use backend::SshConnector;
pub use config::SshConfig;
pub use hostkey::{algorithm as key_algorithm, fingerprint};
