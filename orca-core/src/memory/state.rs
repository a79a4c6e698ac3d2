//! The state behind the mutex and the bookkeeping that keeps its indexes right.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use crate::ids::{AuditId, ExecutionId, JobId, SystemId, UserId};
use crate::model::{
    AuditRecord, Execution, ExecutionStatus, Grant, HostKey, Job, JobStatus, OutputChunk,
    StatusCounts, System, Timestamp, User,
};
use crate::{Error, Result, TokenRecord};

/// A job with its execution counts and executions (oldest first).
#[derive(Debug)]
pub(super) struct JobEntry {
    pub job: Job,
    pub counts: StatusCounts,
    pub executions: Vec<ExecutionId>,
}

/// An execution and its output (chunk `i` has `seq == i`).
#[derive(Debug)]
pub(super) struct ExecEntry {
    pub exec: Execution,
    pub output: Vec<OutputChunk>,
}

/// Everything a [`super::MemoryStore`] holds.
#[derive(Debug, Default)]
pub(super) struct State {
    pub systems: HashMap<SystemId, System>,
    /// Name → id, ordered by name.
    pub system_names: BTreeMap<String, SystemId>,
    pub host_keys: HashMap<SystemId, Vec<HostKey>>,
    pub jobs: HashMap<JobId, JobEntry>,
    /// Job ids newest first: `(created_at, id)` ascending, read in reverse.
    pub job_order: BTreeSet<(Timestamp, JobId)>,
    pub executions: HashMap<ExecutionId, ExecEntry>,
    /// Pending executions, oldest first.
    pub pending: BTreeSet<(Timestamp, ExecutionId)>,
    /// Running executions.
    pub running: HashSet<ExecutionId>,
    /// Running executions per system.
    pub running_per_system: HashMap<SystemId, u32>,
    /// Unfinished (pending or running) executions per system.
    pub unfinished_per_system: HashMap<SystemId, u32>,
    pub audit: Vec<AuditRecord>,
    pub audit_ids: HashSet<AuditId>,
    pub users: HashMap<UserId, User>,
    /// Username → id, ordered by name.
    pub user_names: BTreeMap<String, UserId>,
    pub grants: HashMap<UserId, Vec<Grant>>,
    pub tokens: HashMap<Uuid, TokenRecord>,
    pub token_hashes: HashMap<String, Uuid>,
    pub rate: HashMap<(String, Timestamp), u64>,
}

fn count_mut(c: &mut StatusCounts, s: ExecutionStatus) -> &mut u64 {
    match s {
        ExecutionStatus::Pending => &mut c.pending,
        ExecutionStatus::Running => &mut c.running,
        ExecutionStatus::Completed => &mut c.completed,
        ExecutionStatus::Failed => &mut c.failed,
        ExecutionStatus::Timeout => &mut c.timeout,
        ExecutionStatus::Cancelled => &mut c.cancelled,
        ExecutionStatus::Lost => &mut c.lost,
    }
}

fn dec(map: &mut HashMap<SystemId, u32>, id: SystemId) {
    if let Some(n) = map.get_mut(&id) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&id);
        }
    }
}

impl State {
    /// Refuse an audit record whose id is taken (checked before any mutation).
    pub fn check_audit(&self, audit: &AuditRecord) -> Result<()> {
        if self.audit_ids.contains(&audit.id) {
            return Err(Error::already_exists(format!(
                "audit record {} exists already; give each record a new id",
                audit.id
            )));
        }
        Ok(())
    }

    /// Append an audit record (after [`State::check_audit`]).
    pub fn push_audit(&mut self, audit: &AuditRecord) {
        self.audit_ids.insert(audit.id);
        self.audit.push(audit.clone());
    }

    /// Index a new execution (its job entry must exist).
    pub fn insert_execution(&mut self, exec: Execution) {
        self.index(&exec, true);
        self.executions.insert(
            exec.id,
            ExecEntry {
                exec,
                output: Vec::new(),
            },
        );
    }

    /// Add (`add = true`) or remove an execution's contribution to the indexes and its
    /// job's counts.
    fn index(&mut self, e: &Execution, add: bool) {
        match e.status {
            ExecutionStatus::Pending => {
                if add {
                    self.pending.insert((e.created_at, e.id));
                } else {
                    self.pending.remove(&(e.created_at, e.id));
                }
            }
            ExecutionStatus::Running => {
                if add {
                    self.running.insert(e.id);
                    *self.running_per_system.entry(e.system_id).or_default() += 1;
                } else {
                    self.running.remove(&e.id);
                    dec(&mut self.running_per_system, e.system_id);
                }
            }
            _ => {}
        }
        if !e.status.is_terminal() {
            if add {
                *self.unfinished_per_system.entry(e.system_id).or_default() += 1;
            } else {
                dec(&mut self.unfinished_per_system, e.system_id);
            }
        }
        if let Some(j) = self.jobs.get_mut(&e.job_id) {
            let n = count_mut(&mut j.counts, e.status);
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        }
    }

    /// Replace a stored execution with `new` (same id), keeping indexes, counts and the job's
    /// derived status right. Returns the job's status afterwards.
    pub fn put_execution(&mut self, new: Execution, now: Timestamp) -> Result<JobStatus> {
        let old = self
            .executions
            .get(&new.id)
            .map(|e| e.exec.clone())
            .ok_or_else(|| Error::not_found(format!("execution {} not found", new.id)))?;
        self.index(&old, false);
        self.index(&new, true);
        let job_id = new.job_id;
        if let Some(entry) = self.executions.get_mut(&new.id) {
            entry.exec = new;
        }
        Ok(self.refresh_job(job_id, now))
    }

    /// Recompute a job's status from its counts; stamps `updated_at` when it changes.
    pub fn refresh_job(&mut self, id: JobId, now: Timestamp) -> JobStatus {
        match self.jobs.get_mut(&id) {
            Some(j) => {
                let status = JobStatus::derive(&j.counts);
                if status != j.job.status {
                    j.job.status = status;
                    j.job.updated_at = now;
                }
                status
            }
            None => JobStatus::derive(&StatusCounts::default()),
        }
    }

    /// The execution `id`, or `NotFound`.
    pub fn exec(&self, id: ExecutionId) -> Result<&ExecEntry> {
        self.executions
            .get(&id)
            .ok_or_else(|| Error::not_found(format!("execution {id} not found")).with_execution(id))
    }

    /// The job `id`, or `NotFound`.
    pub fn job(&self, id: JobId) -> Result<&JobEntry> {
        self.jobs
            .get(&id)
            .ok_or_else(|| Error::not_found(format!("job {id} not found")).with_job(id))
    }

    /// The system `id`, or `NotFound`.
    pub fn system(&self, id: SystemId) -> Result<&System> {
        self.systems
            .get(&id)
            .ok_or_else(|| Error::not_found(format!("system {id} not found")).with_system(id))
    }

    /// The user `id`, or `NotFound`.
    pub fn user(&self, id: UserId) -> Result<&User> {
        self.users
            .get(&id)
            .ok_or_else(|| Error::not_found(format!("user {id} not found")))
    }
}

/// Skip `page.offset` items and take `page.limit`.
pub(super) fn paginate<T>(items: impl Iterator<Item = T>, page: crate::model::Page) -> Vec<T> {
    items
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(page.limit as usize)
        .collect()
}
