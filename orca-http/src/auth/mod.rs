//! Authentication over HTTP: bearer credentials (access tokens, which are JWTs naming a login
//! session, and API tokens), and the endpoints' side of login, refresh, logout, API tokens
//! and WebSocket tickets. The rules themselves (sessions, rotating refresh tokens whose reuse
//! revokes the family, API tokens shown once, one-time tickets, audit records, announcing
//! changes) are the facade's: [`orca_core::Orca::login`] and its neighbours.
//!
//! Every authenticated request reads the user's role, active flag and grants fresh
//! ([`orca_core::Orca::principal_for`]) and checks that its session is still open, so logout,
//! disabling a user and role changes take effect on the next request. A verified credential and
//! what was read with it are reused for at most `http.auth.cache_ttl_ms` (module `cache`); changes
//! made on this node end that reuse at once, changes made on another node as soon as they arrive
//! on the event bus.

pub(crate) mod cache;
pub(crate) mod cookie;
pub mod jwt;
mod live;
pub mod password;
mod session;
mod throttle;
mod tokens;

use orca_core::ids::UserId;
use orca_core::model::Principal;
use orca_core::{Actor, TicketCredential};

#[cfg(test)]
pub(crate) use live::EndReason;
pub(crate) use live::{AuthChanges, follow_auth_changes};
pub use password::{hash_password, hash_password_async, verify_password};
pub use session::TokenPair;
pub use tokens::ApiTokenCreated;

/// How a caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// An access token of a login session.
    Session(uuid::Uuid),
    /// An API token.
    ApiToken(uuid::Uuid),
}

/// An authenticated caller: the principal as stored now.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: Principal,
    pub user_id: UserId,
    pub via: Via,
}

impl Caller {
    /// The caller acting in the current request (its id, client address and user agent), as
    /// the facade takes it.
    pub fn actor(&self) -> Actor {
        Actor::new(self.principal.clone(), crate::context::core())
    }
}

/// The credential a caller authenticated with, as a WebSocket ticket carries it.
pub(crate) type Credential = TicketCredential;

/// How a caller with `cred` authenticated.
pub(crate) fn via_of(cred: &Credential) -> Via {
    match cred {
        TicketCredential::Session(sid) => Via::Session(*sid),
        TicketCredential::ApiToken { id, .. } => Via::ApiToken(*id),
    }
}
