//! `/api/v1/users`: accounts and their grants (admins).

use orca_core::UserPatch;
use orca_core::ids::{SystemId, UserId};
use orca_core::model::{Scope, Timestamp, User};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use secrecy::SecretString;

use super::auth::{Created, NoContent};
use super::enums::Role;
use super::text::Text;
use super::{BearerAuth, Tag, list_type, page};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// User operations.
pub(crate) struct UsersApi(pub AppState);

/// What a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub(crate) enum ScopeKind {
    /// Every system.
    All,
    /// One system (value: its id).
    System,
    /// Every system with a tag (value: the tag).
    Tag,
}

/// A grant: which systems a user may see (and, as operator, run on).
#[derive(Debug, Clone, Object)]
#[oai(rename = "Scope", deny_unknown_fields, skip_serializing_if_is_none)]
pub(crate) struct ScopeDto {
    /// Kind.
    pub kind: ScopeKind,
    /// The system id (`system`) or tag (`tag`); absent for `all`.
    #[oai(validator(max_length = 64))]
    pub value: Option<Text>,
}

impl From<&Scope> for ScopeDto {
    fn from(s: &Scope) -> Self {
        match s {
            Scope::All => ScopeDto {
                kind: ScopeKind::All,
                value: None,
            },
            Scope::System(id) => ScopeDto {
                kind: ScopeKind::System,
                value: Some(Text(id.to_string())),
            },
            Scope::Tag(t) => ScopeDto {
                kind: ScopeKind::Tag,
                value: Some(Text(t.clone())),
            },
        }
    }
}

impl TryFrom<ScopeDto> for Scope {
    type Error = ApiError;
    fn try_from(s: ScopeDto) -> ApiResult<Scope> {
        match (s.kind, s.value) {
            (ScopeKind::All, None) => Ok(Scope::All),
            (ScopeKind::System, Some(v)) => {
                v.parse::<SystemId>().map(Scope::System).map_err(|_| {
                    ApiError::invalid(format!("a system grant needs a system id, not '{}'", v.0))
                })
            }
            (ScopeKind::Tag, Some(v)) if !v.trim().is_empty() => Ok(Scope::Tag(v.0)),
            (ScopeKind::All, Some(_)) => Err(ApiError::invalid("an `all` grant takes no value")),
            _ => Err(ApiError::invalid("a `system` or `tag` grant needs a value")),
        }
    }
}

/// A user account (never with its password hash).
#[derive(Debug, Clone, Object)]
#[oai(rename = "User", skip_serializing_if_is_none)]
pub(crate) struct UserDto {
    /// Id.
    pub id: uuid::Uuid,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Disabled users cannot log in or act.
    pub active: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        UserDto {
            id: u.id.as_uuid(),
            username: u.username,
            role: u.role.into(),
            active: u.active,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

list_type!(UserList, UserDto, "A page of users.");

/// A new user.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct CreateUserRequest {
    /// Login name: 1-64 letters, digits, `-`, `_`, `.` or `@`.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub username: Text,
    /// Role.
    pub role: Role,
    /// Initial password (at least 12 characters).
    #[oai(validator(min_length = 1, max_length = 1024), write_only)]
    pub password: Text,
}

/// A change of a user; absent fields stay.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct UpdateUserRequest {
    /// New role.
    pub role: Option<Role>,
    /// Enable or disable (disabling ends the user's sessions and API tokens).
    pub active: Option<bool>,
}

/// A new password set by an admin.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct ResetPasswordRequest {
    /// The new password (at least 12 characters).
    #[oai(validator(min_length = 1, max_length = 1024), write_only)]
    pub password: Text,
}

/// A user's grants.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct Grants {
    /// The scopes (replaces all on PUT).
    #[oai(validator(max_items = 1000))]
    pub grants: Vec<ScopeDto>,
}

impl AppState {
    /// The caller changes their own password (needs the current one); ends all their tokens.
    pub(crate) async fn change_own_password(
        &self,
        caller: &Caller,
        current: SecretString,
        new: SecretString,
    ) -> ApiResult<()> {
        // Guessing the current password with a stolen access token is throttled like login.
        self.throttle_password_check(&caller.principal.name).await?;
        self.orca
            .change_password(&caller.actor(), current, new)
            .await?;
        Ok(())
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Users")]
impl UsersApi {
    /// Create a user
    #[oai(path = "/users", method = "post", operation_id = "create_user")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateUserRequest>,
    ) -> ApiResult<Created<UserDto>> {
        let caller = self.0.caller(&auth).await?;
        let b = body.0;
        let user = self
            .0
            .orca
            .add_user(
                &caller.actor(),
                &b.username.0,
                b.role.into(),
                SecretString::from(b.password.0),
            )
            .await?;
        Ok(Created::Created(Json(user.into())))
    }

    /// List users
    #[oai(path = "/users", method = "get", operation_id = "list_users")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Items to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
        offset: Query<Option<u64>>,
        /// Page size (1-1000).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<UserList>> {
        let caller = self.0.caller(&auth).await?;
        let p = page(offset.0, limit.0);
        let users = self.0.orca.list_users(&caller.actor(), p).await?;
        Ok(Json(UserList::new(
            users.into_iter().map(Into::into).collect(),
            p,
        )))
    }

    /// Get a user
    #[oai(path = "/users/:id", method = "get", operation_id = "get_user")]
    async fn get(&self, auth: BearerAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<UserDto>> {
        let caller = self.0.caller(&auth).await?;
        let u = self.0.orca.get_user(&caller.actor(), UserId(id.0)).await?;
        Ok(Json(u.into()))
    }

    /// Change a user's role or disable/enable it
    #[oai(path = "/users/:id", method = "patch", operation_id = "update_user")]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
        body: Json<UpdateUserRequest>,
    ) -> ApiResult<Json<UserDto>> {
        let caller = self.0.caller(&auth).await?;
        let b = body.0;
        if b.role.is_none() && b.active.is_none() {
            // Nothing to change: answer the user as it is (admins only, like a change).
            orca_core::policy::check(
                &caller.principal,
                orca_core::policy::Action::UserManage,
                None,
            )?;
            return Ok(Json(
                self.0
                    .orca
                    .get_user(&caller.actor(), UserId(id.0))
                    .await?
                    .into(),
            ));
        }
        let patch = UserPatch {
            role: b.role.map(Into::into),
            active: b.active,
            password_hash: None,
        };
        let u = self
            .0
            .orca
            .update_user(&caller.actor(), UserId(id.0), patch)
            .await?;
        Ok(Json(u.into()))
    }

    /// Reset a user's password
    ///
    /// Ends every session and API token of the user.
    #[oai(
        path = "/users/:id/password",
        method = "post",
        operation_id = "reset_password"
    )]
    async fn reset_password(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
        body: Json<ResetPasswordRequest>,
    ) -> ApiResult<NoContent> {
        let caller = self.0.caller(&auth).await?;
        self.0
            .orca
            .reset_password(
                &caller.actor(),
                UserId(id.0),
                SecretString::from(body.0.password.0),
            )
            .await?;
        Ok(NoContent::Done)
    }

    /// Get a user's grants
    #[oai(
        path = "/users/:id/grants",
        method = "get",
        operation_id = "get_grants"
    )]
    async fn grants(&self, auth: BearerAuth, id: Path<uuid::Uuid>) -> ApiResult<Json<Grants>> {
        let caller = self.0.caller(&auth).await?;
        let g = self.0.orca.grants(&caller.actor(), UserId(id.0)).await?;
        Ok(Json(Grants {
            grants: g.iter().map(|g| ScopeDto::from(&g.scope)).collect(),
        }))
    }

    /// Replace a user's grants
    #[oai(
        path = "/users/:id/grants",
        method = "put",
        operation_id = "set_grants"
    )]
    async fn set_grants(
        &self,
        auth: BearerAuth,
        id: Path<uuid::Uuid>,
        body: Json<Grants>,
    ) -> ApiResult<Json<Grants>> {
        let caller = self.0.caller(&auth).await?;
        let scopes = body
            .0
            .grants
            .into_iter()
            .map(Scope::try_from)
            .collect::<ApiResult<Vec<_>>>()?;
        let g = self
            .0
            .orca
            .set_grants(&caller.actor(), UserId(id.0), scopes)
            .await?;
        Ok(Json(Grants {
            grants: g.iter().map(|g| ScopeDto::from(&g.scope)).collect(),
        }))
    }
}
