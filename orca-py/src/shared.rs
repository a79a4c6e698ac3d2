//! The state behind `Orca` / `AsyncOrca`: the facade and the acting principal, until closed.

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use orca_core::model::Principal;
use orca_core::{Actor, Ctx, Error, ErrorKind, Orca};

use crate::open::Opened;

/// Every Orca opened in this process (closed at interpreter exit).
static OPEN: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// What every call needs: the facade and who acts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    /// The facade.
    pub orca: Orca,
    /// Who acts (audited).
    pub principal: Arc<Principal>,
}

impl Handle {
    /// Who acts in one call: the principal, with a request id of the call's own, client
    /// `local` and user agent `orca-py/<version>` (audit records of every frontend have the
    /// same shape).
    pub fn actor(&self) -> Actor {
        Actor::new(
            (*self.principal).clone(),
            Ctx::local(concat!("orca-py/", env!("CARGO_PKG_VERSION"))),
        )
    }
}

#[derive(Debug)]
struct Open {
    handle: Handle,
    engine: bool,
}

/// An open or closed Orca, shared by the objects made from it (jobs, streams).
#[derive(Debug)]
pub struct Shared {
    state: RwLock<Option<Open>>,
    actor: String,
    engine: bool,
    location: String,
}

impl Shared {
    /// Shared state of a freshly opened Orca, remembered so it can be closed at exit.
    pub fn new(o: Opened) -> Arc<Self> {
        let actor = o.principal.name.clone();
        let shared = Arc::new(Shared {
            actor,
            engine: o.engine,
            location: o.location,
            state: RwLock::new(Some(Open {
                handle: Handle {
                    orca: o.orca,
                    principal: Arc::new(o.principal),
                },
                engine: o.engine,
            })),
        });
        let mut all = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&shared));
        shared
    }

    /// Every Orca of this process that is still open.
    pub fn all_open() -> Vec<Arc<Shared>> {
        let all = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .filter_map(Weak::upgrade)
            .filter(|s| !s.is_closed())
            .collect()
    }

    /// The handle, or a `Conflict` error once closed.
    pub fn handle(&self) -> orca_core::Result<Handle> {
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        g.as_ref().map(|o| o.handle.clone()).ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                format!(
                    "this Orca ({}) is closed: open a new one with Orca.open()",
                    self.location
                ),
            )
        })
    }

    /// Close: stop the engine (if this process runs it), letting running executions finish
    /// within `grace`. Closing twice does nothing.
    pub async fn close(&self, grace: Duration) -> orca_core::Result<()> {
        let open = self.state.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(o) = open
            && o.engine
        {
            o.handle.orca.shutdown(grace).await?;
        }
        Ok(())
    }

    /// Whether it was closed.
    pub fn is_closed(&self) -> bool {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// The actor.
    pub fn actor(&self) -> &str {
        &self.actor
    }
    /// Whether this process runs the engine.
    pub fn engine(&self) -> bool {
        self.engine
    }
    /// Where the data is (password hidden).
    pub fn location(&self) -> &str {
        &self.location
    }
}
