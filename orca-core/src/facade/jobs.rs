//! Job and execution operations.

use std::collections::{BTreeSet, HashMap};

use super::Orca;
use crate::executor::Executor;
use crate::ids::{ExecutionId, JobId, SystemId};
use crate::model::{
    Execution, ExecutionStatus, Job, JobFilter, JobSpec, JobStatus, OutputChunk, Page, Principal,
    Role, Scope, Shell, System, SystemFilter, SystemType, Targets,
};
use crate::policy::{self, Action, Decision};
use crate::store::{CancelReport, CancelTarget};
use crate::{Error, ErrorKind, Result};

/// A submitted job and its executions.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The job.
    pub job: Job,
    /// One execution per target system.
    pub executions: Vec<Execution>,
}

/// Largest command accepted.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

fn sees_all(p: &Principal) -> bool {
    p.role == Role::Admin || p.scopes.contains(&Scope::All)
}

impl Orca {
    /// Submit a job: validate, resolve the targets to the systems the principal may run on, and
    /// write the job, one pending execution per system and the audit record in one transaction.
    pub async fn submit(&self, p: &Principal, spec: JobSpec) -> Result<Submitted> {
        let command = spec.command.trim();
        if command.is_empty() {
            return Err(Error::invalid(
                "the command is empty: give the command to run",
            ));
        }
        if spec.command.len() > MAX_COMMAND_BYTES {
            return Err(Error::invalid(format!(
                "the command is longer than {MAX_COMMAND_BYTES} bytes"
            )));
        }
        if spec.command.contains('\0') {
            return Err(Error::invalid("the command contains a NUL byte"));
        }
        if spec.targets.systems.is_empty() && spec.targets.tags.is_empty() {
            return Err(Error::invalid(
                "the job has no targets: name systems or tags",
            ));
        }
        if spec.options.concurrency == Some(0) {
            return Err(Error::invalid("concurrency must be at least 1"));
        }
        if spec.options.timeout_seconds == Some(0) {
            return Err(Error::invalid("timeout_seconds must be at least 1"));
        }
        if spec.options.retries > 100 {
            return Err(Error::invalid("retries must be at most 100"));
        }
        for k in spec.options.env.keys() {
            if k.is_empty()
                || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || k.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(Error::invalid(format!(
                    "environment variable name '{k}' is invalid"
                )));
            }
        }
        self.authorize(p, Action::JobRun, None, ("job", None))
            .await?;
        let systems = self.resolve_targets(p, &spec.targets).await?;
        for s in &systems {
            let connector = self.engine.connectors().require(s.system_type)?;
            let caps = connector.capabilities();
            let ok = match spec.options.shell {
                Shell::Default => true,
                Shell::Sh | Shell::Bash => caps.posix_shell,
                Shell::Cmd => s.system_type == SystemType::Windows,
                Shell::Powershell => caps.powershell,
            };
            if !ok {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "system '{}' ({}) cannot run a {} command",
                        s.name,
                        s.system_type.as_str(),
                        spec.options.shell.as_str()
                    ),
                ));
            }
            if !spec.options.env.is_empty() && !caps.env {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "the {} connector cannot set environment variables",
                        connector.name()
                    ),
                ));
            }
        }
        let now = self.clock.now();
        let name = spec
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| {
                let first = command.lines().next().unwrap_or(command);
                first.chars().take(80).collect()
            });
        let job = Job {
            id: JobId::new(),
            name,
            command: spec.command.clone(),
            created_by: p.name.clone(),
            created_by_id: p.user_id,
            targets: spec.targets.clone(),
            options: spec.options.clone(),
            status: JobStatus::Pending,
            created_at: now,
            updated_at: now,
        };
        let executions: Vec<Execution> = systems
            .iter()
            .map(|s| Execution::pending(job.id, s.id, now))
            .collect();
        let audit = self.audit(
            p,
            "job",
            Some(job.id.to_string()),
            "submit",
            serde_json::json!({
                "name": job.name, "command": job.command, "targets": job.targets,
                "systems": systems.iter().map(|s| &s.name).collect::<Vec<_>>(),
                "options": {"concurrency": job.options.concurrency, "timeout_seconds": job.options.timeout_seconds,
                            "retries": job.options.retries, "shell": job.options.shell.as_str()},
            }),
        );
        if let Err(e) = self.store.create_job(&job, &executions, &audit).await {
            return Err(e.with_job(job.id));
        }
        self.engine.wake();
        Ok(Submitted { job, executions })
    }

    async fn resolve_targets(&self, p: &Principal, t: &Targets) -> Result<Vec<System>> {
        let mut out: Vec<System> = Vec::new();
        let mut seen = BTreeSet::new();
        for name in &t.systems {
            let s = self.resolve_system(name).await?;
            match policy::decide(p, Action::JobRun, Some(&s)) {
                Decision::Allow => {}
                Decision::Hidden => {
                    return Err(Error::not_found(format!("system '{name}' not found")));
                }
                Decision::Deny => {
                    self.authorize(p, Action::JobRun, Some(&s), ("job", None))
                        .await?;
                }
            }
            if !s.active {
                return Err(Error::invalid(format!(
                    "system '{}' is inactive; activate it first",
                    s.name
                )));
            }
            if seen.insert(s.id) {
                out.push(s);
            }
        }
        if !t.tags.is_empty() {
            let filter = SystemFilter {
                tags: t.tags.clone(),
                active: Some(true),
                ..Default::default()
            };
            let mut offset = 0;
            loop {
                let batch = self
                    .store
                    .list_systems(
                        &filter,
                        Page {
                            offset,
                            limit: Page::MAX_LIMIT,
                        },
                    )
                    .await?;
                let n = batch.len();
                for s in batch {
                    if policy::decide(p, Action::JobRun, Some(&s)) == Decision::Allow
                        && seen.insert(s.id)
                    {
                        out.push(s);
                    }
                }
                if n < Page::MAX_LIMIT as usize {
                    break;
                }
                offset += n as u64;
            }
        }
        if out.is_empty() {
            return Err(Error::invalid(format!(
                "the targets matched no active system you may run on (systems: {:?}, tags: {:?})",
                t.systems, t.tags
            )));
        }
        Ok(out)
    }

    /// Whether the principal may see the job: admins and principals scoped to all systems,
    /// its creator, or anyone whose scope covers one of its systems.
    async fn job_visible(&self, p: &Principal, job: &Job) -> Result<bool> {
        if sees_all(p) || (p.user_id.is_some() && job.created_by_id == p.user_id) {
            return Ok(true);
        }
        let mut cache: HashMap<SystemId, bool> = HashMap::new();
        let mut offset = 0;
        loop {
            let execs = self
                .store
                .list_executions(
                    job.id,
                    Page {
                        offset,
                        limit: Page::MAX_LIMIT,
                    },
                )
                .await?;
            for e in &execs {
                if let std::collections::hash_map::Entry::Vacant(v) = cache.entry(e.system_id) {
                    let visible = match self.store.get_system(e.system_id).await {
                        Ok(s) => policy::in_scope(p, &s),
                        Err(_) => false,
                    };
                    if visible {
                        return Ok(true);
                    }
                    v.insert(visible);
                }
            }
            if execs.len() < Page::MAX_LIMIT as usize {
                return Ok(false);
            }
            offset += execs.len() as u64;
        }
    }

    async fn visible_job(&self, p: &Principal, id: JobId) -> Result<Job> {
        policy::check(p, Action::JobRead, None)?;
        let job = self.store.get_job(id).await?;
        if !self.job_visible(p, &job).await? {
            return Err(Error::not_found(format!("job {id} not found")));
        }
        Ok(job)
    }

    async fn visible_execution(&self, p: &Principal, id: ExecutionId) -> Result<Execution> {
        policy::check(p, Action::JobRead, None)?;
        let e = self.store.get_execution(id).await?;
        if sees_all(p) {
            return Ok(e);
        }
        let visible = match self.store.get_system(e.system_id).await {
            Ok(s) => policy::in_scope(p, &s),
            Err(_) => false,
        };
        if visible
            || self
                .job_visible(p, &self.store.get_job(e.job_id).await?)
                .await?
        {
            Ok(e)
        } else {
            Err(Error::not_found(format!("execution {id} not found")))
        }
    }

    /// A job.
    pub async fn get_job(&self, p: &Principal, id: JobId) -> Result<Job> {
        self.visible_job(p, id).await
    }

    /// Jobs the principal may see, newest first.
    pub async fn list_jobs(
        &self,
        p: &Principal,
        filter: &JobFilter,
        page: Page,
    ) -> Result<Vec<Job>> {
        Page::new(page.offset, page.limit)?;
        policy::check(p, Action::JobRead, None)?;
        if sees_all(p) {
            return self.store.list_jobs(filter, page).await;
        }
        let mut out = Vec::new();
        let mut skipped = 0;
        let mut offset = 0;
        loop {
            let batch = self
                .store
                .list_jobs(filter, Page { offset, limit: 200 })
                .await?;
            let n = batch.len();
            for j in batch {
                if self.job_visible(p, &j).await? {
                    if skipped < page.offset {
                        skipped += 1;
                    } else {
                        out.push(j);
                        if out.len() as u32 >= page.limit {
                            return Ok(out);
                        }
                    }
                }
            }
            if n < 200 {
                return Ok(out);
            }
            offset += n as u64;
        }
    }

    /// A job's executions, oldest first.
    pub async fn job_executions(
        &self,
        p: &Principal,
        id: JobId,
        page: Page,
    ) -> Result<Vec<Execution>> {
        Page::new(page.offset, page.limit)?;
        self.visible_job(p, id).await?;
        self.store.list_executions(id, page).await
    }

    /// An execution.
    pub async fn get_execution(&self, p: &Principal, id: ExecutionId) -> Result<Execution> {
        self.visible_execution(p, id).await
    }

    /// Stored output chunks of an execution from `from` (a seq), at most `limit`.
    pub async fn read_output(
        &self,
        p: &Principal,
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        Page::new(0, limit)?;
        self.visible_execution(p, id).await?;
        self.store.read_output(id, from, limit).await
    }

    async fn check_cancel(&self, p: &Principal, job: &Job) -> Result<()> {
        if p.role == Role::Admin
            || (p.user_id.is_some() && job.created_by_id == p.user_id && p.role >= Role::Operator)
        {
            return Ok(());
        }
        // Operators may cancel jobs on systems in their scope.
        let execs = self
            .store
            .list_executions(
                job.id,
                Page {
                    offset: 0,
                    limit: Page::MAX_LIMIT,
                },
            )
            .await?;
        for e in execs {
            if let Ok(s) = self.store.get_system(e.system_id).await
                && policy::decide(p, Action::JobCancel, Some(&s)) == Decision::Allow
            {
                return Ok(());
            }
        }
        self.authorize(
            p,
            Action::JobCancel,
            None,
            ("job", Some(job.id.to_string())),
        )
        .await?;
        Err(Error::denied(format!(
            "'{}' may not cancel job {}",
            p.name, job.id
        )))
    }

    /// Cancel a job: pending executions never start; running ones are stopped.
    pub async fn cancel_job(&self, p: &Principal, id: JobId) -> Result<CancelReport> {
        let job = self.visible_job(p, id).await?;
        self.check_cancel(p, &job).await?;
        let audit = self.audit(
            p,
            "job",
            Some(id.to_string()),
            "cancel",
            serde_json::json!({"name": job.name}),
        );
        let report = self.store.cancel(CancelTarget::Job(id), &audit).await?;
        self.engine.cancel(&report.signalled).await;
        self.publish_cancelled(&report).await;
        Ok(report)
    }

    /// Cancel one execution.
    pub async fn cancel_execution(&self, p: &Principal, id: ExecutionId) -> Result<CancelReport> {
        let e = self.visible_execution(p, id).await?;
        let job = self.store.get_job(e.job_id).await?;
        self.check_cancel(p, &job).await?;
        let audit = self.audit(
            p,
            "execution",
            Some(id.to_string()),
            "cancel",
            serde_json::json!({"job": job.id}),
        );
        let report = self
            .store
            .cancel(CancelTarget::Execution(id), &audit)
            .await?;
        self.engine.cancel(&report.signalled).await;
        self.publish_cancelled(&report).await;
        Ok(report)
    }

    async fn publish_cancelled(&self, report: &CancelReport) {
        let mut events = Vec::new();
        let mut jobs = BTreeSet::new();
        for id in &report.cancelled {
            if let Ok(e) = self.store.get_execution(*id).await {
                jobs.insert(e.job_id);
                events.push(crate::Event::Execution {
                    execution_id: e.id,
                    job_id: e.job_id,
                    system_id: e.system_id,
                    status: e.status,
                });
            }
        }
        for j in jobs {
            if let Ok(job) = self.store.get_job(j).await {
                events.push(crate::Event::Job {
                    job_id: j,
                    status: job.status,
                });
            }
        }
        let _ = self.bus.publish(events).await;
    }

    /// Run a job again on the systems where it did not complete (failed, timed out, lost or
    /// cancelled), as a new job.
    pub async fn retry_job(&self, p: &Principal, id: JobId) -> Result<Submitted> {
        let job = self.visible_job(p, id).await?;
        if !job.status.is_terminal() {
            return Err(Error::conflict(format!(
                "job {id} is still {}; retry it when it has ended",
                job.status.as_str()
            )));
        }
        let mut systems = Vec::new();
        let mut offset = 0;
        loop {
            let execs = self
                .store
                .list_executions(
                    id,
                    Page {
                        offset,
                        limit: Page::MAX_LIMIT,
                    },
                )
                .await?;
            let n = execs.len();
            for e in execs {
                if e.status != ExecutionStatus::Completed {
                    systems.push(e.system_id.to_string());
                }
            }
            if n < Page::MAX_LIMIT as usize {
                break;
            }
            offset += n as u64;
        }
        if systems.is_empty() {
            return Err(Error::conflict(format!(
                "every execution of job {id} completed; nothing to retry"
            )));
        }
        self.submit(
            p,
            JobSpec {
                name: Some(format!("{} (retry)", job.name)),
                command: job.command,
                targets: Targets {
                    systems,
                    tags: vec![],
                },
                options: job.options,
            },
        )
        .await
    }

    /// Wait until the job has ended; returns it.
    pub async fn wait_job(&self, p: &Principal, id: JobId) -> Result<Job> {
        let mut rx = self.bus.subscribe();
        let mut job = self.visible_job(p, id).await?;
        loop {
            if job.status.is_terminal() {
                return Ok(job);
            }
            loop {
                match tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await {
                    Ok(Ok(ev)) => {
                        if let crate::Event::Job { job_id, status } = ev.as_ref()
                            && *job_id == id
                            && status.is_terminal()
                        {
                            break;
                        }
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        break;
                    }
                    _ => break,
                }
            }
            job = self.store.get_job(id).await?;
        }
    }

    /// Execution status counts of a job.
    pub async fn job_counts(&self, p: &Principal, id: JobId) -> Result<crate::model::StatusCounts> {
        self.visible_job(p, id).await?;
        self.store.job_counts(id).await
    }
}
