//! The Tokio runtime the bindings run on, and blocking calls that release the GIL and honour
//! Ctrl-C.

use std::future::Future;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::{Unexpected, to_py_err};

/// How often a blocked call wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// The one multi-threaded runtime shared by the sync and the asyncio API (the one
/// `pyo3-async-runtimes` drives awaitables on).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Run `fut` on the runtime and wait for it with the GIL released.
///
/// Every few milliseconds the caller takes the GIL back to run Python's signal handlers: a
/// `KeyboardInterrupt` (or any exception a handler raises) abandons the wait and is raised;
/// the future is dropped, which cancels only the waiting, never the job.
pub fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = orca_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = sync_channel(1);
    let task = runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    let mut rx = rx;
    loop {
        // The receiver moves into the GIL-free closure and back (it is `Send`, not `Sync`).
        let (got, back) = py.detach(move || (rx.recv_timeout(SIGNAL_CHECK), rx));
        rx = back;
        match got {
            Ok(r) => return r.map_err(to_py_err),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    task.abort();
                    return Err(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Unexpected::new_err(
                    "the operation stopped without an answer (a bug in orca: please report it)",
                ));
            }
        }
    }
}

/// An awaitable for asyncio that runs `fut` on the runtime.
pub fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, fut)
}
