//! Cases about stopping commands: timeout and cancel.

use std::time::{Duration, Instant};

use crate::model::Stream;
use crate::{CancellationToken, CommandSpec, OutputSink, RunEnd};

use super::ConnectorFixture;
use super::support::{SINK_CAPACITY, collect, expect_outcome, run_collect};

/// A command that outlives its timeout ends `TimedOut`, no sooner than the timeout and no
/// later than the timeout plus [`ConnectorFixture::kill_bound`], with the kill confirmed.
pub async fn timeout_kills_the_command(f: &dyn ConnectorFixture) {
    let limit = Duration::from_secs(1);
    let c = f.connector();
    let spec = CommandSpec::new(f.cmd_sleep_forever()).with_timeout(limit);
    let started = Instant::now();
    let (r, out, ended) = run_collect(&*c, &f.target(), &spec, CancellationToken::new()).await;
    let took = ended - started;
    let o = expect_outcome("timeout", r);
    assert_eq!(
        o.end,
        RunEnd::TimedOut,
        "{o:?}; stderr {}",
        out.stderr_text()
    );
    assert_eq!(o.kill_confirmed, Some(true), "{o:?}");
    assert_ne!(
        o.exit_code,
        Some(0),
        "a killed command did not succeed: {o:?}"
    );
    assert!(
        took >= limit,
        "ended after {took:?}, before its {limit:?} timeout"
    );
    assert!(
        took <= limit + f.kill_bound(),
        "ended {took:?} after start; the bound is {limit:?} + {:?}",
        f.kill_bound()
    );
}

/// A running command that is cancelled (after it printed `ready`) ends `Cancelled` within
/// [`ConnectorFixture::kill_bound`] of the cancel, with the kill confirmed; what it printed
/// before arrives.
pub async fn cancel_kills_the_command(f: &dyn ConnectorFixture) {
    let c = f.connector();
    let t = f.target();
    let spec = CommandSpec::new(f.cmd_sleep_forever());
    let cancel = CancellationToken::new();
    let (sink, mut rx) = OutputSink::channel(SINK_CAPACITY);
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let r = c.run(&t, &spec, sink, cancel).await;
            (r, Instant::now())
        }
    });

    let mut stdout = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some((stream, bytes)) = rx.recv().await {
            if stream == Stream::Stdout {
                stdout.extend_from_slice(&bytes);
                if String::from_utf8_lossy(&stdout).contains("ready") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(
        ready,
        Ok(true),
        "the command did not print `ready` within 60 s (stdout so far {:?})",
        String::from_utf8_lossy(&stdout)
    );
    assert!(
        !run.is_finished(),
        "the command ended before it was cancelled"
    );

    let cancelled_at = Instant::now();
    cancel.cancel();
    let rest = tokio::time::timeout(f.kill_bound() * 2, collect(rx))
        .await
        .expect("the sink stays open long after the cancel");
    let (r, ended) = tokio::time::timeout(f.kill_bound() * 2, run)
        .await
        .expect("run did not return after the cancel")
        .expect("the run task panicked");
    let took = ended - cancelled_at;
    let o = expect_outcome("cancel", r);
    assert_eq!(
        o.end,
        RunEnd::Cancelled,
        "{o:?}; stderr {}",
        rest.stderr_text()
    );
    assert_eq!(o.kill_confirmed, Some(true), "{o:?}");
    assert!(
        took <= f.kill_bound(),
        "run returned {took:?} after the cancel; the bound is {:?}",
        f.kill_bound()
    );
}
