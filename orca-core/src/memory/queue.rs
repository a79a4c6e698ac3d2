//! The work queue: claim, heartbeat, output and finish under a lease, rescue.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use super::MemoryStore;
use super::state::State;
use crate::clock::add;
use crate::ids::{ExecutionId, JobId, LeaseToken, SystemId};
use crate::model::{Execution, ExecutionStatus, Finish, Lease, Timestamp, micros};
use crate::{
    Claim, ClaimRequest, Error, Finished, HeartbeatReport, OutputBatch, QueueStore, Result,
};

/// Why a rescued execution ended `lost`.
const LOST_REASON: &str =
    "the worker stopped renewing its lease; the command's outcome on the host is unknown";
/// Why a rescued execution was re-queued.
const REQUEUED_REASON: &str = "the worker stopped renewing its lease before any output; re-queued";

impl State {
    pub fn claim(&mut self, req: &ClaimRequest, now: Timestamp) -> Result<Vec<Claim>> {
        let mut picked = Vec::new();
        let mut more_per_job: HashMap<JobId, u64> = HashMap::new();
        let mut more_per_system: HashMap<SystemId, u32> = HashMap::new();
        for (_, id) in &self.pending {
            if picked.len() >= req.limit as usize {
                break;
            }
            let Some(entry) = self.executions.get(id) else {
                continue;
            };
            let e = &entry.exec;
            if e.not_before > now || !self.systems.contains_key(&e.system_id) {
                continue;
            }
            let Some(job) = self.jobs.get(&e.job_id) else {
                continue;
            };
            let job_more = more_per_job.get(&e.job_id).copied().unwrap_or(0);
            if let Some(limit) = job.job.options.concurrency
                && job.counts.running + job_more >= u64::from(limit)
            {
                continue;
            }
            let sys_more = more_per_system.get(&e.system_id).copied().unwrap_or(0);
            if let Some(limit) = req.per_system {
                let running = self
                    .running_per_system
                    .get(&e.system_id)
                    .copied()
                    .unwrap_or(0);
                if running + sys_more >= limit {
                    continue;
                }
            }
            *more_per_job.entry(e.job_id).or_default() += 1;
            *more_per_system.entry(e.system_id).or_default() += 1;
            picked.push(*id);
        }
        let expires_at = micros(add(now, req.lease_for));
        let mut leased = Vec::with_capacity(picked.len());
        for id in picked {
            let mut e = self.exec(id)?.exec.clone();
            ExecutionStatus::Pending.check_transition(ExecutionStatus::Running, id)?;
            let lease = Lease {
                execution_id: id,
                owner: req.worker.clone(),
                token: LeaseToken::new(),
                expires_at,
            };
            e.status = ExecutionStatus::Running;
            e.started_at = Some(now);
            e.lease = Some(lease.clone());
            self.put_execution(e, now)?;
            leased.push((id, lease));
        }
        // Build the answers after all claims, so every job carries its final status.
        let mut claims = Vec::with_capacity(leased.len());
        for (id, lease) in leased {
            let entry = self.exec(id)?;
            claims.push(Claim {
                execution: entry.exec.clone(),
                lease,
                job: self.job(entry.exec.job_id)?.job.clone(),
                system: self.system(entry.exec.system_id)?.clone(),
                next_seq: entry.output.len() as u64,
            });
        }
        Ok(claims)
    }

    /// The execution held under `lease`, or `LeaseLost`.
    fn held(&self, lease: &Lease) -> Result<&Execution> {
        match self.executions.get(&lease.execution_id) {
            Some(entry)
                if entry.exec.status == ExecutionStatus::Running
                    && entry.exec.lease.as_ref().map(|l| l.token) == Some(lease.token) =>
            {
                Ok(&entry.exec)
            }
            _ => Err(Error::lease_lost(lease.execution_id)),
        }
    }

    pub fn heartbeat(
        &mut self,
        leases: &[Lease],
        extend: Duration,
        now: Timestamp,
    ) -> HeartbeatReport {
        let mut report = HeartbeatReport::default();
        let expires_at = micros(add(now, extend));
        for lease in leases {
            let cancel = match self.held(lease) {
                Ok(e) => e.cancel_requested,
                Err(_) => {
                    report.lost.push(lease.execution_id);
                    continue;
                }
            };
            if let Some(entry) = self.executions.get_mut(&lease.execution_id)
                && let Some(l) = entry.exec.lease.as_mut()
            {
                l.expires_at = expires_at;
                report.renewed.push(l.clone());
            }
            if cancel {
                report.cancel_requested.push(lease.execution_id);
            }
        }
        report
    }

    pub fn append_one(&mut self, batch: &OutputBatch) -> Result<()> {
        let id = batch.lease.execution_id;
        self.held(&batch.lease)?;
        let next = self.exec(id)?.output.len() as u64;
        for (i, c) in batch.chunks.iter().enumerate() {
            if c.execution_id != id {
                return Err(Error::invalid(format!(
                    "an output chunk of execution {} was written under the lease of {id}",
                    c.execution_id
                ))
                .with_execution(id));
            }
            let want = next + i as u64;
            if c.seq != want {
                return Err(Error::conflict(format!(
                    "output chunk seq {} does not continue execution {id}'s output: the next \
                     seq is {want}",
                    c.seq
                ))
                .with_execution(id));
            }
        }
        if let Some(entry) = self.executions.get_mut(&id) {
            let bytes: u64 = batch.chunks.iter().map(|c| c.data.len() as u64).sum();
            entry.output.extend(batch.chunks.iter().cloned());
            entry.exec.output_bytes += bytes;
        }
        Ok(())
    }

    pub fn finish_one(&mut self, lease: &Lease, fin: &Finish, now: Timestamp) -> Result<Finished> {
        let mut e = self.held(lease)?.clone();
        e.status.check_transition(fin.status, e.id)?;
        e.status = fin.status;
        e.exit_code = fin.exit_code;
        e.signal = fin.signal.clone();
        e.error = fin.error.clone();
        e.output_dropped += fin.output_dropped;
        e.lease = None;
        if fin.status == ExecutionStatus::Pending {
            e.attempt += 1;
            e.not_before = micros(fin.retry_at.unwrap_or(now));
            e.completed_at = None;
        } else {
            e.completed_at = Some(now);
        }
        let job_status = self.put_execution(e.clone(), now)?;
        Ok(Finished {
            execution: e,
            job_status,
        })
    }

    pub fn rescue_expired(&mut self, limit: u32, now: Timestamp) -> Result<Vec<Execution>> {
        let mut expired: Vec<(Timestamp, ExecutionId)> = self
            .running
            .iter()
            .filter_map(|id| self.executions.get(id))
            .filter_map(|entry| {
                entry
                    .exec
                    .lease
                    .as_ref()
                    .map(|l| (l.expires_at, entry.exec.id))
            })
            .filter(|(at, _)| *at <= now)
            .collect();
        expired.sort();
        expired.truncate(limit as usize);
        let mut out = Vec::with_capacity(expired.len());
        for (_, id) in expired {
            let mut e = self.exec(id)?.exec.clone();
            let opts = &self.job(e.job_id)?.job.options;
            let requeue = opts.requeue_lost
                && e.attempt <= opts.retries
                && e.output_bytes == 0
                && !e.cancel_requested;
            let to = if requeue {
                ExecutionStatus::Pending
            } else {
                ExecutionStatus::Lost
            };
            e.status.check_transition(to, id)?;
            e.status = to;
            e.lease = None;
            if requeue {
                e.attempt += 1;
                e.not_before = now;
                e.error = Some(REQUEUED_REASON.into());
            } else {
                e.completed_at = Some(now);
                e.error = Some(LOST_REASON.into());
            }
            self.put_execution(e.clone(), now)?;
            out.push(e);
        }
        Ok(out)
    }
}

#[async_trait]
impl QueueStore for MemoryStore {
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        let now = self.now();
        self.lock().claim(request, now)
    }
    async fn heartbeat(&self, leases: &[Lease], extend: Duration) -> Result<HeartbeatReport> {
        let now = self.now();
        Ok(self.lock().heartbeat(leases, extend, now))
    }
    async fn append_output(&self, batches: &[OutputBatch]) -> Result<Vec<Result<()>>> {
        let mut s = self.lock();
        Ok(batches.iter().map(|b| s.append_one(b)).collect())
    }
    async fn finish(&self, items: &[(Lease, Finish)]) -> Result<Vec<Result<Finished>>> {
        let now = self.now();
        let mut s = self.lock();
        Ok(items
            .iter()
            .map(|(lease, fin)| s.finish_one(lease, fin, now))
            .collect())
    }
    async fn rescue_expired(&self, limit: u32) -> Result<Vec<Execution>> {
        let now = self.now();
        self.lock().rescue_expired(limit, now)
    }
}
