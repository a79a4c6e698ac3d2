//! The blocking API: `orca.Orca`, `orca.Job`, `orca.JobStream`.
//!
//! Every blocking call runs on the shared runtime with the GIL released and honours Ctrl-C
//! (see [`crate::runtime::block_on`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use orca_core::ids::JobId;
use orca_core::model::Timestamp;
use orca_core::report::LineStream;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::args::{self, RunArgs, SystemArgs};
use crate::errors::IntoPyResult;
use crate::open::{OpenRequest, open};
use crate::ops;
use crate::runtime::block_on;
use crate::shared::Shared;
use crate::types::{AuditEntry, Event, JobResult, System};

/// A path, `os.PathLike` or URL given for the database.
pub fn location_arg(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => match v.extract::<String>() {
            Ok(s) => Ok(Some(s)),
            Err(_) => Ok(Some(v.extract::<PathBuf>()?.to_string_lossy().into_owned())),
        },
    }
}

/// Orca, embedded: systems, jobs and the audit log in a database this process opens, with the
/// engine running here (by default).
#[pyclass(frozen, module = "orca")]
pub struct Orca {
    shared: Arc<Shared>,
}

#[pymethods]
impl Orca {
    /// Open Orca on a database: `None` for `./orca-data/orca.db`, a path, `sqlite://PATH` or
    /// `postgres://URL`. Every action is audited under `actor`. With `engine=False` this
    /// process only reads and submits; another process (a server) runs the jobs.
    #[classmethod]
    #[pyo3(signature = (path_or_url=None, *, actor="python", engine=true, keys=None, schema=None))]
    fn open<'py>(
        cls: &Bound<'py, PyType>,
        path_or_url: Option<&Bound<'py, PyAny>>,
        actor: &str,
        engine: bool,
        keys: Option<PathBuf>,
        schema: Option<String>,
    ) -> PyResult<Orca> {
        let py = cls.py();
        let req = OpenRequest {
            location: location_arg(path_or_url)?,
            actor: actor.to_string(),
            engine,
            keys,
            schema,
        };
        let opened = block_on(py, open(req))?;
        Ok(Orca {
            shared: Shared::new(opened),
        })
    }

    /// Stop the engine (if it runs here), letting running executions finish within `grace`
    /// seconds. Any later call raises `orca.Conflict`. Closing twice does nothing.
    #[pyo3(signature = (grace=5.0))]
    fn close(&self, py: Python<'_>, grace: f64) -> PyResult<()> {
        let grace = ops::timeout(Some(grace)).py()?.unwrap_or(Duration::ZERO);
        let shared = self.shared.clone();
        block_on(py, async move { shared.close(grace).await })
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py, 5.0)?;
        Ok(false)
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.is_closed()
    }
    /// The actor named in the audit log.
    #[getter]
    fn actor(&self) -> String {
        self.shared.actor().to_string()
    }
    /// Whether the engine runs in this process.
    #[getter]
    fn engine(&self) -> bool {
        self.shared.engine()
    }
    /// The database (password hidden).
    #[getter]
    fn location(&self) -> String {
        self.shared.location().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Orca(location={:?}, actor={:?}, engine={}{})",
            self.shared.location(),
            self.shared.actor(),
            if self.shared.engine() {
                "True"
            } else {
                "False"
            },
            if self.shared.is_closed() {
                ", closed"
            } else {
                ""
            }
        )
    }

    /// Register a system. The credential (password or private key) is encrypted before it is
    /// stored and is never returned.
    #[pyo3(signature = (name, *, hostname=None, r#type="linux", port=None, username=None, password=None, private_key=None, passphrase=None, host_key_policy=None, tags=None, options=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_system(
        &self,
        py: Python<'_>,
        name: String,
        hostname: Option<String>,
        r#type: &str,
        port: Option<u16>,
        username: Option<String>,
        password: Option<String>,
        private_key: Option<String>,
        passphrase: Option<String>,
        host_key_policy: Option<String>,
        tags: Option<Vec<String>>,
        options: Option<BTreeMap<String, String>>,
    ) -> PyResult<System> {
        let h = self.shared.handle().py()?;
        let a = SystemArgs {
            name,
            hostname,
            system_type: r#type.to_string(),
            port,
            username,
            password,
            private_key,
            passphrase,
            host_key_policy,
            tags,
            options,
        };
        block_on(py, ops::add_system(h, a))
    }

    /// Remove a system (refused while it has unfinished executions).
    fn remove_system(&self, py: Python<'_>, name: String) -> PyResult<()> {
        let h = self.shared.handle().py()?;
        block_on(py, ops::remove_system(h, name))
    }

    /// Create a user (`role`: admin, operator or viewer) with a password; its id.
    fn add_user(
        &self,
        py: Python<'_>,
        username: String,
        role: String,
        password: String,
    ) -> PyResult<String> {
        let h = self.shared.handle().py()?;
        block_on(py, ops::add_user(h, username, role, password))
    }

    /// Set a user's password; every session and API token of the user ends.
    fn set_password(&self, py: Python<'_>, username: String, password: String) -> PyResult<()> {
        let h = self.shared.handle().py()?;
        block_on(py, ops::set_password(h, username, password))
    }

    /// A system by name or id.
    fn system(&self, py: Python<'_>, name: String) -> PyResult<System> {
        let h = self.shared.handle().py()?;
        block_on(py, ops::system(h, name))
    }

    /// Systems, by name; optionally only those with any of `tags`, or of one `type`.
    #[pyo3(signature = (*, tags=None, r#type=None, limit=100, offset=0))]
    fn systems(
        &self,
        py: Python<'_>,
        tags: Option<Vec<String>>,
        r#type: Option<String>,
        limit: u32,
        offset: u64,
    ) -> PyResult<Vec<System>> {
        let h = self.shared.handle().py()?;
        block_on(py, ops::systems(h, tags, r#type, args::page(limit, offset)))
    }

    /// Register the `local` system (this machine) if it is not registered yet.
    fn ensure_local_system(&self, py: Python<'_>) -> PyResult<System> {
        let h = self.shared.handle().py()?;
        block_on(py, ops::ensure_local_system(h))
    }

    /// Submit `command` to run on `systems` (names or ids) and/or every active system with
    /// any of `tags`. Returns at once; use the job's `stream()` and `wait()`.
    /// `timeout` is per execution, in seconds.
    #[pyo3(signature = (command, *, systems=None, tags=None, name=None, concurrency=None, timeout=None, retries=0, shell=None, env=None))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        command: String,
        systems: Option<Vec<String>>,
        tags: Option<Vec<String>>,
        name: Option<String>,
        concurrency: Option<u32>,
        timeout: Option<u64>,
        retries: u32,
        shell: Option<String>,
        env: Option<BTreeMap<String, String>>,
    ) -> PyResult<Job> {
        let h = self.shared.handle().py()?;
        let a = RunArgs {
            command,
            systems,
            tags,
            name,
            concurrency,
            timeout,
            retries,
            shell,
            env,
        };
        let job = block_on(py, ops::run(h, a))?;
        Ok(Job::new(self.shared.clone(), job))
    }

    /// A job by id.
    fn job(&self, py: Python<'_>, id: String) -> PyResult<Job> {
        let h = self.shared.handle().py()?;
        let job = block_on(py, ops::job(h, id))?;
        Ok(Job::new(self.shared.clone(), job))
    }

    /// Jobs, newest first.
    #[pyo3(signature = (*, limit=20, offset=0, status=None, created_by=None))]
    fn jobs(
        &self,
        py: Python<'_>,
        limit: u32,
        offset: u64,
        status: Option<String>,
        created_by: Option<String>,
    ) -> PyResult<Vec<Job>> {
        let h = self.shared.handle().py()?;
        let list = block_on(
            py,
            ops::jobs(h, status, created_by, args::page(limit, offset)),
        )?;
        Ok(list
            .into_iter()
            .map(|j| Job::new(self.shared.clone(), j))
            .collect())
    }

    /// Audit records, newest first.
    #[pyo3(signature = (*, limit=50, offset=0, actor=None, resource_type=None, action=None))]
    fn audit(
        &self,
        py: Python<'_>,
        limit: u32,
        offset: u64,
        actor: Option<String>,
        resource_type: Option<String>,
        action: Option<String>,
    ) -> PyResult<Vec<AuditEntry>> {
        let h = self.shared.handle().py()?;
        block_on(
            py,
            ops::audit(h, actor, resource_type, action, args::page(limit, offset)),
        )
    }
}

/// What a job is; shared by `Job` and `AsyncJob`.
#[derive(Debug, Clone)]
pub struct JobData {
    pub id: JobId,
    pub name: String,
    pub command: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub status: String,
    pub systems: Vec<String>,
    pub tags: Vec<String>,
}

impl From<orca_core::model::Job> for JobData {
    fn from(j: orca_core::model::Job) -> Self {
        JobData {
            id: j.id,
            name: j.name,
            command: j.command,
            created_by: j.created_by,
            created_at: j.created_at,
            status: j.status.as_str().into(),
            systems: j.targets.systems,
            tags: j.targets.tags,
        }
    }
}

/// A submitted job. Its attributes are a snapshot taken when it was fetched; `refresh()`
/// fetches it again, `wait()` waits for the end and returns the result.
#[pyclass(frozen, module = "orca")]
pub struct Job {
    shared: Arc<Shared>,
    data: JobData,
}

impl Job {
    fn new(shared: Arc<Shared>, job: orca_core::model::Job) -> Self {
        Job {
            shared,
            data: job.into(),
        }
    }
}

#[pymethods]
impl Job {
    /// Id.
    #[getter]
    fn id(&self) -> String {
        self.data.id.to_string()
    }
    /// Name.
    #[getter]
    fn name(&self) -> String {
        self.data.name.clone()
    }
    /// Command.
    #[getter]
    fn command(&self) -> String {
        self.data.command.clone()
    }
    /// Who submitted it.
    #[getter]
    fn created_by(&self) -> String {
        self.data.created_by.clone()
    }
    /// When.
    #[getter]
    fn created_at(&self) -> Timestamp {
        self.data.created_at
    }
    /// Status when this object was fetched.
    #[getter]
    fn status(&self) -> String {
        self.data.status.clone()
    }
    /// Target systems as given.
    #[getter]
    fn systems(&self) -> Vec<String> {
        self.data.systems.clone()
    }
    /// Target tags as given.
    #[getter]
    fn tags(&self) -> Vec<String> {
        self.data.tags.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Job(id={:?}, name={:?}, status={:?})",
            self.data.id.to_string(),
            self.data.name,
            self.data.status
        )
    }

    /// The job as it is now.
    fn refresh(&self, py: Python<'_>) -> PyResult<Job> {
        let h = self.shared.handle().py()?;
        let job = block_on(py, ops::job(h, self.data.id.to_string()))?;
        Ok(Job::new(self.shared.clone(), job))
    }

    /// Its output lines and state changes: what happened so far, then live, ending after the
    /// job's final state.
    fn stream(&self, py: Python<'_>) -> PyResult<JobStream> {
        let h = self.shared.handle().py()?;
        let s = block_on(py, ops::stream(h, self.data.id))?;
        Ok(JobStream {
            job_id: self.data.id.to_string(),
            inner: Arc::new(tokio::sync::Mutex::new(s)),
        })
    }

    /// Wait until the job ends (at most `timeout` seconds: then `orca.Timeout`; the job goes
    /// on) and return its result. Ctrl-C stops the waiting, not the job.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<JobResult> {
        let h = self.shared.handle().py()?;
        let t = ops::timeout(timeout).py()?;
        block_on(py, ops::wait(h, self.data.id, t)).map(Into::into)
    }

    /// The result as it is now, without waiting.
    fn result(&self, py: Python<'_>) -> PyResult<JobResult> {
        let h = self.shared.handle().py()?;
        block_on(py, ops::result(h, self.data.id)).map(Into::into)
    }

    /// Cancel: pending executions never start, running ones are stopped. Returns how many
    /// executions were cancelled or asked to stop.
    fn cancel(&self, py: Python<'_>) -> PyResult<usize> {
        let h = self.shared.handle().py()?;
        block_on(py, ops::cancel(h, self.data.id))
    }
}

/// Iterator over a job's events (`orca.Event`); blocks between events with the GIL released.
#[pyclass(frozen, module = "orca")]
pub struct JobStream {
    job_id: String,
    inner: Arc<tokio::sync::Mutex<LineStream>>,
}

#[pymethods]
impl JobStream {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Event>> {
        let inner = self.inner.clone();
        let next = block_on(
            py,
            async move { inner.lock().await.next().await.transpose() },
        )?;
        Ok(next.map(|e| Event::from_line(self.job_id.clone(), e)))
    }
}
