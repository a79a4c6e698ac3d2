//! WinRM connector: cmd and PowerShell on Windows systems over WS-Management (MS-WSMV / WinRS),
//! NTLMv2 with message encryption over HTTP, or Basic over HTTPS.

pub mod backend;
pub mod client;
pub mod clixml;
pub mod config;
pub mod error;
pub mod ntlm;
pub mod pool;
pub mod protocol;
pub mod response;
pub mod sealing;
pub mod tls;
pub mod transport;
pub mod xml;

pub use backend::WinRmConnector;
pub use config::WinRmConfig;
#[cfg(feature = "winrm-testserver")]
pub mod testserver;
