use bytes::Bytes;

use super::Timestamp;
use crate::ids::ExecutionId;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
    /// Parse `stdout` / `stderr`.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "stdout" => Ok(Stream::Stdout),
            "stderr" => Ok(Stream::Stderr),
            other => Err(crate::Error::invalid(format!(
                "unknown stream '{other}': use stdout or stderr"
            ))),
        }
    }
}

/// An ordered piece of an execution's output. `seq` starts at 0 and has no gaps within an
/// execution; bytes are stored as they came (not necessarily UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputChunk {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Position in the execution's output, from 0, without gaps.
    pub seq: u64,
    /// The stream.
    pub stream: Stream,
    /// The bytes.
    pub data: Bytes,
    /// When the engine received them.
    pub at: Timestamp,
}
