//! The engine's batched writer: output chunks and finishes of all executions go through one
//! queue and are written in as few store calls as possible, output before finish.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::bus::{Event, EventBus};
use crate::ids::JobId;
use crate::model::{Finish, JobStatus, Lease};
use crate::store::{Finished, OutputBatch, Store};
use crate::{ErrorKind, Result};

pub(crate) enum WriteMsg {
    Output(JobId, OutputBatch),
    Finish(Lease, Finish, oneshot::Sender<Result<Finished>>),
}

pub(crate) struct Writer {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub max_batch: usize,
    /// Called with executions whose lease turned out to be lost.
    pub on_lost: Box<dyn Fn(crate::ids::ExecutionId) + Send + Sync>,
}

impl Writer {
    pub async fn run(self, mut rx: mpsc::Receiver<WriteMsg>) {
        let mut msgs = Vec::with_capacity(self.max_batch);
        while rx.recv_many(&mut msgs, self.max_batch).await > 0 {
            let mut outs = Vec::new();
            let mut fins = Vec::new();
            for m in msgs.drain(..) {
                match m {
                    WriteMsg::Output(j, b) => outs.push((j, b)),
                    WriteMsg::Finish(l, f, tx) => fins.push((l, f, tx)),
                }
            }
            if !outs.is_empty() {
                self.write_output(outs).await;
            }
            if !fins.is_empty() {
                self.write_finishes(fins).await;
            }
        }
    }

    async fn with_retries<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut delay = Duration::from_millis(50);
        let mut tries = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && tries < 6 => {
                    tries += 1;
                    tracing::warn!(error = %e, tries, "writing {what} failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn write_output(&self, items: Vec<(JobId, OutputBatch)>) {
        let (jobs, batches): (Vec<JobId>, Vec<OutputBatch>) = items.into_iter().unzip();
        let res = self
            .with_retries("output", || self.store.append_output(&batches))
            .await;
        let results = match res {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "output could not be stored; dropping {} batches", batches.len());
                return;
            }
        };
        let mut events = Vec::new();
        for ((job_id, b), r) in jobs.into_iter().zip(batches).zip(results) {
            match r {
                Ok(()) => {
                    if let (Some(first), Some(last)) = (b.chunks.first(), b.chunks.last()) {
                        let (first_seq, last_seq) = (first.seq, last.seq);
                        events.push(Event::Output {
                            execution_id: b.lease.execution_id,
                            job_id,
                            first_seq,
                            last_seq,
                            chunks: b.chunks,
                        });
                    }
                }
                Err(e) if e.kind() == ErrorKind::LeaseLost => (self.on_lost)(b.lease.execution_id),
                Err(e) => {
                    tracing::error!(execution_id = %b.lease.execution_id, error = %e, "output rejected")
                }
            }
        }
        self.publish(events).await;
    }

    async fn write_finishes(&self, fins: Vec<(Lease, Finish, oneshot::Sender<Result<Finished>>)>) {
        let items: Vec<(Lease, Finish)> = fins
            .iter()
            .map(|(l, f, _)| (l.clone(), f.clone()))
            .collect();
        let res = self
            .with_retries("finish", || self.store.finish(&items))
            .await;
        let mut events = Vec::new();
        let mut jobs: HashMap<JobId, JobStatus> = HashMap::new();
        match res {
            Ok(results) => {
                for ((_, _, tx), r) in fins.into_iter().zip(results) {
                    if let Ok(f) = &r {
                        let e = &f.execution;
                        events.push(Event::Execution {
                            execution_id: e.id,
                            job_id: e.job_id,
                            system_id: e.system_id,
                            status: e.status,
                        });
                        jobs.insert(e.job_id, f.job_status);
                    }
                    let _ = tx.send(r);
                }
            }
            Err(e) => {
                for (_, _, tx) in fins {
                    let _ = tx.send(Err(e.clone()));
                }
            }
        }
        events.extend(
            jobs.into_iter()
                .map(|(job_id, status)| Event::Job { job_id, status }),
        );
        self.publish(events).await;
    }

    async fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.bus.publish(events).await {
            tracing::warn!(error = %e, "publishing events failed");
        }
    }
}
