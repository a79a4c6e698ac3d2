//! Cases about running commands: exit codes, streams, volume, concurrency.

use std::time::Duration;

use crate::{CancellationToken, CommandSpec, RunOutcome};

use super::ConnectorFixture;
use super::support::{
    MAX_PIECE, expect_outcome, normalize_newlines, run_collect, seq_bytes, sha256_hex,
};

/// The connector serves the target's system type and says what it can do.
pub async fn connector_serves_target_type(f: &dyn ConnectorFixture) {
    let c = f.connector();
    let t = f.target();
    assert!(!c.name().is_empty(), "a connector has a name");
    assert!(
        c.system_types().contains(&t.system.system_type),
        "{} serves {:?}, not the fixture's target type {:?}",
        c.name(),
        c.system_types(),
        t.system.system_type
    );
    let caps = c.capabilities();
    assert!(
        caps.posix_shell || caps.powershell,
        "{} must support at least one shell: {caps:?}",
        c.name()
    );
}

/// Exit codes 0, 1 and 42 come back as they are, as `Exited` outcomes without a signal, also
/// when a (generous) timeout is set.
pub async fn exit_codes_are_faithful(f: &dyn ConnectorFixture) {
    let c = f.connector();
    let t = f.target();
    for code in [0, 1, 42] {
        for timeout in [None, Some(Duration::from_secs(60))] {
            let mut spec = CommandSpec::new(f.cmd_exit(code));
            spec.timeout = timeout;
            let (r, out, _) = run_collect(&*c, &t, &spec, CancellationToken::new()).await;
            let o = expect_outcome(&format!("exit {code}"), r);
            assert_eq!(
                o,
                RunOutcome::exited(code),
                "`{}` (timeout {timeout:?}) gave {o:?}; stdout {:?}, stderr {:?}",
                spec.command,
                out.stdout_text(),
                out.stderr_text()
            );
        }
    }
}

/// stdout and stderr arrive separately, each in its own order.
pub async fn stdout_and_stderr_are_separate(f: &dyn ConnectorFixture) {
    let c = f.connector();
    let spec = CommandSpec::new(f.cmd_echo_both());
    let (r, out, _) = run_collect(&*c, &f.target(), &spec, CancellationToken::new()).await;
    let o = expect_outcome("echo both", r);
    assert_eq!(o, RunOutcome::exited(0));
    assert_eq!(out.stdout_text(), "out1\nout2\nout3\n", "stdout");
    assert_eq!(out.stderr_text(), "err1\nerr2\n", "stderr");
}

/// About 10 MB of output arrives intact and in order (length and SHA-256), streamed while the
/// command runs through a 4-piece sink, in pieces of at most [`MAX_PIECE`] bytes.
pub async fn large_output_arrives_intact(f: &dyn ConnectorFixture) {
    const LINES: u64 = 1_500_000;
    let expected = seq_bytes(LINES);
    let c = f.connector();
    let spec = CommandSpec::new(f.cmd_large_output(LINES));
    let (r, out, ended) = run_collect(&*c, &f.target(), &spec, CancellationToken::new()).await;
    let o = expect_outcome("large output", r);
    assert_eq!(o, RunOutcome::exited(0), "stderr: {}", out.stderr_text());
    let got = normalize_newlines(&out.stdout);
    assert_eq!(got.len(), expected.len(), "length of stdout");
    assert_eq!(
        sha256_hex(&got),
        sha256_hex(&expected),
        "checksum of stdout"
    );
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr_text());
    assert!(out.largest <= MAX_PIECE, "a piece of {} bytes", out.largest);
    let first = out.first_at.expect("output arrived");
    assert!(
        first < ended,
        "output must stream while the command runs, not arrive after `run` returned"
    );
}

/// 20 runs at once through one shared connector each get their own output and exit code.
pub async fn concurrent_runs_are_independent(f: &dyn ConnectorFixture) {
    const RUNS: i32 = 20;
    let c = f.connector();
    let t = f.target();
    let mut tasks = Vec::new();
    for i in 0..RUNS {
        let c = c.clone();
        let t = t.clone();
        let spec = CommandSpec::new(f.cmd_print_and_exit(&format!("run-{i}"), i));
        tasks.push(tokio::spawn(async move {
            let (r, out, _) = run_collect(&*c, &t, &spec, CancellationToken::new()).await;
            (i, r, out)
        }));
    }
    for task in tasks {
        let (i, r, out) = task.await.expect("a run task panicked");
        let o = expect_outcome(&format!("concurrent run {i}"), r);
        assert_eq!(o, RunOutcome::exited(i), "run {i}: {}", out.stderr_text());
        assert_eq!(out.stdout_text(), format!("run-{i}\n"), "run {i} stdout");
        assert!(
            out.stderr.is_empty(),
            "run {i} stderr: {}",
            out.stderr_text()
        );
    }
}
