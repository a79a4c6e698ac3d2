//! Jobs, executions and cancel.

use async_trait::async_trait;

use super::MemoryStore;
use super::state::{JobEntry, State, paginate};
use crate::ids::{ExecutionId, JobId};
use crate::model::{
    AuditRecord, Execution, ExecutionStatus, Job, JobFilter, Page, StatusCounts, Timestamp,
};
use crate::{CancelReport, CancelTarget, Error, JobStore, Result};

impl State {
    pub fn create_job(
        &mut self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
        now: Timestamp,
    ) -> Result<()> {
        self.check_audit(audit)?;
        if self.jobs.contains_key(&job.id) {
            return Err(Error::already_exists(format!(
                "job {} exists already",
                job.id
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for e in executions {
            if e.job_id != job.id {
                return Err(Error::invalid(format!(
                    "execution {} belongs to job {}, not {}",
                    e.id, e.job_id, job.id
                )));
            }
            if e.status != ExecutionStatus::Pending || e.lease.is_some() {
                return Err(Error::invalid(format!(
                    "execution {} must be created pending and without a lease",
                    e.id
                )));
            }
            if self.executions.contains_key(&e.id) || !seen.insert(e.id) {
                return Err(Error::already_exists(format!(
                    "execution {} exists already",
                    e.id
                )));
            }
            self.system(e.system_id)?;
        }
        let mut order: Vec<&Execution> = executions.iter().collect();
        order.sort_by_key(|e| (e.created_at, e.id));
        self.jobs.insert(
            job.id,
            JobEntry {
                job: job.clone(),
                counts: Default::default(),
                executions: order.iter().map(|e| e.id).collect(),
            },
        );
        self.job_order.insert((job.created_at, job.id));
        for e in executions {
            self.insert_execution(e.clone());
        }
        self.refresh_job(job.id, now);
        // The stored job keeps the given `updated_at` unless its status had to change.
        if let Some(j) = self.jobs.get_mut(&job.id)
            && j.job.status == job.status
        {
            j.job.updated_at = job.updated_at;
        }
        self.push_audit(audit);
        Ok(())
    }

    pub fn list_jobs(&self, filter: &JobFilter, page: Page) -> Vec<Job> {
        let it = self
            .job_order
            .iter()
            .rev()
            .filter_map(|(_, id)| self.jobs.get(id))
            .map(|j| &j.job)
            .filter(|j| filter.matches(j))
            .cloned();
        paginate(it, page)
    }

    pub fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        let j = self.job(job)?;
        let it = j
            .executions
            .iter()
            .filter_map(|id| self.executions.get(id))
            .map(|e| e.exec.clone());
        Ok(paginate(it, page))
    }

    pub fn cancel(
        &mut self,
        target: CancelTarget,
        audit: &AuditRecord,
        now: Timestamp,
    ) -> Result<CancelReport> {
        self.check_audit(audit)?;
        let ids: Vec<ExecutionId> = match target {
            CancelTarget::Job(id) => self.job(id)?.executions.clone(),
            CancelTarget::Execution(id) => vec![self.exec(id)?.exec.id],
        };
        let mut report = CancelReport::default();
        for id in ids {
            let mut e = self.exec(id)?.exec.clone();
            match e.status {
                ExecutionStatus::Pending => {
                    e.status = ExecutionStatus::Cancelled;
                    e.completed_at = Some(now);
                    self.put_execution(e, now)?;
                    report.cancelled.push(id);
                }
                ExecutionStatus::Running => {
                    e.cancel_requested = true;
                    self.put_execution(e, now)?;
                    report.signalled.push(id);
                }
                _ => {}
            }
        }
        self.push_audit(audit);
        Ok(report)
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn create_job(
        &self,
        job: &Job,
        executions: &[Execution],
        audit: &AuditRecord,
    ) -> Result<()> {
        let now = self.now();
        self.lock().create_job(job, executions, audit, now)
    }
    async fn get_job(&self, id: JobId) -> Result<Job> {
        self.lock().job(id).map(|j| j.job.clone())
    }
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Vec<Job>> {
        Ok(self.lock().list_jobs(filter, page))
    }
    async fn job_counts(&self, id: JobId) -> Result<StatusCounts> {
        self.lock().job(id).map(|j| j.counts)
    }
    async fn list_executions(&self, job: JobId, page: Page) -> Result<Vec<Execution>> {
        self.lock().list_executions(job, page)
    }
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution> {
        self.lock().exec(id).map(|e| e.exec.clone())
    }
    async fn cancel(&self, target: CancelTarget, audit: &AuditRecord) -> Result<CancelReport> {
        let now = self.now();
        self.lock().cancel(target, audit, now)
    }
}
