//! The operations both APIs share, as futures over a [`Handle`]: each one converts, calls the
//! `orca_core::Orca` facade and returns orca-core results.

use secrecy::SecretString;
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
    h.orca.add_system(&h.actor(), new).await.map(Into::into)
}

pub async fn remove_system(h: Handle, name: String) -> Result<()> {
    h.orca.remove_system(&h.actor(), &name).await
}

pub async fn system(h: Handle, name: String) -> Result<System> {
    h.orca.get_system(&h.actor(), &name).await.map(Into::into)
}

pub async fn ensure_local_system(h: Handle) -> Result<System> {
    h.orca.ensure_local_system(&h.actor()).await.map(Into::into)
}

pub async fn systems(
    h: Handle,
    tags: Option<Vec<String>>,
    system_type: Option<String>,
    page: Result<Page>,
) -> Result<Vec<System>> {
    let filter = args::system_filter(tags, system_type.as_deref())?;
    let list = h.orca.list_systems(&h.actor(), &filter, page?).await?;
    Ok(list.into_iter().map(Into::into).collect())
}

pub async fn run(h: Handle, a: RunArgs) -> Result<Job> {
    let spec = a.into_spec()?;
    Ok(h.orca.submit(&h.actor(), spec).await?.job)
}

pub async fn job(h: Handle, id: String) -> Result<Job> {
    let id = args::job_id(&id)?;
    h.orca.get_job(&h.actor(), id).await
}

pub async fn jobs(
    h: Handle,
    status: Option<String>,
    created_by: Option<String>,
    page: Result<Page>,
) -> Result<Vec<Job>> {
    let filter = args::job_filter(status.as_deref(), created_by)?;
    h.orca.list_jobs(&h.actor(), &filter, page?).await
}

pub async fn audit(
    h: Handle,
    actor: Option<String>,
    resource_type: Option<String>,
    action: Option<String>,
    page: Result<Page>,
) -> Result<Vec<AuditEntry>> {
    let filter = args::audit_filter(actor, resource_type, action);
    let list = h.orca.audit_log(&h.actor(), &filter, page?).await?;
    Ok(list.into_iter().map(Into::into).collect())
}

/// Create a user with a password; its id.
pub async fn add_user(
    h: Handle,
    username: String,
    role: String,
    password: String,
) -> Result<String> {
    let role = orca_core::model::Role::parse(&role)?;
    let u = h
        .orca
        .add_user(&h.actor(), &username, role, SecretString::from(password))
        .await?;
    Ok(u.id.to_string())
}

/// Set a user's password: every session and API token of the user ends.
pub async fn set_password(h: Handle, username: String, password: String) -> Result<()> {
    let actor = h.actor();
    let u = h.orca.find_user(&actor, &username).await?;
    h.orca
        .reset_password(&actor, u.id, SecretString::from(password))
        .await?;
    Ok(())
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
    let actor = h.actor();
    let wait = h.orca.wait_job(&actor, id);
    match timeout {
        None => {
            wait.await?;
        }
        Some(t) => match tokio::time::timeout(t, wait).await {
            Ok(r) => {
                r?;
            }
            Err(_) => {
                let job = h.orca.get_job(&h.actor(), id).await?;
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
    h.orca.job_report(&h.actor(), id).await
}

pub async fn result(h: Handle, id: JobId) -> Result<JobReport> {
    h.orca.job_report(&h.actor(), id).await
}

pub async fn cancel(h: Handle, id: JobId) -> Result<usize> {
    let r = h.orca.cancel_job(&h.actor(), id).await?;
    Ok(r.cancelled.len() + r.signalled.len())
}

pub async fn stream(h: Handle, id: JobId) -> Result<LineStream> {
    h.orca.watch_job_lines(&h.actor(), id).await
}
