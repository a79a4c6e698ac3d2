//! Plain data classes handed to Python: systems, events, results, audit records.

use std::collections::BTreeMap;

use orca_core::model::{AuditRecord, Timestamp};
use orca_core::report::{ExecutionReport, JobReport, LineEvent};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "None".into())
}

/// A registered system (never its credential).
#[pyclass(frozen, module = "orca", get_all)]
#[derive(Debug, Clone)]
pub struct System {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Host name or address.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// `linux`, `windows` or `local`.
    pub r#type: String,
    /// Login user.
    pub username: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Whether jobs may select it.
    pub active: bool,
    /// `unknown`, `healthy` or `unhealthy`.
    pub health: String,
    /// Why the last probe failed.
    pub health_reason: Option<String>,
    /// `strict`, `tofu` or `insecure`.
    pub host_key_policy: String,
    /// Whether a credential is stored (it is never returned).
    pub has_credential: bool,
    /// Connector options.
    pub options: BTreeMap<String, String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last updated.
    pub updated_at: Timestamp,
}

#[pymethods]
impl System {
    fn __repr__(&self) -> String {
        format!(
            "System(name={:?}, type={:?}, hostname={:?}, port={}, tags={:?}, health={:?})",
            self.name, self.r#type, self.hostname, self.port, self.tags, self.health
        )
    }
}

impl From<orca_core::model::System> for System {
    fn from(s: orca_core::model::System) -> Self {
        System {
            id: s.id.to_string(),
            name: s.name,
            hostname: s.hostname,
            port: s.port,
            r#type: s.system_type.as_str().into(),
            username: s.username,
            tags: s.tags,
            active: s.active,
            health: s.health.status.as_str().into(),
            health_reason: s.health.reason,
            host_key_policy: s.host_key_policy.as_str().into(),
            has_credential: s.credential.is_some(),
            options: s.options,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Something that happened to a job: a line of output, or a state change.
#[pyclass(frozen, module = "orca", get_all)]
#[derive(Debug, Clone)]
pub struct Event {
    /// `output`, `execution` or `job`.
    pub kind: String,
    /// The job.
    pub job_id: String,
    /// The execution (output and execution events).
    pub execution_id: Option<String>,
    /// The system's name (output and execution events).
    pub system: Option<String>,
    /// `stdout` or `stderr` (output events).
    pub stream: Option<String>,
    /// The line without its end of line (output events).
    pub text: Option<String>,
    /// The new state (execution and job events).
    pub status: Option<String>,
}

#[pymethods]
impl Event {
    fn __repr__(&self) -> String {
        match self.kind.as_str() {
            "output" => format!(
                "Event(output, system={}, stream={}, text={:?})",
                opt(&self.system),
                opt(&self.stream),
                self.text.as_deref().unwrap_or("")
            ),
            "execution" => format!(
                "Event(execution, system={}, status={})",
                opt(&self.system),
                opt(&self.status)
            ),
            _ => format!("Event(job, status={})", opt(&self.status)),
        }
    }
}

impl Event {
    /// Convert a line event of job `job_id`.
    pub fn from_line(job_id: String, e: LineEvent) -> Self {
        let blank = Event {
            kind: String::new(),
            job_id,
            execution_id: None,
            system: None,
            stream: None,
            text: None,
            status: None,
        };
        match e {
            LineEvent::Line {
                execution_id,
                system,
                stream,
                text,
                ..
            } => Event {
                kind: "output".into(),
                execution_id: Some(execution_id.to_string()),
                system: Some(system),
                stream: Some(stream.as_str().into()),
                text: Some(text),
                ..blank
            },
            LineEvent::Execution {
                execution_id,
                system,
                status,
                ..
            } => Event {
                kind: "execution".into(),
                execution_id: Some(execution_id.to_string()),
                system: Some(system),
                status: Some(status.as_str().into()),
                ..blank
            },
            LineEvent::Job { status, .. } => Event {
                kind: "job".into(),
                status: Some(status.as_str().into()),
                ..blank
            },
        }
    }
}

/// How a job went on one system.
#[pyclass(frozen, module = "orca", get_all)]
#[derive(Debug, Clone)]
pub struct ExecutionResult {
    /// Execution id.
    pub id: String,
    /// The system's name.
    pub system: String,
    /// The system's id.
    pub system_id: String,
    /// `pending`, `running`, `completed`, `failed`, `timeout`, `cancelled` or `lost`.
    pub status: String,
    /// Exit code, if the command exited.
    pub exit_code: Option<i32>,
    /// Signal name, if the command was killed by one.
    pub signal: Option<String>,
    /// Why it failed (connection error, timeout...).
    pub error: Option<String>,
    /// Standard output (UTF-8, invalid bytes replaced).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub completed_at: Option<Timestamp>,
    /// Output bytes dropped by the output cap.
    pub output_dropped: u64,
}

#[pymethods]
impl ExecutionResult {
    /// Whether it completed (exit code 0).
    #[getter]
    fn ok(&self) -> bool {
        self.status == "completed"
    }
    fn __repr__(&self) -> String {
        format!(
            "ExecutionResult(system={:?}, status={:?}, exit_code={}, error={})",
            self.system,
            self.status,
            opt(&self.exit_code),
            self.error
                .as_ref()
                .map(|e| format!("{e:?}"))
                .unwrap_or_else(|| "None".into())
        )
    }
}

impl From<ExecutionReport> for ExecutionResult {
    fn from(r: ExecutionReport) -> Self {
        let e = r.execution;
        ExecutionResult {
            id: e.id.to_string(),
            system: r.system,
            system_id: e.system_id.to_string(),
            status: e.status.as_str().into(),
            exit_code: e.exit_code,
            signal: e.signal,
            error: e.error,
            stdout: String::from_utf8_lossy(&r.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&r.stderr).into_owned(),
            attempt: e.attempt,
            started_at: e.started_at,
            completed_at: e.completed_at,
            output_dropped: e.output_dropped,
        }
    }
}

/// A job's result: its status and, per system, what happened.
#[pyclass(frozen, module = "orca", get_all)]
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The job's id.
    pub job_id: String,
    /// Its name.
    pub name: String,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// One result per system, in the order they were created.
    pub executions: Vec<ExecutionResult>,
}

#[pymethods]
impl JobResult {
    /// Whether every execution completed.
    #[getter]
    fn ok(&self) -> bool {
        self.status == "completed"
    }
    /// The result on the system with this name.
    fn __getitem__(&self, system: &str) -> PyResult<ExecutionResult> {
        self.executions
            .iter()
            .find(|e| e.system == system)
            .cloned()
            .ok_or_else(|| PyKeyError::new_err(format!("the job did not run on '{system}'")))
    }
    fn __len__(&self) -> usize {
        self.executions.len()
    }
    fn __repr__(&self) -> String {
        format!(
            "JobResult(job_id={:?}, status={:?}, executions={})",
            self.job_id,
            self.status,
            self.executions.len()
        )
    }
}

impl From<JobReport> for JobResult {
    fn from(r: JobReport) -> Self {
        JobResult {
            job_id: r.job.id.to_string(),
            name: r.job.name,
            status: r.job.status.as_str().into(),
            executions: r.executions.into_iter().map(Into::into).collect(),
        }
    }
}

/// One audit record: who did what, when, and how it ended.
#[pyclass(frozen, module = "orca")]
#[derive(Debug, Clone)]
pub struct AuditEntry {
    #[pyo3(get)]
    id: String,
    #[pyo3(get)]
    at: Timestamp,
    #[pyo3(get)]
    actor: String,
    #[pyo3(get)]
    event_type: String,
    #[pyo3(get)]
    resource_type: String,
    #[pyo3(get)]
    resource_id: Option<String>,
    #[pyo3(get)]
    action: String,
    #[pyo3(get)]
    outcome: String,
    details_json: String,
}

#[pymethods]
impl AuditEntry {
    /// Free-form details (never secrets), as Python data.
    #[getter]
    fn details<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?
            .call_method1("loads", (self.details_json.as_str(),))
    }
    fn __repr__(&self) -> String {
        format!(
            "AuditEntry(at={:?}, actor={:?}, action={:?}, resource={}:{}, outcome={:?})",
            self.at.to_rfc3339(),
            self.actor,
            self.action,
            self.resource_type,
            self.resource_id.as_deref().unwrap_or("-"),
            self.outcome
        )
    }
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        AuditEntry {
            id: r.id.to_string(),
            at: r.at,
            actor: r.actor,
            event_type: r.event_type,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            action: r.action,
            outcome: r.outcome.as_str().into(),
            details_json: r.details.to_string(),
        }
    }
}
