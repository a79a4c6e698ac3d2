//! Who acts, and on whose behalf: the [`Actor`] every facade operation takes.
//!
//! An actor is a [`Principal`] (who: user, role, grants) and a [`Ctx`] (where the action came
//! from: request id, client address, user agent). The facade checks policy with the principal
//! and writes the context into every audit record it writes for the action, so HTTP, the CLI
//! and Python produce records of the same shape. Frontends only build the value.
//!
//! A bare [`Principal`] is an actor with no context (embedding code, tests): every facade
//! operation accepts either, through [`AsActor`].

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::model::Principal;

/// Where an action came from. Cheap to clone; clones share the count of audit records written
/// for it (see [`Ctx::audits`]).
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// The request id (an HTTP `x-request-id`, or one made per CLI or Python call).
    pub request_id: Option<String>,
    /// The client address (HTTP peer or trusted proxy's `X-Forwarded-For`; `local` for the
    /// CLI and Python, which run on the machine).
    pub client: Option<String>,
    /// The client's user agent (HTTP `User-Agent`, or the frontend and its version).
    pub user_agent: Option<String>,
    audits: Arc<AtomicU32>,
}

impl Ctx {
    /// A context with a fresh request id, for one call of a frontend that has no request id
    /// of its own (a CLI verb, a Python call), `client` `local` and `user_agent` as given.
    pub fn local(user_agent: impl Into<String>) -> Self {
        Ctx {
            request_id: Some(uuid::Uuid::now_v7().to_string()),
            client: Some("local".into()),
            user_agent: Some(user_agent.into()),
            audits: Arc::default(),
        }
    }

    /// A context with these fields (an HTTP request's).
    pub fn new(request_id: String, client: String, user_agent: Option<String>) -> Self {
        Ctx {
            request_id: Some(request_id),
            client: Some(client),
            user_agent,
            audits: Arc::default(),
        }
    }

    /// How many audit records the facade has written for this context (and its clones), so a
    /// frontend can write one of its own only for an action the facade did not audit.
    pub fn audits(&self) -> u32 {
        self.audits.load(Ordering::SeqCst)
    }

    pub(crate) fn count_audit(&self) {
        self.audits.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the context says anything (records of a bare principal carry no context).
    pub(crate) fn is_empty(&self) -> bool {
        self.request_id.is_none() && self.client.is_none() && self.user_agent.is_none()
    }
}

/// Who acts ([`Principal`]) and where from ([`Ctx`]).
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who.
    pub principal: Principal,
    /// Where from.
    pub ctx: Ctx,
}

impl Actor {
    /// `principal` acting in `ctx`.
    pub fn new(principal: Principal, ctx: Ctx) -> Self {
        Actor { principal, ctx }
    }
}

impl Deref for Actor {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// What facade operations take as "who acts": an [`Actor`], or a bare [`Principal`] (no
/// request context).
pub trait AsActor: Send + Sync {
    /// This as an actor.
    fn as_actor(&self) -> Cow<'_, Actor>;
}

impl AsActor for Actor {
    fn as_actor(&self) -> Cow<'_, Actor> {
        Cow::Borrowed(self)
    }
}

impl AsActor for Principal {
    fn as_actor(&self) -> Cow<'_, Actor> {
        Cow::Owned(Actor {
            principal: self.clone(),
            ctx: Ctx::default(),
        })
    }
}

impl<T: AsActor + ?Sized> AsActor for &T {
    fn as_actor(&self) -> Cow<'_, Actor> {
        (**self).as_actor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_audit_count() {
        let ctx = Ctx::local("test");
        let a = Actor::new(Principal::system("t"), ctx.clone());
        a.ctx.count_audit();
        assert_eq!(ctx.audits(), 1);
        assert!(!ctx.is_empty());
        assert!(Ctx::default().is_empty());
        assert_eq!(Principal::system("t").as_actor().ctx.audits(), 0);
    }
}
