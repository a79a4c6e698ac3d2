//! Running one command on a pooled connection: stream output, collect the exit, and stop the
//! remote process group on cancel or timeout (see [`super::wrapper`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use orca_core::model::Stream;
use orca_core::{Error, ErrorKind, OutputSink, Result, Retry, RunEnd, RunOutcome};
use russh::client::Msg;
use russh::{Channel, ChannelMsg, Sig};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::error::{Phase, russh_error};
use super::pool::{Conn, Lease};
use super::wrapper::{MarkerParser, RemoteProcess, kill_confirmed, kill_script};

/// How long to wait for the marker before falling back to SSH signals.
const MARKER_WAIT: Duration = Duration::from_secs(2);
/// How long to keep reading the channel after the kill finished.
const DRAIN: Duration = Duration::from_secs(3);

/// Opens a channel for stopping a command when its own connection cannot: the backend
/// provides it (a fresh pooled connection to the same target).
pub(crate) type Reopen =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Lease>> + Send>> + Send + Sync>;

/// Everything `execute` needs besides the command line.
pub(crate) struct ExecParams {
    pub addr: String,
    pub timeout: Option<Duration>,
    pub open_timeout: Duration,
    pub kill_grace: Duration,
    pub reopen: Reopen,
}

/// The name OpenSSH uses for a signal (without `SIG`).
fn sig_name(s: &Sig) -> String {
    match s {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(c) => c.as_str(),
    }
    .to_string()
}

/// Open a channel on the lease's connection, learning a lower `MaxSessions` on the way.
pub(crate) async fn open_channel(lease: &mut Lease, p: &ExecParams) -> Result<Channel<Msg>> {
    let mut refused = 0u32;
    loop {
        let r = timeout(p.open_timeout, lease.conn.open())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("{} did not open a session channel in time", p.addr),
                )
            })?;
        match r {
            Ok(ch) => return Ok(ch),
            Err(russh::Error::ChannelOpenFailure(
                // OpenSSH over MaxSessions answers "open failed" (connect failed).
                russh::ChannelOpenFailure::AdministrativelyProhibited
                | russh::ChannelOpenFailure::ConnectFailed
                | russh::ChannelOpenFailure::ResourceShortage,
            )) if refused < 20 => {
                // Either the server's MaxSessions is below ours (shrink this connection's
                // capacity), or, at capacity one, a just-closed channel is not released on the
                // server yet (wait a little).
                refused += 1;
                if !lease.shrink().await {
                    tokio::time::sleep(Duration::from_millis(25 * u64::from(refused))).await;
                }
                tracing::debug!(addr = %p.addr, "server refused a channel: fewer per connection");
            }
            Err(e) => {
                if !matches!(e, russh::Error::ChannelOpenFailure(_)) {
                    lease.conn.mark_broken();
                }
                return Err(russh_error(&e, &p.addr, Phase::Start));
            }
        }
    }
}

/// Run the kill script for `proc` on `conn` (or a fresh connection) and report whether the
/// process group is gone.
async fn stop_remote(
    conn: Arc<Conn>,
    reopen: Reopen,
    proc: RemoteProcess,
    grace: Duration,
) -> Option<bool> {
    let script = kill_script(proc, grace);
    let limit = grace + Duration::from_secs(8);
    let mut _lease = None;
    let (mut ch, _permit) = match conn.open_reserved(Duration::from_secs(2)).await {
        Some((ch, p)) => (ch, Some(p)),
        None => {
            let lease = reopen().await?;
            let ch = lease.conn.open().await.ok();
            let ch = match ch {
                Some(ch) => ch,
                None => {
                    lease.conn.mark_broken();
                    return None;
                }
            };
            _lease = Some(lease);
            (ch, None)
        }
    };
    ch.exec(true, script).await.ok()?;
    let mut out = Vec::new();
    let read = async {
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    };
    let finished = timeout(limit, read).await.is_ok();
    let _ = ch.close().await;
    if !finished {
        return None;
    }
    kill_confirmed(&String::from_utf8_lossy(&out))
}

/// Run `line` on `ch` (a channel of `lease`) and stream its output to `sink`.
pub(crate) async fn execute(
    lease: Lease,
    mut ch: Channel<Msg>,
    line: String,
    p: ExecParams,
    sink: OutputSink,
    cancel: CancellationToken,
) -> Result<RunOutcome> {
    if let Err(e) = ch.exec(true, line).await {
        let _ = ch.close().await;
        return Err(russh_error(&e, &p.addr, Phase::Start));
    }
    let deadline = p.timeout.map(|t| Instant::now() + t);
    let mut marker = MarkerParser::default();
    let (mut exit_code, mut signal) = (None, None);
    let mut stop: Option<RunEnd> = None;
    let mut sink_gone = false;
    let mut started = false;
    let mut closed = false;
    let mut stop_at: Option<Instant> = None;
    let mut kill: Option<tokio::task::JoinHandle<Option<bool>>> = None;
    let mut kill_result: Option<Option<bool>> = None;
    // Fallback without a marker: SSH signal requests, TERM then KILL.
    let mut fallback_stage = 0u8;
    let mut wake: Option<Instant> = None;
    let mut drain_until: Option<Instant> = None;

    loop {
        // Start stopping the command as soon as we know what to stop.
        if stop.is_some() && kill.is_none() && kill_result.is_none() {
            if let Some(proc) = marker.process() {
                kill = Some(tokio::spawn(stop_remote(
                    lease.conn.clone(),
                    p.reopen.clone(),
                    proc,
                    p.kill_grace,
                )));
                wake = None;
            } else if marker.is_done() || stop_at.is_some_and(|t| t.elapsed() >= MARKER_WAIT) {
                let now = Instant::now();
                match fallback_stage {
                    0 => {
                        let _ = ch.signal(Sig::TERM).await;
                        fallback_stage = 1;
                        wake = Some(now + p.kill_grace);
                    }
                    1 if wake.is_some_and(|w| now >= w) => {
                        let _ = ch.signal(Sig::KILL).await;
                        fallback_stage = 2;
                        wake = Some(now + Duration::from_secs(2));
                    }
                    2 if wake.is_some_and(|w| now >= w) => {
                        kill_result = Some(Some(false));
                        break;
                    }
                    _ => {}
                }
            } else if wake.is_none() {
                wake = stop_at.map(|t| t + MARKER_WAIT);
            }
        }
        if drain_until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let next_wake = match (wake, drain_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            msg = ch.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    started = true;
                    if !sink_gone && sink.send(Stream::Stdout, data).await.is_err() {
                        sink_gone = true;
                    }
                }
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    started = true;
                    let rest = marker.feed(&data);
                    if !sink_gone && !rest.is_empty()
                        && sink.send(Stream::Stderr, Bytes::from(rest)).await.is_err()
                    {
                        sink_gone = true;
                    }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    exit_code = Some(exit_status as i32);
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    signal = Some(sig_name(&signal_name));
                }
                Some(ChannelMsg::Failure) if !started => {
                    let _ = ch.close().await;
                    return Err(Error::new(
                        ErrorKind::ConnectionFailed,
                        format!("{} refused to run the command (exec request denied)", p.addr),
                    )
                    .with_retry(Retry::Safe));
                }
                Some(ChannelMsg::Close) => {
                    closed = true;
                    break;
                }
                None => break,
                Some(_) => {}
            },
            _ = cancel.cancelled(), if stop.is_none() => {
                stop = Some(RunEnd::Cancelled);
                stop_at = Some(Instant::now());
            }
            _ = async { sleep_until(deadline.unwrap_or_else(Instant::now)).await },
                if stop.is_none() && deadline.is_some() => {
                stop = Some(RunEnd::TimedOut);
                stop_at = Some(Instant::now());
            }
            r = async {
                match kill.as_mut() {
                    Some(k) => k.await,
                    None => std::future::pending().await,
                }
            },
                if kill.is_some() => {
                kill = None;
                kill_result = Some(r.unwrap_or(None));
                drain_until = Some(Instant::now() + DRAIN);
            }
            _ = async { sleep_until(next_wake.unwrap_or_else(Instant::now)).await },
                if next_wake.is_some() => {}
        }
        if sink_gone && stop.is_none() {
            stop = Some(RunEnd::Cancelled);
            stop_at = Some(Instant::now());
        }
    }

    // The channel ended (or we gave up on it). Finish stopping what is left of the group.
    if stop.is_some() && kill_result.is_none() {
        kill_result = Some(match (kill.take(), marker.process()) {
            (Some(k), _) => k.await.unwrap_or(None),
            (None, Some(proc)) => {
                stop_remote(lease.conn.clone(), p.reopen.clone(), proc, p.kill_grace).await
            }
            (None, None) => Some(closed),
        });
    }
    if !closed {
        let _ = ch.close().await;
    }
    drop(ch);
    let connection_lost = !closed && !lease.conn.alive();
    drop(lease);

    let kill_confirmed = kill_result.map(|k| k.unwrap_or(false));
    if sink_gone {
        return Err(Error::unexpected(format!(
            "the output receiver went away; the remote command was stopped (kill confirmed: {})",
            kill_confirmed.unwrap_or(false)
        ))
        .with_retry(Retry::Unsafe));
    }
    match stop {
        Some(end) => Ok(RunOutcome {
            end,
            exit_code,
            signal,
            kill_confirmed,
        }),
        None if connection_lost && exit_code.is_none() && signal.is_none() => Err(Error::new(
            ErrorKind::ConnectionFailed,
            format!(
                "the connection to {} was lost while the command was running; its outcome is \
                 unknown",
                p.addr
            ),
        )
        .with_retry(Retry::Unsafe)),
        None => Ok(RunOutcome {
            end: RunEnd::Exited,
            exit_code,
            signal,
            kill_confirmed: None,
        }),
    }
}
