//! # orca-py
//!
//! Python bindings of Orca (`import orca`), built with maturin: the native module
//! `orca._orca`, re-exported by the `orca` package (`python/orca/__init__.py`).
//!
//! The bindings hold no rules: each method converts its arguments, calls the
//! [`orca_core::Orca`] facade and converts the result. Blocking methods release the GIL and
//! honour Ctrl-C; `AsyncOrca` returns awaitables on the same Tokio runtime.
//!
//! ```text
//! pip install ./orca-py
//! python -c 'import orca; o = orca.Orca.open(); print(o.run("uname -a", systems=["local"]).wait())'
//! ```

mod args;
mod async_api;
mod errors;
mod open;
mod ops;
mod runtime;
mod shared;
mod sync_api;
mod types;

use std::time::Duration;

use pyo3::prelude::*;

/// Close every Orca of this process that is still open (registered with `atexit`), so an
/// engine running here stops cleanly when the interpreter exits.
#[pyfunction]
fn _close_all(py: Python<'_>) -> PyResult<()> {
    for s in shared::Shared::all_open() {
        runtime::block_on(py, async move { s.close(Duration::from_secs(5)).await })?;
    }
    Ok(())
}

/// The native module.
#[pymodule(name = "_orca")]
fn orca_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<sync_api::Orca>()?;
    m.add_class::<sync_api::Job>()?;
    m.add_class::<sync_api::JobStream>()?;
    m.add_class::<async_api::AsyncOrca>()?;
    m.add_class::<async_api::AsyncJob>()?;
    m.add_class::<async_api::AsyncJobStream>()?;
    m.add_class::<types::System>()?;
    m.add_class::<types::Event>()?;
    m.add_class::<types::JobResult>()?;
    m.add_class::<types::ExecutionResult>()?;
    m.add_class::<types::AuditEntry>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Private: kept out of `__all__` (which `add_function` would extend).
    let close_all = wrap_pyfunction!(_close_all, m)?;
    m.as_any().setattr("_close_all", &close_all)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (close_all,))?;
    Ok(())
}
