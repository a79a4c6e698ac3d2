//! Running one claimed execution.

use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::Duration;

use futures::FutureExt;
use secrecy::ExposeSecret;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio_util::sync::CancellationToken;

use super::output::Pump;
use super::writer::WriteMsg;
use super::{Inner, Running, StopReason};
use crate::connector::{CommandSpec, OutputSink, RunEnd, RunOutcome, Target};
use crate::mask::Masker;
use crate::model::{Credential, ExecutionStatus, Finish};
use crate::store::Claim;
use crate::{Error, Retry};

pub(crate) fn spawn(inner: &Arc<Inner>, claim: Claim, permit: Option<OwnedSemaphorePermit>) {
    let running = Arc::new(Running {
        lease: std::sync::Mutex::new(claim.lease.clone()),
        cancel: CancellationToken::new(),
        reason: AtomicU8::new(0),
    });
    inner.running().insert(claim.execution.id, running.clone());
    let inner2 = inner.clone();
    inner.tasks.spawn(async move {
        let id = claim.execution.id;
        run_claim(&inner2, claim, &running).await;
        inner2.running().remove(&id);
        drop(permit);
        inner2.wake.notify_one();
    });
}

async fn run_claim(inner: &Arc<Inner>, claim: Claim, running: &Arc<Running>) {
    let id = claim.execution.id;
    let lease = claim.lease.clone();
    let finish = execute(inner, &claim, running).await;
    if running.reason() == StopReason::LeaseLost {
        tracing::warn!(execution_id = %id, "lease lost: the outcome is not recorded by this node");
        return;
    }
    let Some(writer) = inner.writer() else {
        tracing::error!(execution_id = %id, "engine writer is gone; the outcome is lost");
        return;
    };
    let (tx, rx) = oneshot::channel();
    if writer
        .send(WriteMsg::Finish(lease, finish, tx))
        .await
        .is_err()
    {
        return;
    }
    match rx.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(execution_id = %id, error = %e, "finishing the execution failed")
        }
        Err(_) => tracing::warn!(execution_id = %id, "writer stopped before finishing"),
    }
}

/// Exponential backoff with jitter: between half and all of `base * 2^(attempt-1)`, capped.
pub(crate) fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max);
    let half = exp / 2;
    let jitter = rand::random::<f64>();
    half + half.mul_f64(jitter)
}

async fn execute(inner: &Arc<Inner>, claim: &Claim, running: &Arc<Running>) -> Finish {
    let Claim {
        execution,
        lease,
        job,
        system,
        next_seq,
    } = claim;
    let cfg = &inner.config;
    let connector = match inner.connectors.require(system.system_type) {
        Ok(c) => c.clone(),
        Err(e) => return Finish::failed(e.message().to_string()),
    };
    let credential = match &system.credential {
        None => Credential::None,
        Some(sealed) => match inner.vault.open(&system.id.to_string(), sealed) {
            Ok(c) => c,
            Err(e) => {
                return Finish::failed(format!(
                    "cannot decrypt the system's credential: {}",
                    e.message()
                ));
            }
        },
    };
    let masks = {
        let secrets: Vec<Vec<u8>> = credential
            .secrets()
            .iter()
            .map(|s| s.expose_secret().as_bytes().to_vec())
            .collect();
        [Masker::new(secrets.iter()), Masker::new(secrets.iter())]
    };
    let timeout = job
        .options
        .timeout_seconds
        .map(Duration::from_secs)
        .or(cfg.default_timeout);
    let spec = CommandSpec {
        command: job.command.clone(),
        shell: job.options.shell,
        env: job.options.env.clone(),
        timeout,
    };
    let target = Target {
        system: system.clone(),
        credential,
        execution_id: Some(execution.id),
        host_keys: Some(inner.host_keys.clone()),
    };
    let (sink, rx) = OutputSink::channel(64);
    let Some(writer) = inner.writer() else {
        return Finish::failed("the engine is stopping");
    };
    let (head, tail) = if cfg.output_cap == 0 {
        (0, 0)
    } else {
        (cfg.output_cap / 2, cfg.output_cap - cfg.output_cap / 2)
    };
    let pump = Pump {
        job_id: job.id,
        lease: lease.clone(),
        next_seq: *next_seq,
        masks,
        head_limit: head,
        tail_limit: tail,
        flush_interval: cfg.output_flush_interval,
        flush_bytes: cfg.output_flush_bytes,
        writer,
        clock: inner.clock.clone(),
    };
    // The connector and the output pump run side by side in this task (no extra spawns on the
    // hot path); a panic in the connector is caught and fails only this execution.
    let cancel = running.cancel.clone();
    // Backstop in case a connector ignores its own timeout or the cancel token.
    let backstop = timeout.map(|t| t + Duration::from_secs(30));
    let run = async {
        let fut = std::panic::AssertUnwindSafe(connector.run(&target, &spec, sink, cancel.clone()))
            .catch_unwind();
        match backstop {
            Some(b) => tokio::time::timeout(b, fut).await.map_err(|_| None),
            None => Ok(fut.await),
        }
        .and_then(|r| r.map_err(Some))
    };
    let mut run = std::pin::pin!(run);
    let mut pump = std::pin::pin!(pump.run(rx));
    let mut report = None;
    let joined = loop {
        tokio::select! {
            r = &mut run => break r,
            rep = &mut pump, if report.is_none() => report = Some(rep),
        }
    };
    if matches!(joined, Err(None)) {
        cancel.cancel();
    }
    let report = match report {
        Some(r) => r,
        None => match tokio::time::timeout(Duration::from_secs(30), pump).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(execution_id = %execution.id, "output pump did not finish in time");
                Default::default()
            }
        },
    };
    let mut finish = match joined {
        Ok(Ok(outcome)) => from_outcome(
            outcome,
            running.reason(),
            timeout,
            job.options.retry_on_nonzero_exit && execution.attempt <= job.options.retries,
        ),
        Ok(Err(e)) => from_error(&e, execution.attempt, job.options.retries),
        Err(Some(panic)) => {
            let msg = panic
                .downcast::<String>()
                .map(|s| *s)
                .or_else(|p| p.downcast::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|_| "unknown panic".to_string());
            tracing::error!(execution_id = %execution.id, connector = connector.name(), "connector panicked: {msg}");
            Finish::failed(format!(
                "the {} connector panicked: {msg}",
                connector.name()
            ))
        }
        Err(_) => {
            let mut f = Finish::new(ExecutionStatus::Timeout);
            f.error = Some(format!(
                "the {} connector did not return within its timeout; the command may still run",
                connector.name()
            ));
            f
        }
    };
    if finish.status == ExecutionStatus::Pending && running.reason() == StopReason::User {
        // A user asked to cancel: never re-queue it.
        let mut f = Finish::new(ExecutionStatus::Cancelled);
        f.error = Some("cancelled".into());
        finish = f;
    }
    if finish.status == ExecutionStatus::Pending {
        let delay = backoff(cfg.backoff_base, cfg.backoff_max, execution.attempt);
        finish.retry_at = Some(crate::model::micros(crate::clock::add(
            inner.clock.now(),
            delay,
        )));
    }
    finish.output_dropped = report.dropped;
    finish
}

fn from_outcome(
    o: RunOutcome,
    why: StopReason,
    timeout: Option<Duration>,
    retry_nonzero: bool,
) -> Finish {
    let unconfirmed = if o.kill_confirmed == Some(false) {
        " (the kill could not be confirmed)"
    } else {
        ""
    };
    let mut f = match o.end {
        RunEnd::Exited => match (o.exit_code, &o.signal) {
            (Some(0), _) => Finish::exited(0),
            (Some(code), _) if retry_nonzero => {
                Finish::retry(chrono::Utc::now(), format!("exited with {code}"))
            }
            (Some(code), _) => Finish::exited(code),
            (None, Some(sig)) => Finish::failed(format!("the command was killed by signal {sig}")),
            (None, None) => Finish::failed("the command ended without an exit status"),
        },
        RunEnd::TimedOut => {
            let mut f = Finish::new(ExecutionStatus::Timeout);
            let t = timeout
                .map(|t| format!(" after {}s", t.as_secs_f64()))
                .unwrap_or_default();
            f.error = Some(format!("timed out{t}{unconfirmed}"));
            f
        }
        RunEnd::Cancelled => match why {
            StopReason::Shutdown => {
                Finish::failed(format!("stopped because the engine shut down{unconfirmed}"))
            }
            _ => {
                let mut f = Finish::new(ExecutionStatus::Cancelled);
                f.error = Some(format!("cancelled{unconfirmed}"));
                f
            }
        },
    };
    f.exit_code = f.exit_code.or(o.exit_code);
    f.signal = o.signal;
    if f.status == ExecutionStatus::Pending {
        // A retry keeps no exit code on the execution; the reason says it.
        f.exit_code = None;
    }
    f
}

fn from_error(e: &Error, attempt: u32, retries: u32) -> Finish {
    if e.retry() != Retry::Never && attempt <= retries {
        tracing::info!(error = %e, attempt, "attempt failed; retrying");
        Finish::retry(chrono::Utc::now(), e.to_string())
    } else {
        Finish::failed(e.to_string())
    }
}
