//! The Connector conformance suite.
//!
//! Every [`Connector`] runs it against its real peer through [`crate::connector_conformance!`]
//! with a [`ConnectorFixture`]:
//!
//! ```ignore
//! struct MyFixture { /* a started peer */ }
//! impl orca_core::testkit::connector::ConnectorFixture for MyFixture {
//!     fn connector(&self) -> Arc<dyn Connector> { /* ... */ }
//!     fn target(&self) -> Target { /* ... */ }
//!     fn bad_target(&self) -> Target { /* ... */ }
//! }
//! orca_core::connector_conformance!(MyFixture::new());
//! ```
//!
//! Each case is also a public `async fn(&dyn ConnectorFixture)`, so a backend can run one on its
//! own. Every case talks to the connector only through `Arc<dyn Connector>`.
//!
//! The commands the suite runs are POSIX `sh` by default; a fixture for another shell overrides
//! the `cmd_*` methods with commands that print the same bytes (`\r\n` is read as `\n`).
//!
//! What the suite pins down where the trait's contract leaves room:
//! - output arrives while the command runs (the first piece before `run` returns), in pieces
//!   of at most [`MAX_PIECE`] bytes, and the suite's sink is small (4 pieces), so a connector
//!   must wait for a slow reader rather than buffer;
//! - a timeout or cancel ends `run` within [`ConnectorFixture::kill_bound`] with
//!   `kill_confirmed: Some(true)`;
//! - a bad target is an `Err` of one of [`ConnectorFixture::bad_target_kinds`] (never a hang,
//!   never an outcome), and its probe is `Unhealthy` with a reason.

use std::sync::Arc;
use std::time::Duration;

use crate::{Connector, ErrorKind, Target};

mod run;
mod stop;
mod support;
mod target;

pub use run::*;
pub use stop::*;
pub use support::{Collected, MAX_PIECE, run_collect, seq_bytes};
pub use target::*;

/// Provides a connector and targets for the suite.
pub trait ConnectorFixture: Send + Sync + 'static {
    /// The connector under test.
    fn connector(&self) -> Arc<dyn Connector>;
    /// A reachable target the connector can run POSIX `sh` commands on (or whatever the
    /// fixture's command set expects).
    fn target(&self) -> Target;
    /// A target that cannot be reached (refused port, unknown host...).
    fn bad_target(&self) -> Target;

    /// A command that exits with `code` and prints nothing.
    fn cmd_exit(&self, code: i32) -> String {
        format!("exit {code}")
    }
    /// A command that prints `out1\nout2\nout3\n` to stdout and `err1\nerr2\n` to stderr,
    /// interleaved (out1, err1, out2, err2, out3).
    fn cmd_echo_both(&self) -> String {
        "printf 'out1\\n'; printf 'err1\\n' >&2; printf 'out2\\n'; printf 'err2\\n' >&2; \
         printf 'out3\\n'"
            .to_string()
    }
    /// A command that prints `text` (letters, digits and `-` only) and a newline to stdout,
    /// then exits with `code`.
    fn cmd_print_and_exit(&self, text: &str, code: i32) -> String {
        format!("printf '%s\\n' '{text}'; exit {code}")
    }
    /// A command that prints the line `ready` to stdout, then sleeps for at least ten minutes
    /// in a child process (so stopping only the shell is not enough).
    fn cmd_sleep_forever(&self) -> String {
        "echo ready; sleep 600; exit 0".to_string()
    }
    /// A command that prints the numbers `1..=lines`, one per line, to stdout
    /// (see [`seq_bytes`]).
    fn cmd_large_output(&self, lines: u64) -> String {
        format!("seq 1 {lines}")
    }
    /// The error kinds `run` on [`ConnectorFixture::bad_target`] may fail with.
    fn bad_target_kinds(&self) -> Vec<ErrorKind> {
        vec![ErrorKind::ConnectionFailed]
    }
    /// How long after a timeout or cancel `run` may take to return (kill and confirm).
    fn kill_bound(&self) -> Duration {
        Duration::from_secs(15)
    }
    /// How long `run` and `probe` on the bad target may take to fail.
    fn bad_target_bound(&self) -> Duration {
        Duration::from_secs(30)
    }
}

/// Expands to one `#[tokio::test]` per Connector conformance case, each calling
/// `orca_core::testkit::connector::<case>(&fixture)` with a fixture made by `$fixture`
/// (evaluated once per test). The calling crate needs `tokio` (with `macros` and
/// `rt-multi-thread`).
#[macro_export]
macro_rules! connector_conformance {
    ($fixture:expr) => {
        $crate::__connector_conformance_cases!(
            $fixture;
            connector_serves_target_type,
            exit_codes_are_faithful,
            stdout_and_stderr_are_separate,
            large_output_arrives_intact,
            concurrent_runs_are_independent,
            timeout_kills_the_command,
            cancel_kills_the_command,
            bad_target_is_an_error,
            probe_reports_healthy_target,
            probe_reports_unhealthy_target,
        );
    };
}

/// Implementation detail of [`connector_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __connector_conformance_cases {
    ($fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture = $fixture;
                $crate::testkit::connector::$case(&fixture).await;
            }
        )*
    };
}
