//! One running command: pumping its pipes to the sink, waiting for it, and stopping its whole
//! process group on timeout, cancel, or when nobody reads its output any more.

use std::future::{Future, pending};
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::ExitStatus;
use std::time::Duration;

use bytes::BytesMut;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use orca_core::model::Stream;
use orca_core::{CancellationToken, Error, OutputSink, Result, Retry, RunEnd, RunOutcome};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::config::LocalConfig;
use super::error::LocalError;
use super::group::{GroupGuard, group_gone};

/// Both pipes pumped into the sink; `Err` when the sink's receiver is gone.
type Pumps<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Why the main loop stopped before the command ended by itself.
enum Stop {
    Timeout,
    Cancel,
    /// The main process exited but others in its group kept the pipes open too long.
    Stragglers,
    /// Nobody reads the output any more.
    SinkGone(Error),
}

/// Run `child` (already spawned as the leader of its own process group) to its end.
pub(crate) async fn drive(
    mut child: Child,
    sink: OutputSink,
    run_timeout: Option<Duration>,
    cancel: CancellationToken,
    cfg: &LocalConfig,
) -> Result<RunOutcome> {
    let pid = child
        .id()
        .ok_or_else(|| Error::unexpected("a freshly started local process has no pid"))?;
    let pgid = Pid::from_raw(
        i32::try_from(pid).map_err(|_| Error::unexpected(format!("pid {pid} out of range")))?,
    );
    let mut guard = GroupGuard::new(pgid);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let chunk = cfg.read_chunk;
    let sink_ref = &sink;
    let mut pumps: Option<Pumps<'_>> = Some(Box::pin(async move {
        futures::future::try_join(
            pump(stdout, Stream::Stdout, sink_ref, chunk),
            pump(stderr, Stream::Stderr, sink_ref, chunk),
        )
        .await
        .map(|_| ())
    }));

    let deadline = run_timeout.map(|t| Instant::now() + t);
    let mut status: Option<ExitStatus> = None;
    let mut drain_until: Option<Instant> = None;
    let stop = loop {
        if pumps.is_none() && status.is_some() {
            break None;
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break Some(Stop::Cancel),
            _ = until(deadline) => break Some(Stop::Timeout),
            r = next_pumps(&mut pumps) => {
                if let Err(e) = r {
                    break Some(Stop::SinkGone(e));
                }
            }
            s = child.wait(), if status.is_none() => {
                status = Some(s.map_err(LocalError::Wait)?);
                drain_until = Some(Instant::now() + cfg.drain_grace);
            }
            _ = until(drain_until), if pumps.is_some() => break Some(Stop::Stragglers),
        }
    };

    let Some(stop) = stop else {
        // Ended by itself; processes it left behind without our pipes were detached on
        // purpose (`nohup cmd >log 2>&1 &`) and are left alone.
        guard.disarm();
        return Ok(outcome_of(RunEnd::Exited, status, None));
    };

    let (end, sink_error) = match stop {
        Stop::Timeout => (RunEnd::TimedOut, None),
        Stop::Cancel => (RunEnd::Cancelled, None),
        Stop::Stragglers => (RunEnd::Exited, None),
        Stop::SinkGone(e) => {
            pumps = None;
            (RunEnd::Cancelled, Some(e))
        }
    };
    tracing::debug!(pgid = pgid.as_raw(), ?end, "stopping a local process group");
    let confirmed = terminate(pgid, &mut child, &mut status, &mut pumps, cfg).await;
    if confirmed {
        guard.disarm();
        // The group is gone, so the pipes are at their end unless a process escaped the group
        // (setsid) with them: keep what is already written, bounded.
        let _ = timeout(cfg.drain_grace, next_pumps(&mut pumps)).await;
    } else {
        tracing::warn!(
            pgid = pgid.as_raw(),
            "a local process group survived SIGKILL; the kill is unconfirmed"
        );
    }
    if pumps.is_some() {
        tracing::warn!(
            pgid = pgid.as_raw(),
            "a process outside the command's group still holds its output pipes; \
             the rest of its output is dropped"
        );
    }
    drop(pumps);
    if status.is_none()
        && let Ok(s) = timeout(cfg.kill_confirm, child.wait()).await
    {
        status = Some(s.map_err(LocalError::Wait)?);
    }
    if let Some(e) = sink_error {
        return Err(Error::unexpected(format!(
            "the output receiver went away ({}); the local command was stopped \
             (kill confirmed: {confirmed})",
            e.message()
        ))
        .with_retry(Retry::Unsafe));
    }
    match end {
        RunEnd::Exited => {
            tracing::warn!(
                pgid = pgid.as_raw(),
                "processes left behind by a local command held its output open; they were killed"
            );
            Ok(outcome_of(end, status, None))
        }
        _ => Ok(outcome_of(end, status, Some(confirmed))),
    }
}

/// SIGTERM the group, give it `kill_grace` (still pumping output), then SIGKILL and wait up to
/// `kill_confirm`. Returns whether the group is confirmed gone.
async fn terminate(
    pgid: Pid,
    child: &mut Child,
    status: &mut Option<ExitStatus>,
    pumps: &mut Option<Pumps<'_>>,
    cfg: &LocalConfig,
) -> bool {
    for (signal, wait) in [
        (Signal::SIGTERM, cfg.kill_grace),
        (Signal::SIGKILL, cfg.kill_confirm),
    ] {
        match killpg(pgid, signal) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return true,
            Err(e) => tracing::warn!(pgid = pgid.as_raw(), %e, "killpg({signal}) failed"),
        }
        if wait_gone(pgid, child, status, pumps, wait).await {
            return true;
        }
    }
    false
}

/// Poll until the group has no live member or `wait` has passed, reaping the leader and
/// pumping output meanwhile.
async fn wait_gone(
    pgid: Pid,
    child: &mut Child,
    status: &mut Option<ExitStatus>,
    pumps: &mut Option<Pumps<'_>>,
    wait: Duration,
) -> bool {
    let deadline = Instant::now() + wait;
    let mut interval = Duration::from_millis(2);
    loop {
        if status.is_none()
            && let Ok(Some(s)) = child.try_wait()
        {
            *status = Some(s);
        }
        if tokio::task::spawn_blocking(move || group_gone(pgid))
            .await
            .unwrap_or(false)
        {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let nap = sleep(interval.min(deadline - now));
        tokio::pin!(nap);
        loop {
            tokio::select! {
                _ = &mut nap => break,
                r = next_pumps(pumps) => {
                    if r.is_err() {
                        // Nobody reads any more: stop pumping, keep killing.
                        *pumps = None;
                    }
                }
            }
        }
        interval = (interval * 2).min(Duration::from_millis(50));
    }
}

/// Wait for the pumps to finish (then clear them); never resolves when they are done already.
async fn next_pumps(pumps: &mut Option<Pumps<'_>>) -> Result<()> {
    match pumps.as_mut() {
        Some(p) => {
            let r = p.await;
            *pumps = None;
            r
        }
        None => pending().await,
    }
}

async fn until(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => pending().await,
    }
}

/// Copy `reader` to `sink` as `stream`, a chunk at a time, until its end.
async fn pump<R: AsyncRead + Unpin>(
    reader: Option<R>,
    stream: Stream,
    sink: &OutputSink,
    chunk: usize,
) -> Result<()> {
    let Some(mut reader) = reader else {
        return Ok(());
    };
    loop {
        let mut buf = BytesMut::with_capacity(chunk);
        match reader.read_buf(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(_) => sink.send(stream, buf.freeze()).await?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(stream = stream.as_str(), %e, "reading a local command's output failed");
                return Ok(());
            }
        }
    }
}

/// The outcome for `end` given the leader's exit status, if it was reaped.
fn outcome_of(end: RunEnd, status: Option<ExitStatus>, kill_confirmed: Option<bool>) -> RunOutcome {
    let (exit_code, signal) = match status {
        Some(s) => (s.code(), s.signal().map(signal_name)),
        None => (None, None),
    };
    RunOutcome {
        end,
        exit_code,
        signal,
        kill_confirmed,
    }
}

/// `TERM`, `KILL`, `SEGV`...; the number for signals without a name.
pub(crate) fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(s) => s.as_str().trim_start_matches("SIG").to_string(),
        Err(_) => signal.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_drop_the_prefix() {
        assert_eq!(signal_name(15), "TERM");
        assert_eq!(signal_name(9), "KILL");
        assert_eq!(signal_name(11), "SEGV");
        assert_eq!(signal_name(200), "200");
    }

    #[test]
    fn outcome_of_a_signalled_status_has_no_exit_code() {
        let o = outcome_of(RunEnd::TimedOut, Some(ExitStatus::from_raw(9)), Some(true));
        assert_eq!(o.exit_code, None);
        assert_eq!(o.signal.as_deref(), Some("KILL"));
        let o = outcome_of(RunEnd::Exited, Some(ExitStatus::from_raw(42 << 8)), None);
        assert_eq!(o, RunOutcome::exited(42));
        let o = outcome_of(RunEnd::Exited, None, None);
        assert_eq!((o.exit_code, o.signal), (None, None));
    }
}
