//! Helpers shared by the connector cases.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::model::Stream;
use crate::{CancellationToken, CommandSpec, Connector, OutputReceiver, OutputSink, Result};
use crate::{RunOutcome, Target};

/// The largest output piece the suite accepts from a connector, in bytes.
pub const MAX_PIECE: usize = 4 * 1024 * 1024;

/// The capacity of the sinks the suite hands to connectors: small, so back-pressure matters.
pub(crate) const SINK_CAPACITY: usize = 4;

/// How long any single `run` in the suite may take before the case fails as hung.
pub(crate) const HANG_BOUND: Duration = Duration::from_secs(120);

/// What a run printed, collected while it ran.
#[derive(Debug, Default)]
pub struct Collected {
    /// Everything on stdout, in order.
    pub stdout: Vec<u8>,
    /// Everything on stderr, in order.
    pub stderr: Vec<u8>,
    /// How many pieces arrived.
    pub pieces: usize,
    /// The largest piece, in bytes.
    pub largest: usize,
    /// When the first piece arrived.
    pub first_at: Option<Instant>,
}

impl Collected {
    /// stdout as text with `\r\n` read as `\n`.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).replace("\r\n", "\n")
    }
    /// stderr as text with `\r\n` read as `\n`.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).replace("\r\n", "\n")
    }
}

/// Drain `rx` into a [`Collected`] until every sender is gone.
pub(crate) async fn collect(mut rx: OutputReceiver) -> Collected {
    let mut c = Collected::default();
    while let Some((stream, bytes)) = rx.recv().await {
        c.first_at.get_or_insert_with(Instant::now);
        c.pieces += 1;
        c.largest = c.largest.max(bytes.len());
        match stream {
            Stream::Stdout => c.stdout.extend_from_slice(&bytes),
            Stream::Stderr => c.stderr.extend_from_slice(&bytes),
        }
    }
    c
}

/// Run `spec` on `target` while collecting its output concurrently through a small sink.
/// Returns the result, the output and when `run` returned. Panics if it takes longer than
/// two minutes (a hang).
pub async fn run_collect(
    connector: &dyn Connector,
    target: &Target,
    spec: &CommandSpec,
    cancel: CancellationToken,
) -> (Result<RunOutcome>, Collected, Instant) {
    let (sink, rx) = OutputSink::channel(SINK_CAPACITY);
    let run = async {
        let r = connector.run(target, spec, sink, cancel).await;
        (r, Instant::now())
    };
    let both = async { tokio::join!(run, collect(rx)) };
    let ((result, ended), collected) =
        tokio::time::timeout(HANG_BOUND, both)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: `{}` on {} did not end within {HANG_BOUND:?} (or kept the sink open)",
                    connector.name(),
                    spec.command,
                    target.system.name
                )
            });
    (result, collected, ended)
}

/// The bytes `seq 1 lines` prints: `1\n2\n...lines\n`.
pub fn seq_bytes(lines: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 1..=lines {
        out.extend_from_slice(i.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// `bytes` with every `\r\n` read as `\n`.
pub(crate) fn normalize_newlines(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `result`'s outcome, or a panic naming `what` and the error.
pub(crate) fn expect_outcome(what: &str, result: Result<RunOutcome>) -> RunOutcome {
    match result {
        Ok(o) => o,
        Err(e) => panic!("{what}: run failed with {e} (kind {:?})", e.kind()),
    }
}
