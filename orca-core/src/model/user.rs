use super::Timestamp;
use crate::ids::{SystemId, UserId};

/// A user's role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads what its grants let it see.
    Viewer,
    /// Also runs and cancels jobs on the systems its grants cover.
    Operator,
    /// Everything, on every system.
    Admin,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            o => Err(crate::Error::invalid(format!(
                "unknown role '{o}': use admin, operator or viewer"
            ))),
        }
    }
}

/// Which systems a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Scope {
    /// Every system.
    All,
    /// One system.
    System(SystemId),
    /// Every system with this tag.
    Tag(String),
}

/// A grant of a scope to a user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// The user.
    pub user_id: UserId,
    /// The scope.
    pub scope: Scope,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Password hash (argon2id PHC string); never leaves through an API.
    #[serde(skip_serializing, default)]
    pub password_hash: Option<String>,
    /// Disabled users cannot act.
    pub active: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
}

/// What a caller gives to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Password hash, computed by the frontend's password hasher.
    pub password_hash: Option<String>,
}

/// Who is acting: a user (with role and grants read fresh for the request) or an internal actor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    /// The user, if a user.
    pub user_id: Option<UserId>,
    /// A name for audit records.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Scopes (admins see everything regardless).
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// An internal actor with admin rights (the engine, the CLI's admin verbs, embedding code).
    pub fn system(name: &str) -> Self {
        Principal {
            user_id: None,
            name: name.to_string(),
            role: Role::Admin,
            scopes: vec![Scope::All],
        }
    }
    /// A principal for a user with its grants.
    pub fn user(user: &User, grants: &[Grant]) -> Self {
        Principal {
            user_id: Some(user.id),
            name: user.username.clone(),
            role: user.role,
            scopes: grants.iter().map(|g| g.scope.clone()).collect(),
        }
    }
}
