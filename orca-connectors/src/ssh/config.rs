//! Settings of the SSH connector.

use std::time::Duration;

use orca_core::{Error, Result};

/// Settings of [`super::SshConnector`]. `Default` gives values that suit a fleet of OpenSSH
/// servers with stock settings (`MaxSessions 10`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// Limit for DNS resolution, the TCP connection, the SSH handshake and the host key check.
    pub connect_timeout: Duration,
    /// Limit for user authentication (after the host key was accepted).
    pub auth_timeout: Duration,
    /// After `TERM`, how long the remote process group gets before `KILL`.
    pub kill_grace: Duration,
    /// Concurrent commands on one connection. Keep it below the server's `MaxSessions`
    /// (OpenSSH default 10): two more channels are kept free to stop commands.
    pub max_channels_per_connection: usize,
    /// Open connections, all systems together. When the cap is reached, idle connections are
    /// closed first; otherwise new connections wait.
    pub max_connections: usize,
    /// A connection without running commands for this long is closed.
    pub idle_timeout: Duration,
    /// Send a keepalive after this long without traffic from the server.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives after which the connection counts as broken.
    pub keepalive_max: usize,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            connect_timeout: Duration::from_secs(15),
            auth_timeout: Duration::from_secs(20),
            kill_grace: Duration::from_secs(5),
            max_channels_per_connection: 8,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(300),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
        }
    }
}

impl SshConfig {
    /// Check the values; an error says which one is wrong.
    pub fn validate(&self) -> Result<()> {
        let nonzero = [
            ("connect_timeout", self.connect_timeout),
            ("auth_timeout", self.auth_timeout),
            ("kill_grace", self.kill_grace),
            ("idle_timeout", self.idle_timeout),
            ("keepalive_interval", self.keepalive_interval),
        ];
        for (name, d) in nonzero {
            if d.is_zero() {
                return Err(Error::invalid(format!(
                    "ssh connector setting {name} must be greater than zero"
                )));
            }
        }
        if self.max_channels_per_connection == 0 || self.max_channels_per_connection > 64 {
            return Err(Error::invalid(format!(
                "ssh connector setting max_channels_per_connection must be 1..=64 (below the \
                 servers' MaxSessions), got {}",
                self.max_channels_per_connection
            )));
        }
        if self.max_connections == 0 {
            return Err(Error::invalid(
                "ssh connector setting max_connections must be at least 1",
            ));
        }
        if self.keepalive_max == 0 {
            return Err(Error::invalid(
                "ssh connector setting keepalive_max must be at least 1",
            ));
        }
        Ok(())
    }
}
