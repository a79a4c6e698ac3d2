use super::Timestamp;
use crate::ids::{AuditId, UserId};

/// Whether an audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It was done.
    Success,
    /// It was refused by policy.
    Denied,
    /// It was attempted and failed.
    Failure,
}

impl AuditOutcome {
    /// Stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failure => "failure",
        }
    }
    /// Parse the text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "success" => Ok(Self::Success),
            "denied" => Ok(Self::Denied),
            "failure" => Ok(Self::Failure),
            o => Err(crate::Error::invalid(format!(
                "unknown audit outcome '{o}'"
            ))),
        }
    }
}

/// One audit record: who did what to which resource, when, and how it ended.
/// `details` never holds a secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Id.
    pub id: AuditId,
    /// When.
    pub at: Timestamp,
    /// Event type, e.g. `system`, `job`, `auth`.
    pub event_type: String,
    /// Who (user name, token name, or an internal actor such as `engine`).
    pub actor: String,
    /// The user id of the actor, if a user.
    pub actor_id: Option<UserId>,
    /// Resource type, e.g. `system`.
    pub resource_type: String,
    /// Resource id, if any.
    pub resource_id: Option<String>,
    /// Action, e.g. `create`.
    pub action: String,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// Free-form details (never secrets).
    pub details: serde_json::Value,
}

impl AuditRecord {
    /// A successful record by `actor` stamped `at`.
    pub fn new(
        at: Timestamp,
        actor: &super::Principal,
        resource_type: &str,
        resource_id: Option<String>,
        action: &str,
        details: serde_json::Value,
    ) -> Self {
        AuditRecord {
            id: AuditId::new(),
            at: super::micros(at),
            event_type: resource_type.to_string(),
            actor: actor.name.clone(),
            actor_id: actor.user_id,
            resource_type: resource_type.to_string(),
            resource_id,
            action: action.to_string(),
            outcome: AuditOutcome::Success,
            details,
        }
    }
    /// Same record with another outcome.
    pub fn with_outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }
}

/// Filter for audit listings. Empty fields match everything. Newest first.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this resource type.
    pub resource_type: Option<String>,
    /// Only this resource id.
    pub resource_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Not before.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
}

impl AuditFilter {
    /// Whether `r` passes the filter (for stores that filter in memory).
    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.actor.as_ref().is_none_or(|a| &r.actor == a)
            && self
                .resource_type
                .as_ref()
                .is_none_or(|a| &r.resource_type == a)
            && self
                .resource_id
                .as_ref()
                .is_none_or(|a| r.resource_id.as_ref() == Some(a))
            && self.action.as_ref().is_none_or(|a| &r.action == a)
            && self.since.is_none_or(|t| r.at >= t)
            && self.until.is_none_or(|t| r.at < t)
    }
}
