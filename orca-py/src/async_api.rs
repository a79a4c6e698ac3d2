//! The asyncio API: `orca.AsyncOrca`, `orca.AsyncJob`, `orca.AsyncJobStream`. The same
//! operations as the blocking API, returning awaitables (through `pyo3-async-runtimes`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use orca_core::model::Timestamp;
use orca_core::report::LineStream;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::args::{self, RunArgs, SystemArgs};
use crate::errors::IntoPyResult;
use crate::open::{OpenRequest, open};
use crate::ops;
use crate::runtime::awaitable;
use crate::shared::Shared;
use crate::sync_api::{JobData, location_arg};
use crate::types::{Event, JobResult};

/// Orca for asyncio: the same operations as `Orca`, as awaitables.
#[pyclass(frozen, module = "orca")]
pub struct AsyncOrca {
    shared: Arc<Shared>,
}

#[pymethods]
impl AsyncOrca {
    /// Open Orca (see `Orca.open`); await the result.
    #[classmethod]
    #[pyo3(signature = (path_or_url=None, *, actor="python", engine=true, keys=None, schema=None))]
    fn open<'py>(
        cls: &Bound<'py, PyType>,
        path_or_url: Option<&Bound<'py, PyAny>>,
        actor: &str,
        engine: bool,
        keys: Option<PathBuf>,
        schema: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = OpenRequest {
            location: location_arg(path_or_url)?,
            actor: actor.to_string(),
            engine,
            keys,
            schema,
        };
        awaitable(cls.py(), async move {
            let opened = open(req).await.py()?;
            Ok(AsyncOrca {
                shared: Shared::new(opened),
            })
        })
    }

    /// Stop the engine (see `Orca.close`).
    #[pyo3(signature = (grace=5.0))]
    fn close<'py>(&self, py: Python<'py>, grace: f64) -> PyResult<Bound<'py, PyAny>> {
        let grace = ops::timeout(Some(grace)).py()?.unwrap_or(Duration::ZERO);
        let shared = self.shared.clone();
        awaitable(py, async move { shared.close(grace).await.py() })
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let me: Py<AsyncOrca> = slf.clone().unbind();
        awaitable(slf.py(), async move { Ok(me) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shared = self.shared.clone();
        awaitable(py, async move {
            shared.close(Duration::from_secs(5)).await.py()?;
            Ok(false)
        })
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
            "AsyncOrca(location={:?}, actor={:?}, engine={}{})",
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

    /// Register a system (see `Orca.add_system`).
    #[pyo3(signature = (name, *, hostname=None, r#type="linux", port=None, username=None, password=None, private_key=None, passphrase=None, host_key_policy=None, tags=None, options=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_system<'py>(
        &self,
        py: Python<'py>,
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
    ) -> PyResult<Bound<'py, PyAny>> {
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
        awaitable(py, async move { ops::add_system(h, a).await.py() })
    }

    /// Remove a system.
    fn remove_system<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        awaitable(py, async move { ops::remove_system(h, name).await.py() })
    }

    /// Create a user (see `Orca.add_user`).
    fn add_user<'py>(
        &self,
        py: Python<'py>,
        username: String,
        role: String,
        password: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        awaitable(py, async move {
            ops::add_user(h, username, role, password).await.py()
        })
    }

    /// Set a user's password (see `Orca.set_password`).
    fn set_password<'py>(
        &self,
        py: Python<'py>,
        username: String,
        password: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        awaitable(py, async move {
            ops::set_password(h, username, password).await.py()
        })
    }

    /// A system by name or id.
    fn system<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        awaitable(py, async move { ops::system(h, name).await.py() })
    }

    /// Systems (see `Orca.systems`).
    #[pyo3(signature = (*, tags=None, r#type=None, limit=100, offset=0))]
    fn systems<'py>(
        &self,
        py: Python<'py>,
        tags: Option<Vec<String>>,
        r#type: Option<String>,
        limit: u32,
        offset: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let page = args::page(limit, offset);
        awaitable(
            py,
            async move { ops::systems(h, tags, r#type, page).await.py() },
        )
    }

    /// Register the `local` system if it is not registered yet.
    fn ensure_local_system<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        awaitable(py, async move { ops::ensure_local_system(h).await.py() })
    }

    /// Submit a job (see `Orca.run`); resolves to an `AsyncJob`.
    #[pyo3(signature = (command, *, systems=None, tags=None, name=None, concurrency=None, timeout=None, retries=0, shell=None, env=None))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        command: String,
        systems: Option<Vec<String>>,
        tags: Option<Vec<String>>,
        name: Option<String>,
        concurrency: Option<u32>,
        timeout: Option<u64>,
        retries: u32,
        shell: Option<String>,
        env: Option<BTreeMap<String, String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let shared = self.shared.clone();
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
        awaitable(py, async move {
            let job = ops::run(h, a).await.py()?;
            Ok(AsyncJob::new(shared, job))
        })
    }

    /// A job by id.
    fn job<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let shared = self.shared.clone();
        awaitable(py, async move {
            let job = ops::job(h, id).await.py()?;
            Ok(AsyncJob::new(shared, job))
        })
    }

    /// Jobs, newest first.
    #[pyo3(signature = (*, limit=20, offset=0, status=None, created_by=None))]
    fn jobs<'py>(
        &self,
        py: Python<'py>,
        limit: u32,
        offset: u64,
        status: Option<String>,
        created_by: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let shared = self.shared.clone();
        let page = args::page(limit, offset);
        awaitable(py, async move {
            let list = ops::jobs(h, status, created_by, page).await.py()?;
            Ok(list
                .into_iter()
                .map(|j| AsyncJob::new(shared.clone(), j))
                .collect::<Vec<_>>())
        })
    }

    /// Audit records, newest first.
    #[pyo3(signature = (*, limit=50, offset=0, actor=None, resource_type=None, action=None))]
    fn audit<'py>(
        &self,
        py: Python<'py>,
        limit: u32,
        offset: u64,
        actor: Option<String>,
        resource_type: Option<String>,
        action: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let page = args::page(limit, offset);
        awaitable(py, async move {
            ops::audit(h, actor, resource_type, action, page).await.py()
        })
    }
}

/// A submitted job, for asyncio (see `Job`).
#[pyclass(frozen, module = "orca")]
pub struct AsyncJob {
    shared: Arc<Shared>,
    data: JobData,
}

impl AsyncJob {
    fn new(shared: Arc<Shared>, job: orca_core::model::Job) -> Self {
        AsyncJob {
            shared,
            data: job.into(),
        }
    }
}

#[pymethods]
impl AsyncJob {
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
            "AsyncJob(id={:?}, name={:?}, status={:?})",
            self.data.id.to_string(),
            self.data.name,
            self.data.status
        )
    }

    /// The job as it is now.
    fn refresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let shared = self.shared.clone();
        let id = self.data.id.to_string();
        awaitable(py, async move {
            let job = ops::job(h, id).await.py()?;
            Ok(AsyncJob::new(shared, job))
        })
    }

    /// Its events, for `async for` (see `Job.stream`).
    fn stream(&self) -> PyResult<AsyncJobStream> {
        let h = self.shared.handle().py()?;
        Ok(AsyncJobStream {
            job_id: self.data.id,
            handle: h,
            stream: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    /// Wait until the job ends (at most `timeout` seconds) and return its result.
    #[pyo3(signature = (timeout=None))]
    fn wait<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let t = ops::timeout(timeout).py()?;
        let id = self.data.id;
        awaitable(py, async move {
            ops::wait(h, id, t).await.py().map(JobResult::from)
        })
    }

    /// The result as it is now, without waiting.
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let id = self.data.id;
        awaitable(py, async move {
            ops::result(h, id).await.py().map(JobResult::from)
        })
    }

    /// Cancel (see `Job.cancel`).
    fn cancel<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.shared.handle().py()?;
        let id = self.data.id;
        awaitable(py, async move { ops::cancel(h, id).await.py() })
    }
}

/// Async iterator over a job's events (`orca.Event`).
#[pyclass(frozen, module = "orca")]
pub struct AsyncJobStream {
    job_id: orca_core::ids::JobId,
    handle: crate::shared::Handle,
    /// Started by the first `__anext__`.
    stream: Arc<tokio::sync::Mutex<Option<LineStream>>>,
}

#[pymethods]
impl AsyncJobStream {
    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stream = self.stream.clone();
        let h = self.handle.clone();
        let id = self.job_id;
        awaitable(py, async move {
            let mut g = stream.lock().await;
            if g.is_none() {
                *g = Some(ops::stream(h, id).await.py()?);
            }
            let next = match g.as_mut() {
                Some(s) => s.next().await,
                None => None,
            };
            match next.transpose().py()? {
                Some(e) => Ok(Event::from_line(id.to_string(), e)),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }
}
