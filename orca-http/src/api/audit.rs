//! `/api/v1/audit`: the audit log (admins).

use orca_core::model::{AuditFilter, AuditRecord, Timestamp};
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::enums::AuditOutcome;
use super::{BearerAuth, Tag, list_type, page};
use crate::error::ApiResult;
use crate::state::AppState;

/// Audit operations.
pub(crate) struct AuditApi(pub AppState);

/// One audit record.
#[derive(Debug, Clone, Object)]
#[oai(rename = "AuditRecord", skip_serializing_if_is_none)]
pub(crate) struct AuditDto {
    /// Id.
    pub id: uuid::Uuid,
    /// When.
    pub at: Timestamp,
    /// Who (user name, or an internal actor such as `engine`).
    pub actor: String,
    /// The user id of the actor, if a user.
    pub actor_id: Option<uuid::Uuid>,
    /// Resource type, e.g. `system`, `job`, `auth`, `http`.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Action, e.g. `create`, `login`.
    pub action: String,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// Details (never secrets); `request_id` and `client_address` for actions over HTTP.
    pub details: serde_json::Value,
}

impl From<AuditRecord> for AuditDto {
    fn from(r: AuditRecord) -> Self {
        AuditDto {
            id: r.id.as_uuid(),
            at: r.at,
            actor: r.actor,
            actor_id: r.actor_id.map(|u| u.as_uuid()),
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            action: r.action,
            outcome: r.outcome.into(),
            details: r.details,
        }
    }
}

list_type!(
    AuditList,
    AuditDto,
    "A page of audit records, newest first."
);

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Audit")]
impl AuditApi {
    /// Search the audit log
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/audit", method = "get", operation_id = "list_audit")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Only this actor.
        #[oai(validator(max_length = 128))]
        actor: Query<Option<String>>,
        /// Only this resource type.
        #[oai(validator(max_length = 64))]
        resource_type: Query<Option<String>>,
        /// Only this resource id.
        #[oai(validator(max_length = 255))]
        resource_id: Query<Option<String>>,
        /// Only this action.
        #[oai(validator(max_length = 64))]
        action: Query<Option<String>>,
        /// Not before (RFC 3339).
        since: Query<Option<Timestamp>>,
        /// Before (RFC 3339).
        until: Query<Option<Timestamp>>,
        /// Items to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
        offset: Query<Option<u64>>,
        /// Page size (1-1000).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<AuditList>> {
        let caller = self.0.caller(&auth).await?;
        let p = page(offset.0, limit.0);
        let filter = AuditFilter {
            actor: actor.0,
            resource_type: resource_type.0,
            resource_id: resource_id.0,
            action: action.0,
            since: since.0,
            until: until.0,
        };
        let v = self.0.orca.audit_log(&caller.actor(), &filter, p).await?;
        Ok(Json(AuditList::new(
            v.into_iter().map(Into::into).collect(),
            p,
        )))
    }
}
