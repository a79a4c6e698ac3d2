"""Orca, the job orchestrator, embedded in Python.

The same engine, states and errors as the Rust crate and the ``orca`` server, on the same
database: jobs run from a script show up in the server's API, CLI and audit log.

>>> import orca
>>> with orca.Orca.open(actor="me") as o:           # SQLite in ./orca-data (or a path / URL)
...     job = o.run("uname -a", systems=["local"])
...     for event in job.stream():                    # output lines and state changes, live
...         print(event)
...     print(job.wait().ok)

``orca.AsyncOrca`` offers the same operations for asyncio. Every error is an
``orca.OrcaError``; its subclasses name the kind (``orca.NotFound``, ``orca.InvalidInput``...).
"""

from ._orca import (
    AlreadyExists,
    AsyncJob,
    AsyncJobStream,
    AsyncOrca,
    AuditEntry,
    AuthFailed,
    Conflict,
    ConnectionFailed,
    Crypto,
    Event,
    ExecutionResult,
    HostKeyRejected,
    Incompatible,
    InvalidInput,
    Job,
    JobResult,
    JobStream,
    LeaseLost,
    NotFound,
    Orca,
    OrcaError,
    PermissionDenied,
    Storage,
    System,
    Timeout,
    Unauthenticated,
    Unexpected,
    Unsupported,
    __version__,
)

__all__ = [
    "AlreadyExists",
    "AsyncJob",
    "AsyncJobStream",
    "AsyncOrca",
    "AuditEntry",
    "AuthFailed",
    "Conflict",
    "ConnectionFailed",
    "Crypto",
    "Event",
    "ExecutionResult",
    "HostKeyRejected",
    "Incompatible",
    "InvalidInput",
    "Job",
    "JobResult",
    "JobStream",
    "LeaseLost",
    "NotFound",
    "Orca",
    "OrcaError",
    "PermissionDenied",
    "Storage",
    "System",
    "Timeout",
    "Unauthenticated",
    "Unexpected",
    "Unsupported",
    "__version__",
]
