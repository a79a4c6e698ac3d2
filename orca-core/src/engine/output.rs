//! Per-execution output pump: masks secrets, applies the output cap (keep head and tail, count
//! what is dropped), numbers chunks and hands them to the writer in batches.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::writer::WriteMsg;
use crate::clock::Clock;
use crate::connector::OutputReceiver;
use crate::ids::JobId;
use crate::mask::Masker;
use crate::model::{Lease, OutputChunk, Stream};
use crate::store::OutputBatch;

/// Largest chunk the pump writes.
const MAX_CHUNK: usize = 64 * 1024;

pub(crate) struct Pump {
    pub job_id: JobId,
    pub lease: Lease,
    pub next_seq: u64,
    pub masks: [Masker; 2],
    /// Bytes kept from the start (0: unlimited).
    pub head_limit: u64,
    /// Bytes kept from the end, once the head is full.
    pub tail_limit: u64,
    pub flush_interval: Duration,
    pub flush_bytes: usize,
    pub writer: mpsc::Sender<WriteMsg>,
    pub clock: Arc<dyn Clock>,
}

/// What the pump did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PumpReport {
    pub dropped: u64,
}

struct State {
    kept: u64,
    dropped: u64,
    pending: Vec<(Stream, BytesMut)>,
    pending_bytes: usize,
    tail: VecDeque<(Stream, Bytes)>,
    tail_bytes: u64,
}

fn idx(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Pump {
    pub async fn run(mut self, mut rx: OutputReceiver) -> PumpReport {
        let mut st = State {
            kept: 0,
            dropped: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            tail: VecDeque::new(),
            tail_bytes: 0,
        };
        let mut deadline: Option<Instant> = None;
        loop {
            let msg = match deadline {
                Some(d) => tokio::select! {
                    m = rx.recv() => m,
                    _ = tokio::time::sleep_until(d) => {
                        self.flush(&mut st).await;
                        deadline = None;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some((stream, data)) = msg else { break };
            let masked = self.masks[idx(stream)].push(&data);
            self.accept(&mut st, stream, masked);
            if st.pending_bytes >= self.flush_bytes {
                self.flush(&mut st).await;
                deadline = None;
            } else if deadline.is_none() && !st.pending.is_empty() {
                deadline = Some(Instant::now() + self.flush_interval);
            }
        }
        for s in [Stream::Stdout, Stream::Stderr] {
            let rest = self.masks[idx(s)].finish();
            self.accept(&mut st, s, rest);
        }
        if st.dropped > 0 {
            let note = format!(
                "\n[orca: {} bytes of output were dropped here]\n",
                st.dropped
            );
            push_pending(&mut st, Stream::Stderr, note.as_bytes());
            while let Some((s, b)) = st.tail.pop_front() {
                push_pending(&mut st, s, &b);
            }
        }
        self.flush(&mut st).await;
        PumpReport {
            dropped: st.dropped,
        }
    }

    fn accept(&self, st: &mut State, stream: Stream, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        if self.head_limit == 0 {
            push_pending(st, stream, &data);
            return;
        }
        let room = self.head_limit.saturating_sub(st.kept) as usize;
        let head = room.min(data.len());
        if head > 0 {
            push_pending(st, stream, &data[..head]);
            st.kept += head as u64;
        }
        if head < data.len() {
            let rest = Bytes::copy_from_slice(&data[head..]);
            st.tail_bytes += rest.len() as u64;
            st.tail.push_back((stream, rest));
            while st.tail_bytes > self.tail_limit {
                let over = (st.tail_bytes - self.tail_limit) as usize;
                let Some((s, front)) = st.tail.pop_front() else {
                    break;
                };
                if front.len() > over {
                    st.tail.push_front((s, front.slice(over..)));
                    st.tail_bytes -= over as u64;
                    st.dropped += over as u64;
                } else {
                    st.tail_bytes -= front.len() as u64;
                    st.dropped += front.len() as u64;
                }
            }
        }
    }

    async fn flush(&mut self, st: &mut State) {
        if st.pending.is_empty() {
            return;
        }
        let at = self.clock.now();
        let chunks: Vec<OutputChunk> = st
            .pending
            .drain(..)
            .map(|(stream, data)| {
                let c = OutputChunk {
                    execution_id: self.lease.execution_id,
                    seq: self.next_seq,
                    stream,
                    data: data.freeze(),
                    at,
                };
                self.next_seq += 1;
                c
            })
            .collect();
        st.pending_bytes = 0;
        let batch = OutputBatch {
            lease: self.lease.clone(),
            chunks,
        };
        // If the writer is gone the engine is stopping; nothing more to do.
        let _ = self.writer.send(WriteMsg::Output(self.job_id, batch)).await;
    }
}

fn push_pending(st: &mut State, stream: Stream, mut data: &[u8]) {
    st.pending_bytes += data.len();
    while !data.is_empty() {
        if let Some((s, last)) = st.pending.last_mut()
            && *s == stream
            && last.len() < MAX_CHUNK
        {
            let n = (MAX_CHUNK - last.len()).min(data.len());
            last.extend_from_slice(&data[..n]);
            data = &data[n..];
            continue;
        }
        let n = MAX_CHUNK.min(data.len());
        st.pending.push((stream, BytesMut::from(&data[..n])));
        data = &data[n..];
    }
}
