//! The operations both APIs share, as futures over a [`Handle`]: each one converts, calls the
//! `orca_core::Orca` facade and returns orca-core results.

use std::time::Duration;

use orca_core::ids::JobId;
use orca_core::model::{Job, Page};
use orca_core::report::{JobReport, LineStream};
use orca_core::{Error, ErrorKind, Result};

use crate::args::{self, RunArgs, SystemArgs};
use crate::shared::Handle;
use crate::types::{AuditEntry, System};

pub async fn add_system(h: Handle, a: SystemArgs) -> Result<System> {
    let new = a.into_new_system()?;
    h.orca.add_system(&h.principal, new).await.map(Into::into)
}

pub async fn remove_system(h: Handle, name: String) -> Result<()> {
    h.orca.remove_system(&h.principal, &name).await
}

pub async fn system(h: Handle, name: String) -> Result<System> {
    h.orca.get_system(&h.principal, &name).await.map(Into::into)
}

pub async fn ensure_local_system(h: Handle) -> Result<System> {
    h.orca
        .ensure_local_system(&h.principal)
        .await
        .map(Into::into)
}

pub async fn systems(
    h: Handle,
    tags: Option<Vec<String>>,
    system_type: Option<String>,
    page: Result<Page>,
) -> Result<Vec<System>> {
    let filter = args::system_filter(tags, system_type.as_deref())?;
    let list = h.orca.list_systems(&h.principal, &filter, page?).await?;
    Ok(list.into_iter().map(Into::into).collect())
}

pub async fn run(h: Handle, a: RunArgs) -> Result<Job> {
    let spec = a.into_spec()?;
    Ok(h.orca.submit(&h.principal, spec).await?.job)
}

pub async fn job(h: Handle, id: String) -> Result<Job> {
    let id = args::job_id(&id)?;
    h.orca.get_job(&h.principal, id).await
}

pub async fn jobs(
    h: Handle,
    status: Option<String>,
    created_by: Option<String>,
    page: Result<Page>,
) -> Result<Vec<Job>> {
    let filter = args::job_filter(status.as_deref(), created_by)?;
    h.orca.list_jobs(&h.principal, &filter, page?).await
}

pub async fn audit(
    h: Handle,
    actor: Option<String>,
    resource_type: Option<String>,
    action: Option<String>,
    page: Result<Page>,
) -> Result<Vec<AuditEntry>> {
    let filter = args::audit_filter(actor, resource_type, action);
    let list = h.orca.audit_log(&h.principal, &filter, page?).await?;
    Ok(list.into_iter().map(Into::into).collect())
}

/// A timeout in seconds from Python, checked.
pub fn timeout(t: Option<f64>) -> Result<Option<Duration>> {
    t.map(|s| {
        Duration::try_from_secs_f64(s).map_err(|_| {
            Error::invalid(format!("timeout must be a number of seconds >= 0, got {s}"))
        })
    })
    .transpose()
}

/// Wait for the job to end (at most `timeout`), then report it.
pub async fn wait(h: Handle, id: JobId, timeout: Option<Duration>) -> Result<JobReport> {
    let wait = h.orca.wait_job(&h.principal, id);
    match timeout {
        None => {
            wait.await?;
        }
        Some(t) => match tokio::time::timeout(t, wait).await {
            Ok(r) => {
                r?;
            }
            Err(_) => {
                let job = h.orca.get_job(&h.principal, id).await?;
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "job {id} is still {} after {:.1} s: wait again, or cancel it",
                        job.status.as_str(),
                        t.as_secs_f64()
                    ),
                )
                .with_job(id));
            }
        },
    }
    h.orca.job_report(&h.principal, id).await
}

pub async fn result(h: Handle, id: JobId) -> Result<JobReport> {
    h.orca.job_report(&h.principal, id).await
}

pub async fn cancel(h: Handle, id: JobId) -> Result<usize> {
    let r = h.orca.cancel_job(&h.principal, id).await?;
    Ok(r.cancelled.len() + r.signalled.len())
}

pub async fn stream(h: Handle, id: JobId) -> Result<LineStream> {
    h.orca.watch_job_lines(&h.principal, id).await
}
