//! Job and execution operations.

use crate::actor::{Actor, AsActor};
use std::collections::{BTreeSet, HashMap};

use super::Orca;
use crate::executor::Executor;
use crate::ids::{ExecutionId, JobId, SystemId};
use crate::model::{
    Execution, ExecutionStatus, Job, JobFilter, JobSpec, JobStatus, OutputChunk, Page, Principal,
    Role, Shell, System, SystemFilter, SystemType, Targets,
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
    /// For a retry: executions that did not complete on systems outside the caller's scope,
    /// left alone.
    pub left_alone: u64,
}

/// Largest command accepted.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

fn is_admin(p: &Principal) -> bool {
    p.role == Role::Admin
}

/// A job as a principal may see it (see [`Orca::job_summary`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    /// The job (targets outside the principal's scope left out).
    pub job: Job,
    /// Its executions by state, counting only those the principal may see.
    pub counts: crate::model::StatusCounts,
    /// Executions on systems outside the principal's scope (not shown, not counted).
    pub hidden_executions: u64,
}

/// Which systems are in a principal's scope, remembered for the length of one operation.
#[derive(Debug, Default)]
pub(crate) struct ScopeCache {
    seen: HashMap<SystemId, bool>,
}

impl ScopeCache {
    /// Whether the system with this id is in the principal's scope (a missing system is not).
    pub(crate) async fn covers(&mut self, orca: &Orca, p: &Actor, id: SystemId) -> Result<bool> {
        if is_admin(p) {
            return Ok(true);
        }
        if let Some(b) = self.seen.get(&id) {
            return Ok(*b);
        }
        let b = match orca.store.get_system(id).await {
            Ok(s) => policy::decide(p, Action::JobRead, Some(&s)) != Decision::Hidden,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        self.seen.insert(id, b);
        Ok(b)
    }

    fn remember(&mut self, p: &Principal, s: &System) {
        self.seen.insert(s.id, policy::in_scope(p, s));
    }
}

impl Orca {
    /// Submit a job: validate, resolve the targets to the systems the principal may run on, and
    /// write the job, one pending execution per system and the audit record in one transaction.
    pub async fn submit(&self, p: &(impl AsActor + ?Sized), spec: JobSpec) -> Result<Submitted> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
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
        if let Some(n) = &spec.name {
            crate::text::printable("job name", n)?;
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
        let r = self.store.create_job(&job, &executions, &audit).await;
        if let Err(e) = self.wrote(p, &audit, r) {
            return Err(e.with_job(job.id));
        }
        self.engine.wake();
        Ok(Submitted {
            job,
            executions,
            left_alone: 0,
        })
    }

    async fn resolve_targets(&self, p: &Actor, t: &Targets) -> Result<Vec<System>> {
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

    /// Every execution of a job, oldest first.
    pub(crate) async fn all_executions(&self, id: JobId) -> Result<Vec<Execution>> {
        let mut out = Vec::new();
        loop {
            let page = self
                .store
                .list_executions(
                    id,
                    Page {
                        offset: out.len() as u64,
                        limit: Page::MAX_LIMIT,
                    },
                )
                .await?;
            let n = page.len();
            out.extend(page);
            if n < Page::MAX_LIMIT as usize {
                return Ok(out);
            }
        }
    }

    /// Whether the principal may see the job: admins, its creator, or anyone whose scope
    /// covers one of its systems. (What they see of it is narrowed to their scope.)
    async fn job_visible(&self, p: &Actor, job: &Job, scope: &mut ScopeCache) -> Result<bool> {
        if is_admin(p) || (p.user_id.is_some() && job.created_by_id == p.user_id) {
            return Ok(true);
        }
        for e in self.all_executions(job.id).await? {
            if scope.covers(self, p, e.system_id).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn visible_job(&self, p: &Actor, id: JobId, scope: &mut ScopeCache) -> Result<Job> {
        policy::check(p, Action::JobRead, None)?;
        let job = self.store.get_job(id).await?;
        if !self.job_visible(p, &job, scope).await? {
            return Err(Error::not_found(format!("job {id} not found")));
        }
        Ok(job)
    }

    /// The job as the principal may see it: targets named outside their scope are left out.
    async fn redact(&self, p: &Actor, mut job: Job, scope: &mut ScopeCache) -> Job {
        if is_admin(p) {
            return job;
        }
        let mut kept = Vec::with_capacity(job.targets.systems.len());
        for name in std::mem::take(&mut job.targets.systems) {
            let visible = match self.resolve_system(&name).await {
                Ok(s) => {
                    scope.remember(p, &s);
                    policy::in_scope(p, &s)
                }
                Err(_) => false,
            };
            if visible {
                kept.push(name);
            }
        }
        job.targets.systems = kept;
        job
    }

    /// An execution whose own system is in the principal's scope (what else its job touched
    /// does not matter); otherwise "not found", naming nothing the caller may not see.
    async fn visible_execution(&self, p: &Actor, id: ExecutionId) -> Result<Execution> {
        policy::check(p, Action::JobRead, None)?;
        let hidden = || Error::not_found(format!("execution {id} not found"));
        let e = match self.store.get_execution(id).await {
            Ok(e) => e,
            Err(err) if err.kind() == ErrorKind::NotFound => return Err(hidden()),
            Err(err) => return Err(err),
        };
        if ScopeCache::default().covers(self, p, e.system_id).await? {
            Ok(e)
        } else {
            Err(hidden())
        }
    }

    /// The executions of a job the principal may see, and how many others it has.
    async fn visible_executions(
        &self,
        p: &Actor,
        id: JobId,
        scope: &mut ScopeCache,
    ) -> Result<(Vec<Execution>, u64)> {
        let all = self.all_executions(id).await?;
        if is_admin(p) {
            return Ok((all, 0));
        }
        let mut shown = Vec::with_capacity(all.len());
        let mut hidden = 0;
        for e in all {
            if scope.covers(self, p, e.system_id).await? {
                shown.push(e);
            } else {
                hidden += 1;
            }
        }
        Ok((shown, hidden))
    }

    /// A job, as the principal may see it.
    pub async fn get_job(&self, p: &(impl AsActor + ?Sized), id: JobId) -> Result<Job> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let mut scope = ScopeCache::default();
        let job = self.visible_job(p, id, &mut scope).await?;
        Ok(self.redact(p, job, &mut scope).await)
    }

    /// A job with the counts of the executions the principal may see, and how many of its
    /// executions are hidden from them (on systems outside their scope).
    pub async fn job_summary(&self, p: &(impl AsActor + ?Sized), id: JobId) -> Result<JobSummary> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let mut scope = ScopeCache::default();
        let job = self.visible_job(p, id, &mut scope).await?;
        let (counts, hidden_executions) = self.visible_counts(p, id, &mut scope).await?;
        Ok(JobSummary {
            job: self.redact(p, job, &mut scope).await,
            counts,
            hidden_executions,
        })
    }

    /// Counts of the job's executions the principal may see, and how many others it has.
    async fn visible_counts(
        &self,
        p: &Actor,
        id: JobId,
        scope: &mut ScopeCache,
    ) -> Result<(crate::model::StatusCounts, u64)> {
        if is_admin(p) {
            return Ok((self.store.job_counts(id).await?, 0));
        }
        let (shown, hidden) = self.visible_executions(p, id, scope).await?;
        let mut c = crate::model::StatusCounts::default();
        for e in &shown {
            c.add(e.status, 1);
        }
        Ok((c, hidden))
    }

    /// Jobs the principal may see, newest first.
    pub async fn list_jobs(
        &self,
        p: &(impl AsActor + ?Sized),
        filter: &JobFilter,
        page: Page,
    ) -> Result<Vec<Job>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        Page::new(page.offset, page.limit)?;
        policy::check(p, Action::JobRead, None)?;
        if is_admin(p) {
            return self.store.list_jobs(filter, page).await;
        }
        let mut scope = ScopeCache::default();
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
                if self.job_visible(p, &j, &mut scope).await? {
                    if skipped < page.offset {
                        skipped += 1;
                    } else {
                        out.push(self.redact(p, j, &mut scope).await);
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

    /// A job's executions the principal may see (on systems in their scope), oldest first.
    pub async fn job_executions(
        &self,
        p: &(impl AsActor + ?Sized),
        id: JobId,
        page: Page,
    ) -> Result<Vec<Execution>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        Page::new(page.offset, page.limit)?;
        let mut scope = ScopeCache::default();
        self.visible_job(p, id, &mut scope).await?;
        if is_admin(p) {
            return self.store.list_executions(id, page).await;
        }
        let (shown, _) = self.visible_executions(p, id, &mut scope).await?;
        Ok(shown
            .into_iter()
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(page.limit as usize)
            .collect())
    }

    /// An execution (its own system must be in the principal's scope).
    pub async fn get_execution(
        &self,
        p: &(impl AsActor + ?Sized),
        id: ExecutionId,
    ) -> Result<Execution> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        self.visible_execution(p, id).await
    }

    /// Stored output chunks of an execution from `from` (a seq), at most `limit`.
    pub async fn read_output(
        &self,
        p: &(impl AsActor + ?Sized),
        id: ExecutionId,
        from: u64,
        limit: u32,
    ) -> Result<Vec<OutputChunk>> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        Page::new(0, limit)?;
        self.visible_execution(p, id).await?;
        self.store.read_output(id, from, limit).await
    }

    /// Cancel a job: pending executions never start; running ones are stopped. A non-admin
    /// cancels only the executions on systems in their scope; the report says how many others
    /// were left alone.
    pub async fn cancel_job(&self, p: &(impl AsActor + ?Sized), id: JobId) -> Result<CancelReport> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let mut scope = ScopeCache::default();
        let job = self.visible_job(p, id, &mut scope).await?;
        self.authorize(p, Action::JobCancel, None, ("job", Some(id.to_string())))
            .await?;
        // A non-admin cancels only the executions on systems in their scope.
        let mut mine = Vec::new();
        let mut left_alone = 0;
        if !is_admin(p) {
            for e in self.all_executions(id).await? {
                if e.status.is_terminal() {
                    continue;
                }
                if scope.covers(self, p, e.system_id).await? {
                    mine.push(e.id);
                } else {
                    left_alone += 1;
                }
            }
        }
        let mut report = if left_alone == 0 {
            let audit = self.audit(
                p,
                "job",
                Some(id.to_string()),
                "cancel",
                serde_json::json!({"name": job.name}),
            );
            let r = self.store.cancel(CancelTarget::Job(id), &audit).await;
            self.wrote(p, &audit, r)?
        } else {
            let mut report = CancelReport::default();
            for e in mine {
                let audit = self.audit(
                    p,
                    "execution",
                    Some(e.to_string()),
                    "cancel",
                    serde_json::json!({"job": id, "via": "job cancel", "left_alone": left_alone}),
                );
                let r = self.store.cancel(CancelTarget::Execution(e), &audit).await;
                match self.wrote(p, &audit, r) {
                    Ok(r) => {
                        report.cancelled.extend(r.cancelled);
                        report.signalled.extend(r.signalled);
                    }
                    Err(err) if err.kind() == ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
            report
        };
        report.left_alone = left_alone;
        self.engine.cancel(&report.signalled).await;
        self.publish_cancelled(&report).await;
        Ok(report)
    }

    /// Cancel one execution (its own system must be in the principal's scope).
    pub async fn cancel_execution(
        &self,
        p: &(impl AsActor + ?Sized),
        id: ExecutionId,
    ) -> Result<CancelReport> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let e = self.visible_execution(p, id).await?;
        let system = self.store.get_system(e.system_id).await.ok();
        self.authorize(
            p,
            Action::JobCancel,
            system.as_ref(),
            ("execution", Some(id.to_string())),
        )
        .await?;
        let audit = self.audit(
            p,
            "execution",
            Some(id.to_string()),
            "cancel",
            serde_json::json!({"job": e.job_id}),
        );
        let r = self.store.cancel(CancelTarget::Execution(id), &audit).await;
        let report = self.wrote(p, &audit, r)?;
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
    /// cancelled), as a new job. A non-admin retries only on systems in their scope; the
    /// answer says how many executions were left alone.
    pub async fn retry_job(&self, p: &(impl AsActor + ?Sized), id: JobId) -> Result<Submitted> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let mut scope = ScopeCache::default();
        let job = self.visible_job(p, id, &mut scope).await?;
        if !job.status.is_terminal() {
            return Err(Error::conflict(format!(
                "job {id} is still {}; retry it when it has ended",
                job.status.as_str()
            )));
        }
        let mut systems = Vec::new();
        let mut left_alone = 0;
        for e in self.all_executions(id).await? {
            if e.status == ExecutionStatus::Completed {
                continue;
            }
            if scope.covers(self, p, e.system_id).await? {
                systems.push(e.system_id.to_string());
            } else {
                left_alone += 1;
            }
        }
        if systems.is_empty() {
            return Err(Error::conflict(if left_alone == 0 {
                format!("every execution of job {id} completed; nothing to retry")
            } else {
                format!(
                    "no execution of job {id} that you may retry did not complete \
                     ({left_alone} on systems outside your scope left alone)"
                )
            }));
        }
        let mut submitted = self
            .submit(
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
            .await?;
        submitted.left_alone = left_alone;
        Ok(submitted)
    }

    /// Ids of the executions of a visible job the principal may watch; `None`: all of them.
    pub(crate) async fn watchable(
        &self,
        p: &Actor,
        id: JobId,
    ) -> Result<Option<std::collections::HashSet<ExecutionId>>> {
        let mut scope = ScopeCache::default();
        self.visible_job(p, id, &mut scope).await?;
        if is_admin(p) {
            return Ok(None);
        }
        let (shown, _) = self.visible_executions(p, id, &mut scope).await?;
        Ok(Some(shown.into_iter().map(|e| e.id).collect()))
    }

    /// Wait until the job has ended; returns it.
    pub async fn wait_job(&self, p: &(impl AsActor + ?Sized), id: JobId) -> Result<Job> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let mut rx = self.bus.subscribe();
        let mut job = self.visible_job(p, id, &mut ScopeCache::default()).await?;
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

    /// Execution status counts of a job (only the executions the principal may see).
    pub async fn job_counts(
        &self,
        p: &(impl AsActor + ?Sized),
        id: JobId,
    ) -> Result<crate::model::StatusCounts> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let mut scope = ScopeCache::default();
        self.visible_job(p, id, &mut scope).await?;
        Ok(self.visible_counts(p, id, &mut scope).await?.0)
    }
}
