//! `/api/v1/auth/*`, `/api/v1/tokens`, `/api/v1/ws/ticket`.

use orca_core::TokenRecord;
use orca_core::model::Timestamp;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;

use super::enums::Role;
use super::text::Text;
use super::users::ScopeDto;
use super::{BearerAuth, Tag, list_type, page};
use crate::auth::{ApiTokenCreated, TokenPair, Via};
use crate::error::ApiResult;
use crate::state::AppState;
use orca_core::auth::{role_cap, secret_hash};
use orca_core::created_via;

/// Authentication operations.
pub(crate) struct AuthApi(pub AppState);

/// Credentials.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    /// User name.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub username: Text,
    /// Password.
    #[oai(validator(min_length = 1, max_length = 1024), write_only)]
    pub password: Text,
}

/// A refresh token to trade.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    #[oai(validator(min_length = 1, max_length = 256), write_only)]
    pub refresh_token: Text,
}

/// A password change of the caller.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct ChangePasswordRequest {
    /// The current password.
    #[oai(validator(min_length = 1, max_length = 1024), write_only)]
    pub current_password: Text,
    /// The new password (at least 12 characters, not containing the user name).
    #[oai(validator(min_length = 1, max_length = 1024), write_only)]
    pub new_password: Text,
}

/// Who the caller is, as the server sees it now.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct Me {
    /// User id.
    pub id: uuid::Uuid,
    /// User name.
    pub username: String,
    /// The role the caller acts with (an API token may cap it).
    pub role: Role,
    /// The systems the caller's grants cover.
    pub grants: Vec<ScopeDto>,
    /// `session` (access token) or `api_token`.
    pub auth: String,
}

/// A new API token.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct CreateTokenRequest {
    /// A name to recognise it by.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub name: Text,
    /// The highest role it may act with (default: the caller's role; never more).
    pub role: Option<Role>,
    /// Lifetime in days (default and maximum: the server's `api_token_max_days`).
    #[oai(validator(minimum(value = "1"), maximum(value = "36500")))]
    pub expires_in_days: Option<u64>,
}

/// An API token, without its secret.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct TokenInfo {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// The highest role it acts with.
    pub role: Option<Role>,
    /// Created.
    pub created_at: Timestamp,
    /// Expires.
    pub expires_at: Option<Timestamp>,
    /// Revoked.
    pub revoked_at: Option<Timestamp>,
    /// The credential that created it: `session:<session id>` (a password login) or `server`
    /// (the server's admin tooling). Absent for tokens made before this was recorded.
    pub created_via: Option<String>,
}

impl From<&TokenRecord> for TokenInfo {
    fn from(t: &TokenRecord) -> Self {
        TokenInfo {
            id: t.id,
            name: t.name.clone().unwrap_or_default(),
            role: role_cap(t).map(Role::from),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            created_via: created_via(t).map(String::from),
        }
    }
}

list_type!(TokenList, TokenInfo, "A page of API tokens.");

/// A WebSocket ticket.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct WsTicket {
    /// The one-time ticket.
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
    /// Where to connect (append to the server's base URL, `ws://` or `wss://`).
    pub url: String,
}

/// `201 Created` with a body.
#[derive(ApiResponse)]
pub(crate) enum Created<T: poem_openapi::types::ToJSON> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

/// `204 No Content`.
#[derive(ApiResponse)]
pub(crate) enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Auth")]
impl AuthApi {
    /// Log in
    ///
    /// Trade a user name and password for an access token (a JWT valid for at most 15 minutes)
    /// and a single-use refresh token. Throttled per client address and per account from that
    /// address (429 with `Retry-After`); many attempts for one account from anywhere slow
    /// further ones down but never refuse them. Unknown users and wrong passwords answer alike.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(&self, body: Json<LoginRequest>) -> ApiResult<Json<TokenPair>> {
        let b = body.0;
        let pair = self
            .0
            .login(&b.username, SecretString::from(b.password.0))
            .await?;
        Ok(Json(pair))
    }

    /// Refresh
    ///
    /// Trade a refresh token for a new access token and a new refresh token. Each refresh token
    /// works once: presenting a used one revokes the whole session.
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(&self, body: Json<RefreshRequest>) -> ApiResult<Json<TokenPair>> {
        Ok(Json(self.0.refresh(&body.0.refresh_token).await?))
    }

    /// Log out
    ///
    /// End the caller's session: its access and refresh tokens stop working at once.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, auth: BearerAuth) -> ApiResult<NoContent> {
        let caller = self.0.caller(&auth).await?;
        self.0.logout(&caller).await?;
        Ok(NoContent::Done)
    }

    /// Who am I
    #[oai(path = "/auth/me", method = "get", operation_id = "whoami")]
    async fn me(&self, auth: BearerAuth) -> ApiResult<Json<Me>> {
        let caller = self.0.caller(&auth).await?;
        Ok(Json(Me {
            id: caller.user_id.as_uuid(),
            username: caller.principal.name.clone(),
            role: caller.principal.role.into(),
            grants: caller.principal.scopes.iter().map(ScopeDto::from).collect(),
            auth: match caller.via {
                Via::Session(_) => "session".into(),
                Via::ApiToken(_) => "api_token".into(),
            },
        }))
    }

    /// Change my password
    ///
    /// Needs the current password (its checks are throttled like login). Ends every session
    /// and API token of the caller.
    #[oai(
        path = "/auth/password",
        method = "post",
        operation_id = "change_password"
    )]
    async fn change_password(
        &self,
        auth: BearerAuth,
        body: Json<ChangePasswordRequest>,
    ) -> ApiResult<NoContent> {
        let caller = self.0.caller(&auth).await?;
        let b = body.0;
        self.0
            .change_own_password(
                &caller,
                SecretString::from(b.current_password.0),
                SecretString::from(b.new_password.0),
            )
            .await?;
        Ok(NoContent::Done)
    }

    /// Create an API token
    ///
    /// The secret is in this answer only. The token acts as its owner, with at most the
    /// given role. Needs a login session (an access token): an API token cannot create API
    /// tokens (403).
    #[oai(path = "/tokens", method = "post", operation_id = "create_token")]
    async fn create_token(
        &self,
        auth: BearerAuth,
        body: Json<CreateTokenRequest>,
    ) -> ApiResult<Created<ApiTokenCreated>> {
        let caller = self.0.caller(&auth).await?;
        let b = body.0;
        let (rec, secret) = self
            .0
            .create_api_token(&caller, &b.name, b.role.map(Into::into), b.expires_in_days)
            .await?;
        let info = TokenInfo::from(&rec);
        Ok(Created::Created(Json(ApiTokenCreated {
            id: rec.id,
            name: info.name,
            role: role_cap(&rec)
                .map(|r| r.as_str())
                .unwrap_or("viewer")
                .to_string(),
            created_at: rec.created_at,
            expires_at: rec.expires_at,
            token: secret,
        })))
    }

    /// List my API tokens
    #[oai(path = "/tokens", method = "get", operation_id = "list_tokens")]
    async fn list_tokens(
        &self,
        auth: BearerAuth,
        /// Items to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
        offset: Query<Option<u64>>,
        /// Page size (1-1000).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<TokenList>> {
        let caller = self.0.caller(&auth).await?;
        let p = page(offset.0, limit.0);
        let items: Vec<TokenInfo> = self
            .0
            .api_tokens(&caller)
            .await?
            .iter()
            .skip(usize::try_from(p.offset).unwrap_or(usize::MAX))
            .take(p.limit as usize)
            .map(TokenInfo::from)
            .collect();
        Ok(Json(TokenList::new(items, p)))
    }

    /// Revoke one of my API tokens
    #[oai(path = "/tokens/:id", method = "delete", operation_id = "revoke_token")]
    async fn revoke_token(&self, auth: BearerAuth, id: Path<uuid::Uuid>) -> ApiResult<NoContent> {
        let caller = self.0.caller(&auth).await?;
        self.0.revoke_api_token(&caller, id.0).await?;
        Ok(NoContent::Done)
    }

    /// Get a WebSocket ticket
    ///
    /// A one-time ticket, valid for a few seconds, to open the live-updates socket:
    /// `GET /api/v1/ws?ticket=...` (WebSocket). Then send
    /// `{"type":"subscribe","job_id":"..."}` or `{"type":"subscribe","execution_id":"...",
    /// "from_seq": 0}`; the server replays what is stored, then follows live, in frames
    /// `{"type":"events","events":[...]}` (at most 20 per second), and ends a subscription
    /// with an event `{"type":"end"}`. To resume after a reconnect, subscribe again with `from_seq`
    /// (execution) or `offsets` (`{execution_id: next_seq}`, job). The socket closes (close
    /// code 1008, with a reason) when the user is disabled, their role or grants change, or
    /// the session or API token that got the ticket ends.
    #[oai(
        path = "/ws/ticket",
        method = "post",
        operation_id = "create_ws_ticket"
    )]
    async fn ws_ticket(&self, auth: BearerAuth) -> ApiResult<Created<WsTicket>> {
        let caller = self.0.caller(&auth).await?;
        let token_hash = match caller.via {
            Via::ApiToken(_) => Some(secret_hash(&auth.0.token)),
            Via::Session(_) => None,
        };
        let (ticket, expires_in) = self.0.create_ws_ticket(&caller, token_hash).await?;
        Ok(Created::Created(Json(WsTicket {
            url: format!("/api/v1/ws?ticket={ticket}"),
            ticket,
            expires_in,
        })))
    }
}
