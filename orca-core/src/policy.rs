//! Access policy: one pure function decides what a principal may do.
//!
//! Roles: `admin` (everything), `operator` (see, probe and run on systems in scope; cancel and
//! read jobs there), `viewer` (see systems, jobs and output in scope). Scopes (grants) say which
//! systems: all, one system, or every system carrying a tag. Objects outside the caller's scope
//! are *hidden* (frontends answer "not found"), not merely denied.
//!
//! Systems of type `local` run commands on the orchestrator itself, next to Orca's own data:
//! they are outside every `all` grant. Only admins, and grants that name them (by id, or by a
//! tag they carry), reach them.
//!
//! Executions are scoped by their own system: reading an execution, its output, cancelling or
//! retrying it needs that system in scope, whatever else the job touched.

use crate::model::{Principal, Role, Scope, System, SystemType};

/// Something a principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See a system (and list it).
    SystemRead,
    /// Register a system.
    SystemCreate,
    /// Change a system (including its credential).
    SystemUpdate,
    /// Remove a system.
    SystemDelete,
    /// Run a health probe.
    SystemProbe,
    /// Approve, pin or replace host keys.
    HostKeyManage,
    /// Run a job on a system.
    JobRun,
    /// See a job / execution / output on a system.
    JobRead,
    /// Cancel or retry a job / execution on a system.
    JobCancel,
    /// Read the audit log.
    AuditRead,
    /// Manage users and grants.
    UserManage,
    /// Manage encryption keys (re-encrypt credentials).
    KeyManage,
    /// Read the server's operational metrics (every system's probe latency, queue depth...).
    MetricsRead,
}

impl Action {
    /// All actions.
    pub const ALL: [Action; 13] = [
        Action::SystemRead,
        Action::SystemCreate,
        Action::SystemUpdate,
        Action::SystemDelete,
        Action::SystemProbe,
        Action::HostKeyManage,
        Action::JobRun,
        Action::JobRead,
        Action::JobCancel,
        Action::AuditRead,
        Action::UserManage,
        Action::KeyManage,
        Action::MetricsRead,
    ];

    /// Whether the action concerns a particular system (and so depends on scope).
    pub fn is_scoped(self) -> bool {
        matches!(
            self,
            Action::SystemRead
                | Action::SystemUpdate
                | Action::SystemDelete
                | Action::SystemProbe
                | Action::HostKeyManage
                | Action::JobRun
                | Action::JobRead
                | Action::JobCancel
        )
    }

    /// Whether the action changes something (denials of these are audited).
    pub fn is_mutating(self) -> bool {
        !matches!(
            self,
            Action::SystemRead | Action::JobRead | Action::AuditRead | Action::MetricsRead
        )
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SystemRead => "system.read",
            Action::SystemCreate => "system.create",
            Action::SystemUpdate => "system.update",
            Action::SystemDelete => "system.delete",
            Action::SystemProbe => "system.probe",
            Action::HostKeyManage => "hostkey.manage",
            Action::JobRun => "job.run",
            Action::JobRead => "job.read",
            Action::JobCancel => "job.cancel",
            Action::AuditRead => "audit.read",
            Action::UserManage => "user.manage",
            Action::KeyManage => "key.manage",
            Action::MetricsRead => "metrics.read",
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// The principal may see the object but not do this.
    Deny,
    /// The object is outside the principal's scope: behave as if it did not exist.
    Hidden,
}

/// Whether `system` is within the principal's scopes. An `all` grant covers every system but
/// those of type `local` (the orchestrator itself), which a grant must name.
pub fn in_scope(principal: &Principal, system: &System) -> bool {
    principal.role == Role::Admin
        || principal.scopes.iter().any(|s| match s {
            Scope::All => system.system_type != SystemType::Local,
            Scope::System(id) => *id == system.id,
            Scope::Tag(t) => system.tags.iter().any(|x| x == t),
        })
}

fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Admin => true,
        Role::Operator => matches!(
            action,
            SystemRead | SystemProbe | JobRun | JobRead | JobCancel
        ),
        Role::Viewer => matches!(action, SystemRead | JobRead),
    }
}

/// The one decision function. `system` is the system the action is about, for scoped actions
/// (None for unscoped ones, or for "may this principal do it on some system at all").
pub fn decide(principal: &Principal, action: Action, system: Option<&System>) -> Decision {
    if let (true, Some(sys)) = (action.is_scoped(), system)
        && !in_scope(principal, sys)
    {
        return Decision::Hidden;
    }
    if role_allows(principal.role, action) {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// `decide`, as a `Result`: `Hidden` → `NotFound`, `Deny` → `PermissionDenied`.
pub fn check(principal: &Principal, action: Action, system: Option<&System>) -> crate::Result<()> {
    match decide(principal, action, system) {
        Decision::Allow => Ok(()),
        Decision::Hidden => Err(crate::Error::not_found(match system {
            Some(s) => format!("system '{}' not found", s.name),
            None => "not found".to_string(),
        })),
        Decision::Deny => Err(crate::Error::denied(format!(
            "{} '{}' may not {}",
            principal.role.as_str(),
            principal.name,
            action.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SystemId;
    use crate::model::{Health, HostKeyPolicy, SystemType};

    fn sys(tags: &[&str]) -> System {
        let now = chrono::Utc::now();
        System {
            id: SystemId::new(),
            name: "s".into(),
            hostname: "h".into(),
            port: 22,
            system_type: SystemType::Linux,
            username: "u".into(),
            credential: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            active: true,
            health: Health::default(),
            host_key_policy: HostKeyPolicy::Strict,
            options: Default::default(),
            created_at: now,
            updated_at: now,
        }
    }

    fn who(role: Role, scopes: Vec<Scope>) -> Principal {
        Principal {
            user_id: None,
            name: "p".into(),
            role,
            scopes,
        }
    }

    /// Every action × role × scope, checked against a table written out by hand.
    #[test]
    fn decision_table() {
        use Action::*;
        use Decision::*;
        let web = sys(&["web"]);
        // (action, admin, operator-in-scope, viewer-in-scope)
        let table: [(Action, Decision, Decision, Decision); 13] = [
            (SystemRead, Allow, Allow, Allow),
            (SystemCreate, Allow, Deny, Deny),
            (SystemUpdate, Allow, Deny, Deny),
            (SystemDelete, Allow, Deny, Deny),
            (SystemProbe, Allow, Allow, Deny),
            (HostKeyManage, Allow, Deny, Deny),
            (JobRun, Allow, Allow, Deny),
            (JobRead, Allow, Allow, Allow),
            (JobCancel, Allow, Allow, Deny),
            (AuditRead, Allow, Deny, Deny),
            (UserManage, Allow, Deny, Deny),
            (KeyManage, Allow, Deny, Deny),
            (MetricsRead, Allow, Deny, Deny),
        ];
        assert_eq!(table.len(), Action::ALL.len());
        let scopes_in = [Scope::All, Scope::Tag("web".into()), Scope::System(web.id)];
        let scopes_out = [
            vec![],
            vec![Scope::Tag("db".into())],
            vec![Scope::System(SystemId::new())],
        ];
        for (action, admin, op, viewer) in table {
            // Admin: always, whatever the scope.
            assert_eq!(
                decide(&who(Role::Admin, vec![]), action, Some(&web)),
                admin,
                "{action:?}"
            );
            for s in &scopes_in {
                assert_eq!(
                    decide(&who(Role::Operator, vec![s.clone()]), action, Some(&web)),
                    op,
                    "{action:?} {s:?}"
                );
                assert_eq!(
                    decide(&who(Role::Viewer, vec![s.clone()]), action, Some(&web)),
                    viewer,
                    "{action:?} {s:?}"
                );
            }
            for s in &scopes_out {
                for role in [Role::Operator, Role::Viewer] {
                    let expect = if action.is_scoped() {
                        Hidden
                    } else if role_allows(role, action) {
                        Allow
                    } else {
                        Deny
                    };
                    assert_eq!(
                        decide(&who(role, s.clone()), action, Some(&web)),
                        expect,
                        "{action:?} {role:?} {s:?}"
                    );
                }
            }
            // Without a system: role alone.
            for (role, d) in [(Role::Operator, op), (Role::Viewer, viewer)] {
                assert_eq!(
                    decide(&who(role, vec![]), action, None),
                    d,
                    "{action:?} {role:?} none"
                );
            }
        }
    }

    /// F3: an `all` grant does not reach the orchestrator itself; a grant naming it does.
    #[test]
    fn local_systems_need_a_grant_that_names_them() {
        let mut local = sys(&["local"]);
        local.system_type = SystemType::Local;
        let all = who(Role::Operator, vec![Scope::All]);
        assert_eq!(decide(&all, Action::JobRun, Some(&local)), Decision::Hidden);
        assert_eq!(
            decide(&all, Action::JobRead, Some(&local)),
            Decision::Hidden
        );
        for named in [Scope::System(local.id), Scope::Tag("local".into())] {
            let op = who(Role::Operator, vec![Scope::All, named.clone()]);
            assert_eq!(
                decide(&op, Action::JobRun, Some(&local)),
                Decision::Allow,
                "{named:?}"
            );
        }
        assert_eq!(
            decide(&who(Role::Admin, vec![]), Action::JobRun, Some(&local)),
            Decision::Allow
        );
        // Other types stay covered by `all`.
        assert_eq!(
            decide(&all, Action::JobRun, Some(&sys(&[]))),
            Decision::Allow
        );
    }

    #[test]
    fn check_maps_to_error_kinds() {
        let web = sys(&["web"]);
        let v = who(Role::Viewer, vec![Scope::Tag("web".into())]);
        assert_eq!(
            check(&v, Action::JobRun, Some(&web)).unwrap_err().kind(),
            crate::ErrorKind::PermissionDenied
        );
        let out = who(Role::Viewer, vec![]);
        assert_eq!(
            check(&out, Action::SystemRead, Some(&web))
                .unwrap_err()
                .kind(),
            crate::ErrorKind::NotFound
        );
        assert!(check(&v, Action::SystemRead, Some(&web)).is_ok());
    }
}
