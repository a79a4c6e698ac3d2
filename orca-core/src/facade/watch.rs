//! Watching executions and jobs: replay what is stored, then follow live, with no gap and no
//! duplicate (chunks are numbered; anything missed on the bus is read back from the store).

use crate::actor::{Actor, AsActor};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::Orca;
use crate::Result;
use crate::bus::Event;
use crate::ids::{ExecutionId, JobId, SystemId};
use crate::model::{Execution, ExecutionStatus, JobStatus, OutputChunk, Page};
use crate::store::Store;

/// What a watcher sees.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// Output, in order per execution.
    Output(OutputChunk),
    /// An execution changed state (the last one for an execution is terminal).
    Execution {
        /// Execution.
        execution_id: ExecutionId,
        /// System.
        system_id: SystemId,
        /// State.
        status: ExecutionStatus,
    },
    /// The job changed state (job watches only; the last event of a job watch is terminal).
    Job {
        /// Job.
        job_id: JobId,
        /// State.
        status: JobStatus,
    },
}

/// A stream of watch events; it ends after the terminal state.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send>>;

const PAGE: u32 = 1000;
const RESYNC: Duration = Duration::from_secs(1);

struct Follower {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<Result<WatchEvent>>,
    next: HashMap<ExecutionId, u64>,
    status: HashMap<ExecutionId, ExecutionStatus>,
}

impl Follower {
    async fn emit(&self, e: WatchEvent) -> bool {
        self.tx.send(Ok(e)).await.is_ok()
    }

    /// Read stored output of `id` from its next seq up to `upto` (inclusive, or all).
    async fn catch_up(&mut self, id: ExecutionId, upto: Option<u64>) -> Result<bool> {
        loop {
            let from = *self.next.entry(id).or_insert(0);
            if upto.is_some_and(|u| from > u) {
                return Ok(true);
            }
            let chunks = self.store.read_output(id, from, PAGE).await?;
            let n = chunks.len();
            for c in chunks {
                if c.seq < from {
                    continue;
                }
                self.next.insert(id, c.seq + 1);
                if !self.emit(WatchEvent::Output(c)).await {
                    return Ok(false);
                }
            }
            if n < PAGE as usize {
                return Ok(true);
            }
        }
    }

    async fn inline(
        &mut self,
        id: ExecutionId,
        first: u64,
        last: u64,
        chunks: &[OutputChunk],
    ) -> Result<bool> {
        let next = *self.next.entry(id).or_insert(0);
        if last < next {
            return Ok(true);
        }
        if chunks.is_empty() || first > next {
            return self.catch_up(id, Some(last)).await;
        }
        for c in chunks {
            if c.seq == *self.next.get(&id).unwrap_or(&0) {
                self.next.insert(id, c.seq + 1);
                if !self.emit(WatchEvent::Output(c.clone())).await {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Emit a status change once per (execution, status).
    async fn status(&mut self, e: &Execution) -> bool {
        if self.status.get(&e.id) == Some(&e.status) {
            return true;
        }
        self.status.insert(e.id, e.status);
        self.emit(WatchEvent::Execution {
            execution_id: e.id,
            system_id: e.system_id,
            status: e.status,
        })
        .await
    }
}

impl Orca {
    /// Follow one execution: its stored output, then live output and state changes, ending
    /// after its terminal state.
    pub async fn watch(&self, p: &(impl AsActor + ?Sized), id: ExecutionId) -> Result<WatchStream> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        self.get_execution(p, id).await?;
        let mut rx = self.bus.subscribe();
        let (tx, out) = mpsc::channel(256);
        let mut f = Follower {
            store: self.store.clone(),
            tx,
            next: HashMap::new(),
            status: HashMap::new(),
        };
        tokio::spawn(async move {
            let r: Result<()> = async {
                loop {
                    if !f.catch_up(id, None).await? {
                        return Ok(());
                    }
                    let e = f.store.get_execution(id).await?;
                    if e.status.is_terminal() {
                        // Output is written before the finish: read the rest, then end.
                        f.catch_up(id, None).await?;
                        f.status(&e).await;
                        return Ok(());
                    }
                    if !f.status(&e).await {
                        return Ok(());
                    }
                    // Follow the bus until something says to re-read the store.
                    loop {
                        match tokio::time::timeout(RESYNC, rx.recv()).await {
                            Ok(Ok(ev)) => match ev.as_ref() {
                                Event::Output {
                                    execution_id,
                                    first_seq,
                                    last_seq,
                                    chunks,
                                    ..
                                } if *execution_id == id
                                    && !f.inline(id, *first_seq, *last_seq, chunks).await? =>
                                {
                                    return Ok(());
                                }
                                Event::Execution { execution_id, .. } if *execution_id == id => {
                                    break;
                                }
                                _ => {}
                            },
                            Ok(Err(RecvError::Lagged(_))) | Err(_) => break,
                            Ok(Err(RecvError::Closed)) => {
                                tokio::time::sleep(RESYNC).await;
                                break;
                            }
                        }
                    }
                }
            }
            .await;
            if let Err(e) = r {
                let _ = f.tx.send(Err(e)).await;
            }
        });
        Ok(Box::pin(tokio_stream_from(out)))
    }

    /// Follow a whole job: the stored output and states of all its executions, then live
    /// events, ending after the job's terminal state.
    /// A non-admin follows only the executions on systems in their scope.
    pub async fn watch_job(&self, p: &(impl AsActor + ?Sized), id: JobId) -> Result<WatchStream> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let only = self.watchable(p, id).await?;
        let shown = move |e: &ExecutionId| only.as_ref().is_none_or(|s| s.contains(e));
        let mut rx = self.bus.subscribe();
        let (tx, out) = mpsc::channel(256);
        let mut f = Follower {
            store: self.store.clone(),
            tx,
            next: HashMap::new(),
            status: HashMap::new(),
        };
        tokio::spawn(async move {
            let r: Result<()> = async {
                let mut job_status: Option<JobStatus> = None;
                // Executions whose terminal state was seen and whose output was read after it.
                let mut done = std::collections::HashSet::new();
                let mut full_sync = true;
                let mut quiet = 0u32;
                loop {
                    if full_sync {
                        full_sync = false;
                        let mut offset = 0;
                        loop {
                            let execs = f
                                .store
                                .list_executions(
                                    id,
                                    Page {
                                        offset,
                                        limit: PAGE,
                                    },
                                )
                                .await?;
                            let n = execs.len();
                            for e in &execs {
                                if done.contains(&e.id) || !shown(&e.id) {
                                    continue;
                                }
                                if !f.catch_up(e.id, None).await? || !f.status(e).await {
                                    return Ok(());
                                }
                                if e.status.is_terminal() {
                                    done.insert(e.id);
                                }
                            }
                            if n < PAGE as usize {
                                break;
                            }
                            offset += n as u64;
                        }
                    }
                    let job = f.store.get_job(id).await?;
                    if job_status != Some(job.status) {
                        if job.status.is_terminal() && !full_sync_done_after_terminal(&done, &f) {
                            full_sync = true;
                            job_status = Some(JobStatus::Running);
                            continue;
                        }
                        job_status = Some(job.status);
                        if !f
                            .emit(WatchEvent::Job {
                                job_id: id,
                                status: job.status,
                            })
                            .await
                        {
                            return Ok(());
                        }
                    }
                    if job.status.is_terminal() {
                        return Ok(());
                    }
                    loop {
                        match tokio::time::timeout(RESYNC, rx.recv()).await {
                            Ok(Ok(ev)) => {
                                if ev.job_id() != Some(id)
                                    || ev.execution_id().is_some_and(|e| !shown(&e))
                                {
                                    continue;
                                }
                                match ev.as_ref() {
                                    Event::Output {
                                        execution_id,
                                        first_seq,
                                        last_seq,
                                        chunks,
                                        ..
                                    } => {
                                        if !f
                                            .inline(*execution_id, *first_seq, *last_seq, chunks)
                                            .await?
                                        {
                                            return Ok(());
                                        }
                                    }
                                    Event::Execution { execution_id, .. } => {
                                        let e = f.store.get_execution(*execution_id).await?;
                                        if e.status.is_terminal() {
                                            if !f.catch_up(e.id, None).await? {
                                                return Ok(());
                                            }
                                            done.insert(e.id);
                                        }
                                        if !f.status(&e).await {
                                            return Ok(());
                                        }
                                    }
                                    Event::Job { .. } => break,
                                    // Not about a job: skipped above.
                                    Event::AuthChanged { .. } => {}
                                }
                            }
                            Ok(Err(RecvError::Lagged(_))) => {
                                full_sync = true;
                                break;
                            }
                            Err(_) => {
                                quiet += 1;
                                if quiet.is_multiple_of(10) {
                                    full_sync = true;
                                }
                                break;
                            }
                            Ok(Err(RecvError::Closed)) => {
                                tokio::time::sleep(RESYNC).await;
                                full_sync = true;
                                break;
                            }
                        }
                    }
                }
            }
            .await;
            if let Err(e) = r {
                let _ = f.tx.send(Err(e)).await;
            }
        });
        Ok(Box::pin(tokio_stream_from(out)))
    }
}

/// Whether every execution the follower knows of has been read after its terminal state.
fn full_sync_done_after_terminal(
    done: &std::collections::HashSet<ExecutionId>,
    f: &Follower,
) -> bool {
    f.status.keys().all(|id| done.contains(id))
}

fn tokio_stream_from<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
