//! `/api/v1/systems`: registered systems, health probes and SSH host keys.

use std::collections::BTreeMap;

use orca_core::model::{
    Credential, Health, HostKey, NewSystem, System, SystemFilter, SystemPatch, Timestamp,
};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use secrecy::SecretString;

use super::auth::{Created, NoContent};
use super::enums::{HealthStatus, HostKeyPolicy, SystemType};
use super::text::{Text, string_map, strings};
use super::{BearerAuth, Tag, list_type, page};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// System operations.
pub(crate) struct SystemsApi(pub AppState);

/// A credential: a password, or a private key with an optional passphrase. Write-only: never
/// returned by any operation.
#[derive(Object)]
#[oai(deny_unknown_fields, write_only_all)]
pub(crate) struct CredentialInput {
    /// A password.
    #[oai(validator(max_length = 4096))]
    pub password: Option<Text>,
    /// A private key (OpenSSH or PEM text).
    #[oai(validator(max_length = 65536))]
    pub private_key: Option<Text>,
    /// The passphrase of the private key.
    #[oai(validator(max_length = 4096))]
    pub passphrase: Option<Text>,
}

impl TryFrom<CredentialInput> for Credential {
    type Error = ApiError;
    fn try_from(c: CredentialInput) -> ApiResult<Credential> {
        match (c.password, c.private_key, c.passphrase) {
            (Some(p), None, None) => Ok(Credential::Password(SecretString::from(p.0))),
            (None, Some(k), pp) => Ok(Credential::PrivateKey {
                key: SecretString::from(k.0),
                passphrase: pp.map(|p| SecretString::from(p.0)),
            }),
            (None, None, None) => Ok(Credential::None),
            (Some(_), Some(_), _) => Err(ApiError::invalid(
                "give either a password or a private_key, not both",
            )),
            (_, None, Some(_)) => Err(ApiError::invalid("a passphrase goes with a private_key")),
        }
    }
}

/// Last known health of a system.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Health", skip_serializing_if_is_none)]
pub(crate) struct HealthDto {
    /// Status.
    pub status: HealthStatus,
    /// When it was checked.
    pub checked_at: Option<Timestamp>,
    /// Probe round trip in milliseconds.
    pub latency_ms: Option<u64>,
    /// Why it failed.
    pub reason: Option<String>,
}

impl From<Health> for HealthDto {
    fn from(h: Health) -> Self {
        HealthDto {
            status: h.status.into(),
            checked_at: h.checked_at,
            latency_ms: h.latency_ms,
            reason: h.reason,
        }
    }
}

/// A registered system. Its credential is never returned; `has_credential` says whether one
/// is stored.
#[derive(Debug, Clone, Object)]
#[oai(rename = "System", skip_serializing_if_is_none)]
pub(crate) struct SystemDto {
    /// Id.
    pub id: uuid::Uuid,
    /// Unique name.
    pub name: String,
    /// Host name or address.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Type.
    #[oai(rename = "type")]
    pub system_type: SystemType,
    /// Login user name.
    pub username: String,
    /// Whether a credential is stored.
    pub has_credential: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// Inactive systems are not selected by tags nor probed.
    pub active: bool,
    /// Last health.
    pub health: HealthDto,
    /// SSH host key policy.
    pub host_key_policy: HostKeyPolicy,
    /// Connector-specific settings.
    pub options: BTreeMap<String, String>,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
}

impl From<System> for SystemDto {
    fn from(s: System) -> Self {
        SystemDto {
            id: s.id.as_uuid(),
            name: s.name,
            hostname: s.hostname,
            port: s.port,
            system_type: s.system_type.into(),
            username: s.username,
            has_credential: s.credential.is_some(),
            tags: s.tags,
            active: s.active,
            health: s.health.into(),
            host_key_policy: s.host_key_policy.into(),
            options: s.options,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

list_type!(SystemList, SystemDto, "A page of systems.");

/// A system to register.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct CreateSystemRequest {
    /// Unique name: 1-255 letters, digits, `-`, `_`, `.` or `@`.
    #[oai(validator(min_length = 1, max_length = 255))]
    pub name: Text,
    /// Host name or address (default: the name; `localhost` for local).
    #[oai(validator(min_length = 1, max_length = 255))]
    pub hostname: Option<Text>,
    /// Port (default by type: 22, 5985).
    #[oai(validator(minimum(value = "1"), maximum(value = "65535")))]
    pub port: Option<u16>,
    /// Type (default `linux`).
    #[oai(rename = "type")]
    pub system_type: Option<SystemType>,
    /// Login user name (required except for local systems).
    #[oai(validator(max_length = 255))]
    pub username: Option<Text>,
    /// The credential (write-only).
    pub credential: Option<CredentialInput>,
    /// Tags: 1-64 letters, digits, `-_.:/` each.
    #[oai(validator(max_items = 64))]
    pub tags: Option<Vec<Text>>,
    /// SSH host key policy (default `strict`).
    pub host_key_policy: Option<HostKeyPolicy>,
    /// Connector-specific settings.
    pub options: Option<BTreeMap<String, Text>>,
}

/// A change of a system; absent fields stay.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct UpdateSystemRequest {
    /// Host name.
    #[oai(validator(min_length = 1, max_length = 255))]
    pub hostname: Option<Text>,
    /// Port.
    #[oai(validator(minimum(value = "1"), maximum(value = "65535")))]
    pub port: Option<u16>,
    /// Login user name.
    #[oai(validator(max_length = 255))]
    pub username: Option<Text>,
    /// A new credential (write-only).
    pub credential: Option<CredentialInput>,
    /// Tags (replaces all).
    #[oai(validator(max_items = 64))]
    pub tags: Option<Vec<Text>>,
    /// Active flag.
    pub active: Option<bool>,
    /// SSH host key policy.
    pub host_key_policy: Option<HostKeyPolicy>,
    /// Options (replaces all).
    pub options: Option<BTreeMap<String, Text>>,
}

/// A pinned SSH host key.
#[derive(Debug, Clone, Object)]
#[oai(rename = "HostKey", skip_serializing_if_is_none)]
pub(crate) struct HostKeyDto {
    /// Id.
    pub id: uuid::Uuid,
    /// The system.
    pub system_id: uuid::Uuid,
    /// Key algorithm, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:<base64>` fingerprint, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// When it was pinned.
    pub created_at: Timestamp,
}

impl From<HostKey> for HostKeyDto {
    fn from(k: HostKey) -> Self {
        HostKeyDto {
            id: k.id.as_uuid(),
            system_id: k.system_id.as_uuid(),
            algorithm: k.algorithm,
            fingerprint: k.fingerprint,
            created_at: k.created_at,
        }
    }
}

/// A host key fingerprint to pin.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct HostKeyInput {
    /// Key algorithm, e.g. `ssh-ed25519`.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub algorithm: Text,
    /// The full `SHA256:<base64>` fingerprint (as `ssh-keygen -lf` prints it), or the public key
    /// itself (`ssh-ed25519 AAAA...`, as in a `.pub` file), whose fingerprint is then computed.
    #[oai(validator(min_length = 1, max_length = 16384))]
    pub fingerprint: Text,
}

/// The full set of pinned keys.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct HostKeySet {
    /// The keys.
    #[oai(validator(max_items = 32))]
    pub keys: Vec<HostKeyInput>,
}

/// Pinned keys of a system.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct HostKeyList {
    /// The keys.
    pub items: Vec<HostKeyDto>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Systems")]
impl SystemsApi {
    /// Register a system
    #[oai(path = "/systems", method = "post", operation_id = "create_system")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateSystemRequest>,
    ) -> ApiResult<Created<SystemDto>> {
        let caller = self.0.caller(&auth).await?;
        let b = body.0;
        let new = NewSystem {
            name: b.name.0,
            hostname: b.hostname.map(String::from),
            port: b.port,
            system_type: b.system_type.map(Into::into),
            username: b.username.map(String::from).unwrap_or_default(),
            credential: b
                .credential
                .map(Credential::try_from)
                .transpose()?
                .unwrap_or_default(),
            tags: b.tags.map(strings).unwrap_or_default(),
            host_key_policy: b.host_key_policy.map(Into::into),
            options: b.options.map(string_map).unwrap_or_default(),
        };
        let s = self.0.orca.add_system(&caller.actor(), new).await?;
        Ok(Created::Created(Json(s.into())))
    }

    /// List systems
    ///
    /// Only systems within the caller's grants are listed.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/systems", method = "get", operation_id = "list_systems")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Systems carrying any of these tags.
        #[oai(validator(max_items = 64))]
        tag: Query<Vec<String>>,
        /// Only this type.
        #[oai(name = "type")]
        system_type: Query<Option<SystemType>>,
        /// Only this health.
        health: Query<Option<HealthStatus>>,
        /// Only active (true) or inactive (false) systems.
        active: Query<Option<bool>>,
        /// Name contains this text.
        #[oai(validator(max_length = 255))]
        name: Query<Option<String>>,
        /// Items to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
        offset: Query<Option<u64>>,
        /// Page size (1-1000).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<SystemList>> {
        let caller = self.0.caller(&auth).await?;
        let p = page(offset.0, limit.0);
        let filter = SystemFilter {
            tags: tag.0,
            system_type: system_type.0.map(Into::into),
            health: health.0.map(Into::into),
            active: active.0,
            name_contains: name.0,
        };
        let v = self
            .0
            .orca
            .list_systems(&caller.actor(), &filter, p)
            .await?;
        Ok(Json(SystemList::new(
            v.into_iter().map(Into::into).collect(),
            p,
        )))
    }

    /// Get a system
    #[oai(path = "/systems/:system", method = "get", operation_id = "get_system")]
    async fn get(
        &self,
        auth: BearerAuth,
        /// Id or name.
        #[oai(validator(max_length = 255))]
        system: Path<String>,
    ) -> ApiResult<Json<SystemDto>> {
        let caller = self.0.caller(&auth).await?;
        Ok(Json(
            self.0
                .orca
                .get_system(&caller.actor(), &system.0)
                .await?
                .into(),
        ))
    }

    /// Change a system
    #[oai(
        path = "/systems/:system",
        method = "patch",
        operation_id = "update_system"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        /// Id or name.
        #[oai(validator(max_length = 255))]
        system: Path<String>,
        body: Json<UpdateSystemRequest>,
    ) -> ApiResult<Json<SystemDto>> {
        let caller = self.0.caller(&auth).await?;
        let b = body.0;
        let patch = SystemPatch {
            hostname: b.hostname.map(String::from),
            port: b.port,
            username: b.username.map(String::from),
            credential: b.credential.map(Credential::try_from).transpose()?,
            tags: b.tags.map(strings),
            active: b.active,
            host_key_policy: b.host_key_policy.map(Into::into),
            options: b.options.map(string_map),
        };
        Ok(Json(
            self.0
                .orca
                .update_system(&caller.actor(), &system.0, patch)
                .await?
                .into(),
        ))
    }

    /// Remove a system
    ///
    /// Refused (409) while it has pending or running executions.
    #[oai(
        path = "/systems/:system",
        method = "delete",
        operation_id = "delete_system"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        /// Id or name.
        #[oai(validator(max_length = 255))]
        system: Path<String>,
    ) -> ApiResult<NoContent> {
        let caller = self.0.caller(&auth).await?;
        self.0
            .orca
            .remove_system(&caller.actor(), &system.0)
            .await?;
        Ok(NoContent::Done)
    }

    /// Probe a system now
    ///
    /// Connects and runs a trivial command; records and returns the health.
    #[oai(
        path = "/systems/:system/probe",
        method = "post",
        operation_id = "probe_system"
    )]
    async fn probe(
        &self,
        auth: BearerAuth,
        /// Id or name.
        #[oai(validator(max_length = 255))]
        system: Path<String>,
    ) -> ApiResult<Json<HealthDto>> {
        let caller = self.0.caller(&auth).await?;
        Ok(Json(
            self.0
                .orca
                .probe_system(&caller.actor(), &system.0)
                .await?
                .into(),
        ))
    }

    /// List pinned host keys
    #[oai(
        path = "/systems/:system/host-keys",
        method = "get",
        operation_id = "list_host_keys"
    )]
    async fn host_keys(
        &self,
        auth: BearerAuth,
        /// Id or name.
        #[oai(validator(max_length = 255))]
        system: Path<String>,
    ) -> ApiResult<Json<HostKeyList>> {
        let caller = self.0.caller(&auth).await?;
        let keys = self.0.orca.host_keys(&caller.actor(), &system.0).await?;
        Ok(Json(HostKeyList {
            items: keys.into_iter().map(Into::into).collect(),
        }))
    }

    /// Approve a host key
    ///
    /// Pins a fingerprint on a system that has none pinned; 409 if one is pinned already
    /// (replace the set instead).
    #[oai(
        path = "/systems/:system/host-keys",
        method = "post",
        operation_id = "approve_host_key"
    )]
    async fn approve(
        &self,
        auth: BearerAuth,
        /// Id or name.
        #[oai(validator(max_length = 255))]
        system: Path<String>,
        body: Json<HostKeyInput>,
    ) -> ApiResult<Created<HostKeyDto>> {
        let caller = self.0.caller(&auth).await?;
        let k = self
            .0
            .orca
            .approve_host_key(
                &caller.actor(),
                &system.0,
                &body.0.algorithm.0,
                &body.0.fingerprint.0,
            )
            .await?;
        Ok(Created::Created(Json(k.into())))
    }

    /// Replace the pinned host keys
    #[oai(
        path = "/systems/:system/host-keys",
        method = "put",
        operation_id = "replace_host_keys"
    )]
    async fn replace(
        &self,
        auth: BearerAuth,
        /// Id or name.
        #[oai(validator(max_length = 255))]
        system: Path<String>,
        body: Json<HostKeySet>,
    ) -> ApiResult<Json<HostKeyList>> {
        let caller = self.0.caller(&auth).await?;
        let keys: Vec<(String, String)> = body
            .0
            .keys
            .into_iter()
            .map(|k| (k.algorithm.0, k.fingerprint.0))
            .collect();
        let v = self
            .0
            .orca
            .replace_host_keys(&caller.actor(), &system.0, &keys)
            .await?;
        Ok(Json(HostKeyList {
            items: v.into_iter().map(Into::into).collect(),
        }))
    }
}
