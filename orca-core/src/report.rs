//! What a frontend shows of a job: its result per system ([`Orca::job_report`]) and its output
//! as whole lines with system names, live ([`Orca::watch_job_lines`]).
//!
//! Output chunks are pieces of bytes as the connector read them, not lines; a [`LineSplitter`]
//! joins and splits them per execution and stream, so every frontend cuts lines the same way.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;

use futures::StreamExt;

use crate::facade::WatchEvent;
use crate::ids::{ExecutionId, JobId, SystemId};
use crate::model::{
    Execution, ExecutionStatus, Job, JobStatus, OutputChunk, Page, Principal, Stream,
};
use crate::{ErrorKind, Orca, Result};

/// Longest line kept whole; a longer one is cut into pieces of this size.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Joins output chunks into lines, per execution and stream. Lines lose their `\n` (and a
/// `\r` before it) and are decoded as UTF-8, invalid bytes replaced by U+FFFD.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: HashMap<(ExecutionId, Stream), Vec<u8>>,
}

fn text(mut line: &[u8]) -> String {
    if let Some(l) = line.strip_suffix(b"\n") {
        line = l.strip_suffix(b"\r").unwrap_or(l);
    }
    String::from_utf8_lossy(line).into_owned()
}

impl LineSplitter {
    /// An empty splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The complete lines `chunk` ends (lines still open are kept for later chunks).
    pub fn push(&mut self, chunk: &OutputChunk) -> Vec<(Stream, String)> {
        let buf = self
            .pending
            .entry((chunk.execution_id, chunk.stream))
            .or_default();
        buf.extend_from_slice(&chunk.data);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(i) = buf[start..].iter().position(|b| *b == b'\n') {
            out.push((chunk.stream, text(&buf[start..start + i + 1])));
            start += i + 1;
        }
        while buf.len() - start > MAX_LINE_BYTES {
            out.push((chunk.stream, text(&buf[start..start + MAX_LINE_BYTES])));
            start += MAX_LINE_BYTES;
        }
        buf.drain(..start);
        out
    }

    /// The unterminated last lines of an execution (stdout first), once it has ended.
    pub fn finish(&mut self, id: ExecutionId) -> Vec<(Stream, String)> {
        let mut out = Vec::new();
        for s in [Stream::Stdout, Stream::Stderr] {
            if let Some(buf) = self.pending.remove(&(id, s))
                && !buf.is_empty()
            {
                out.push((s, text(&buf)));
            }
        }
        out
    }

    /// Executions with unterminated lines.
    fn open_executions(&self) -> Vec<ExecutionId> {
        let mut v: Vec<_> = self.pending.keys().map(|(e, _)| *e).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What a line watcher sees.
#[derive(Debug, Clone, PartialEq)]
pub enum LineEvent {
    /// A line of output, in order per execution and stream.
    Line {
        /// The execution.
        execution_id: ExecutionId,
        /// Its system.
        system_id: SystemId,
        /// The system's name (its id if the system was removed since).
        system: String,
        /// stdout or stderr.
        stream: Stream,
        /// The line, without its end of line.
        text: String,
    },
    /// An execution changed state (its remaining output comes before its terminal state).
    Execution {
        /// The execution.
        execution_id: ExecutionId,
        /// Its system.
        system_id: SystemId,
        /// The system's name.
        system: String,
        /// The state.
        status: ExecutionStatus,
    },
    /// The job changed state; the last event is the job's terminal state.
    Job {
        /// The job.
        job_id: JobId,
        /// The state.
        status: JobStatus,
    },
}

/// A stream of line events; it ends after the job's terminal state.
pub type LineStream = Pin<Box<dyn futures::Stream<Item = Result<LineEvent>> + Send>>;

/// One execution of a job with its whole stored output.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionReport {
    /// The execution (status, exit code, signal, error, times).
    pub execution: Execution,
    /// The system's name (its id if the system was removed since).
    pub system: String,
    /// Standard output, as stored (the middle is missing if the output cap dropped bytes).
    pub stdout: Vec<u8>,
    /// Standard error, as stored.
    pub stderr: Vec<u8>,
}

/// A job and its executions with their output.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    /// The job.
    pub job: Job,
    /// Its executions, oldest first.
    pub executions: Vec<ExecutionReport>,
}

struct Follow {
    events: crate::facade::WatchStream,
    names: HashMap<ExecutionId, (SystemId, String)>,
    lines: LineSplitter,
    queue: VecDeque<Result<LineEvent>>,
    ended: bool,
}

impl Follow {
    fn name(&self, id: ExecutionId, system_id: SystemId) -> String {
        self.names
            .get(&id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| system_id.to_string())
    }

    fn lines(&mut self, id: ExecutionId, lines: Vec<(Stream, String)>) {
        let (system_id, system) = self
            .names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| (SystemId(uuid::Uuid::nil()), id.to_string()));
        for (stream, text) in lines {
            self.queue.push_back(Ok(LineEvent::Line {
                execution_id: id,
                system_id,
                system: system.clone(),
                stream,
                text,
            }));
        }
    }

    fn take(&mut self, ev: WatchEvent) {
        match ev {
            WatchEvent::Output(chunk) => {
                let l = self.lines.push(&chunk);
                self.lines(chunk.execution_id, l);
            }
            WatchEvent::Execution {
                execution_id,
                system_id,
                status,
            } => {
                if status.is_terminal() {
                    let l = self.lines.finish(execution_id);
                    self.lines(execution_id, l);
                }
                let system = self.name(execution_id, system_id);
                self.queue.push_back(Ok(LineEvent::Execution {
                    execution_id,
                    system_id,
                    system,
                    status,
                }));
            }
            WatchEvent::Job { job_id, status } => {
                self.queue.push_back(Ok(LineEvent::Job { job_id, status }));
            }
        }
    }

    async fn next(mut self) -> Option<(Result<LineEvent>, Self)> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some((ev, self));
            }
            if self.ended {
                return None;
            }
            match self.events.next().await {
                Some(Ok(ev)) => self.take(ev),
                Some(Err(e)) => {
                    self.ended = true;
                    self.queue.push_back(Err(e));
                }
                None => {
                    self.ended = true;
                    for id in self.lines.open_executions() {
                        let l = self.lines.finish(id);
                        self.lines(id, l);
                    }
                }
            }
        }
    }
}

impl Orca {
    /// The system (id and name) of each execution of a job.
    pub async fn job_systems(
        &self,
        p: &Principal,
        id: JobId,
    ) -> Result<HashMap<ExecutionId, (SystemId, String)>> {
        let mut names: HashMap<SystemId, String> = HashMap::new();
        let mut out = HashMap::new();
        let mut offset = 0;
        loop {
            let page = Page {
                offset,
                limit: Page::MAX_LIMIT,
            };
            let execs = self.job_executions(p, id, page).await?;
            for e in &execs {
                let name = match names.entry(e.system_id) {
                    Entry::Occupied(o) => o.get().clone(),
                    Entry::Vacant(v) => {
                        let name = match self.get_system(p, &e.system_id.to_string()).await {
                            Ok(s) => s.name,
                            Err(err) if err.kind() == ErrorKind::NotFound => {
                                e.system_id.to_string()
                            }
                            Err(err) => return Err(err),
                        };
                        v.insert(name).clone()
                    }
                };
                out.insert(e.id, (e.system_id, name));
            }
            if execs.len() < Page::MAX_LIMIT as usize {
                return Ok(out);
            }
            offset += execs.len() as u64;
        }
    }

    /// Follow a job as lines: [`Orca::watch_job`] with output cut into lines and system names
    /// attached. An execution's last unterminated line comes before its terminal state.
    pub async fn watch_job_lines(&self, p: &Principal, id: JobId) -> Result<LineStream> {
        let names = self.job_systems(p, id).await?;
        let events = self.watch_job(p, id).await?;
        let follow = Follow {
            events,
            names,
            lines: LineSplitter::new(),
            queue: VecDeque::new(),
            ended: false,
        };
        Ok(Box::pin(futures::stream::unfold(follow, Follow::next)))
    }

    /// A job, its executions and their whole stored output, as it is now (call
    /// [`Orca::wait_job`] first for a final result).
    pub async fn job_report(&self, p: &Principal, id: JobId) -> Result<JobReport> {
        let job = self.get_job(p, id).await?;
        let systems = self.job_systems(p, id).await?;
        let mut executions = Vec::new();
        let mut offset = 0;
        loop {
            let page = Page {
                offset,
                limit: Page::MAX_LIMIT,
            };
            let execs = self.job_executions(p, id, page).await?;
            let n = execs.len();
            for e in execs {
                let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
                let mut from = 0;
                loop {
                    let chunks = self.read_output(p, e.id, from, Page::MAX_LIMIT).await?;
                    for c in &chunks {
                        match c.stream {
                            Stream::Stdout => stdout.extend_from_slice(&c.data),
                            Stream::Stderr => stderr.extend_from_slice(&c.data),
                        }
                        from = c.seq + 1;
                    }
                    if chunks.len() < Page::MAX_LIMIT as usize {
                        break;
                    }
                }
                let system = systems
                    .get(&e.id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_else(|| e.system_id.to_string());
                executions.push(ExecutionReport {
                    execution: e,
                    system,
                    stdout,
                    stderr,
                });
            }
            if n < Page::MAX_LIMIT as usize {
                break;
            }
            offset += n as u64;
        }
        Ok(JobReport { job, executions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: ExecutionId, seq: u64, stream: Stream, data: &[u8]) -> OutputChunk {
        OutputChunk {
            execution_id: id,
            seq,
            stream,
            data: bytes::Bytes::copy_from_slice(data),
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn lines_join_across_chunks_per_stream() {
        let a = ExecutionId::new();
        let b = ExecutionId::new();
        let mut s = LineSplitter::new();
        assert!(s.push(&chunk(a, 0, Stream::Stdout, b"hel")).is_empty());
        assert!(s.push(&chunk(a, 1, Stream::Stderr, b"oops")).is_empty());
        assert!(s.push(&chunk(b, 0, Stream::Stdout, b"other\n")).len() == 1);
        let l = s.push(&chunk(a, 2, Stream::Stdout, b"lo\r\nworld\n\nlast"));
        assert_eq!(
            l,
            vec![
                (Stream::Stdout, "hello".to_string()),
                (Stream::Stdout, "world".to_string()),
                (Stream::Stdout, String::new()),
            ]
        );
        assert_eq!(
            s.finish(a),
            vec![
                (Stream::Stdout, "last".to_string()),
                (Stream::Stderr, "oops".to_string()),
            ]
        );
        assert!(s.finish(a).is_empty());
    }

    #[test]
    fn utf8_split_between_chunks_and_long_lines() {
        let a = ExecutionId::new();
        let mut s = LineSplitter::new();
        let snow = "☃".as_bytes();
        assert!(s.push(&chunk(a, 0, Stream::Stdout, &snow[..1])).is_empty());
        let l = s.push(&chunk(a, 1, Stream::Stdout, &[&snow[1..], b"\n"].concat()));
        assert_eq!(l, vec![(Stream::Stdout, "☃".to_string())]);
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 5];
        let l = s.push(&chunk(a, 2, Stream::Stdout, &long));
        assert_eq!(l.len(), 2);
        assert_eq!(s.finish(a), vec![(Stream::Stdout, "xxxxx".to_string())]);
    }
}
