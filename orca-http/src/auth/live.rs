//! Re-checking an accepted credential, for connections that outlive a request (the WebSocket):
//! is the user still active, with the same role and grants, and is the credential behind the
//! connection (the login session's anchor record, or the API token) still live?
//!
//! Nothing here is cached: every answer is read from the store.
//!
//! Connections learn of changes from [`AuthChanges`], a channel of this node fed by one task
//! that follows the event bus, so each connection sees only the rare `AuthChanged` events, not
//! every job and output event of the bus.

use std::collections::HashSet;
use std::sync::Arc;

use orca_core::auth::role_cap;
use orca_core::ids::UserId;
use orca_core::model::Principal;
use orca_core::{ErrorKind, Event, EventBus};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::{Caller, Credential, via_of};
use crate::error::ApiResult;
use crate::state::AppState;

/// Changes of users, grants or tokens announced on the event bus (this node's and, on
/// PostgreSQL, other nodes'): the user concerned, or `None` for anyone (also sent when the
/// follower lagged behind the bus and may have missed one).
pub(crate) type AuthChanges = broadcast::Sender<Option<UserId>>;

/// Forward every [`Event::AuthChanged`] that `bus` delivers (and `None` on each lag) to `out`,
/// until the bus closes or `out` is dropped. Subscribes before returning. Without a Tokio
/// runtime it does nothing (connections then still re-check on each subscribe and
/// periodically).
pub(crate) fn follow_auth_changes(bus: &Arc<dyn EventBus>, out: &AuthChanges) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let mut rx = bus.subscribe();
    let out = out.downgrade();
    handle.spawn(async move {
        loop {
            let change = match rx.recv().await {
                Ok(ev) => match ev.as_ref() {
                    Event::AuthChanged { user_id } => *user_id,
                    _ => continue,
                },
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => return,
            };
            let Some(out) = out.upgrade() else { return };
            // No receiver (no open connection) is fine.
            let _ = out.send(change);
        }
    });
}

/// Why a connection must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// The user was disabled or removed.
    UserDisabled,
    /// The login session ended (logout, password change, expiry...).
    SessionEnded,
    /// The API token was revoked or expired.
    TokenRevoked,
    /// The user's role or grants (or the token's role cap) changed.
    RightsChanged,
}

impl EndReason {
    /// A short reason for a WebSocket close frame (at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            EndReason::UserDisabled => "the user was disabled",
            EndReason::SessionEnded => "the session has ended; log in again",
            EndReason::TokenRevoked => "the API token was revoked or expired",
            EndReason::RightsChanged => "the user's role or grants changed; reconnect",
        }
    }
}

/// Whether two principals have the same rights (role and grants, in any order).
pub(crate) fn same_rights(a: &Principal, b: &Principal) -> bool {
    a.user_id == b.user_id
        && a.role == b.role
        && a.scopes.iter().collect::<HashSet<_>>() == b.scopes.iter().collect::<HashSet<_>>()
}

impl AppState {
    /// The caller behind `cred` as stored now (active user, role and grants read fresh, an API
    /// token's role cap applied), or why it may no longer act. Store failures are errors.
    pub(crate) async fn fresh_caller(
        &self,
        user: UserId,
        cred: &Credential,
    ) -> ApiResult<Result<Caller, EndReason>> {
        // The user first: disabling also ends the user's sessions and tokens, and "disabled"
        // is the better reason.
        let mut principal = match self.orca.principal_for(user).await {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::Unauthenticated => {
                return Ok(Err(EndReason::UserDisabled));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(rec) = self.orca.live_credential(user, cred).await? else {
            return Ok(Err(match cred {
                Credential::Session(_) => EndReason::SessionEnded,
                Credential::ApiToken { .. } => EndReason::TokenRevoked,
            }));
        };
        if let Some(cap) = role_cap(&rec) {
            principal.role = principal.role.min(cap);
        }
        Ok(Ok(Caller {
            principal,
            user_id: user,
            via: via_of(cred),
        }))
    }

    /// Re-check a connection's caller: the fresh caller if nothing changed, or why it ends.
    pub(crate) async fn recheck(
        &self,
        caller: &Caller,
        cred: &Credential,
    ) -> ApiResult<Result<Caller, EndReason>> {
        Ok(match self.fresh_caller(caller.user_id, cred).await? {
            Ok(fresh) if same_rights(&fresh.principal, &caller.principal) => Ok(fresh),
            Ok(_) => Err(EndReason::RightsChanged),
            Err(e) => Err(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orca_core::LocalBus;
    use orca_core::ids::JobId;
    use orca_core::model::{JobStatus, Role, Scope};
    use std::time::Duration;

    #[tokio::test]
    async fn only_auth_changes_are_forwarded() {
        let bus: Arc<dyn EventBus> = Arc::new(LocalBus::new(16));
        let (out, _) = broadcast::channel(16);
        follow_auth_changes(&bus, &out);
        let mut rx = out.subscribe();
        let user = UserId::new();
        bus.publish(vec![
            Event::Job {
                job_id: JobId::new(),
                status: JobStatus::Running,
            },
            Event::AuthChanged {
                user_id: Some(user),
            },
            Event::AuthChanged { user_id: None },
        ])
        .await
        .unwrap();
        for want in [Some(user), None] {
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            assert_eq!(got.unwrap().unwrap(), want);
        }
    }

    #[test]
    fn rights_compare_role_and_grants_in_any_order() {
        let user = UserId::new();
        let p = |role, scopes: Vec<Scope>| Principal {
            user_id: Some(user),
            name: "u".into(),
            role,
            scopes,
        };
        let a = Scope::Tag("web".into());
        let b = Scope::Tag("db".into());
        assert!(same_rights(
            &p(Role::Viewer, vec![a.clone(), b.clone()]),
            &p(Role::Viewer, vec![b.clone(), a.clone()])
        ));
        assert!(!same_rights(
            &p(Role::Viewer, vec![a.clone()]),
            &p(Role::Operator, vec![a.clone()])
        ));
        assert!(!same_rights(
            &p(Role::Viewer, vec![a]),
            &p(Role::Viewer, vec![])
        ));
    }
}
