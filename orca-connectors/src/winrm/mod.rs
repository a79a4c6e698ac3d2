//! WinRM connector.
