//! API tokens (for automation; shown once; capped at a role no higher than their owner's) and
//! one-time WebSocket tickets.

use std::time::Duration;

use orca_core::model::{Role, Timestamp};
use orca_core::{TicketCredential, TokenRecord};
use poem::http::StatusCode;
use poem_openapi::Object;

use super::{Caller, Credential, Via};
use crate::context::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A new API token, with its secret (shown this once).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiTokenCreated {
    /// The token's id (to revoke it).
    pub id: uuid::Uuid,
    /// Its name.
    pub name: String,
    /// The highest role it acts with (never more than its owner's role at the time of use).
    pub role: String,
    /// Created.
    pub created_at: Timestamp,
    /// Expires (none: never).
    pub expires_at: Option<Timestamp>,
    /// The secret, for `Authorization: Bearer ...`. Not retrievable later.
    pub token: String,
}

impl AppState {
    /// Create an API token for the caller, who must have logged in with a password: an API
    /// token cannot create API tokens (a leaked one could otherwise make itself a successor
    /// that outlives its revocation).
    pub(crate) async fn create_api_token(
        &self,
        caller: &Caller,
        name: &str,
        role: Option<Role>,
        expires_in_days: Option<u64>,
    ) -> ApiResult<(TokenRecord, String)> {
        let Via::Session(sid) = caller.via else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                "an API token cannot create API tokens; log in with a password to create one",
            ));
        };
        Ok(self
            .orca
            .create_api_token(
                &caller.actor(),
                &format!("session:{sid}"),
                name,
                role,
                expires_in_days,
                self.config.auth.api_token_max_days,
            )
            .await?)
    }

    /// The caller's API tokens, newest first.
    pub(crate) async fn api_tokens(&self, caller: &Caller) -> ApiResult<Vec<TokenRecord>> {
        Ok(self.orca.api_tokens(&caller.actor()).await?)
    }

    /// Revoke one of the caller's API tokens.
    pub(crate) async fn revoke_api_token(&self, caller: &Caller, id: uuid::Uuid) -> ApiResult<()> {
        Ok(self.orca.revoke_api_token(&caller.actor(), id).await?)
    }

    /// A one-time ticket to open a WebSocket as the caller. A caller with an API token gives
    /// the hash of its secret (`api_token_hash`), so the socket can re-check that token.
    pub(crate) async fn create_ws_ticket(
        &self,
        caller: &Caller,
        api_token_hash: Option<String>,
    ) -> ApiResult<(String, u64)> {
        let ttl = self.config.auth.ws_ticket_ttl_seconds;
        let cred = match caller.via {
            Via::Session(sid) => TicketCredential::Session(sid),
            Via::ApiToken(id) => {
                let Some(hash) = api_token_hash else {
                    return Err(orca_core::Error::unexpected(
                        "a WebSocket ticket for an API token needs the token's hash",
                    )
                    .into());
                };
                TicketCredential::ApiToken { id, hash }
            }
        };
        let secret = self
            .orca
            .create_ws_ticket(&caller.actor(), &cred, Duration::from_secs(ttl))
            .await?;
        Ok((secret, ttl))
    }

    /// Redeem a WebSocket ticket (once). The credential that minted it (the login session or
    /// the API token) must still be live; the caller is read fresh, with that credential as
    /// its `via` (and an API token's current role cap).
    pub(crate) async fn redeem_ws_ticket(&self, ticket: &str) -> ApiResult<(Caller, Credential)> {
        let (user, cred) = self.orca.redeem_ws_ticket(ticket).await?;
        let caller = match self.fresh_caller(user, &cred).await? {
            Ok(c) => c,
            Err(ended) => return Err(ApiError::unauthenticated(ended.reason())),
        };
        if let Some(c) = context::current() {
            c.set_actor(Actor {
                name: caller.principal.name.clone(),
                user_id: Some(user),
            });
        }
        Ok((caller, cred))
    }
}

impl AppState {
    /// Create an API token for a user directly (for admin tooling, the binary and examples):
    /// the same rules as `POST /api/v1/tokens` by that user. Returns the secret (shown once).
    pub async fn issue_api_token(
        &self,
        user: orca_core::ids::UserId,
        name: &str,
        role: Option<Role>,
        expires_in_days: Option<u64>,
    ) -> orca_core::Result<String> {
        let principal = self.orca.principal_for(user).await?;
        self.orca
            .create_api_token(
                &principal,
                "server",
                name,
                role,
                expires_in_days,
                self.config.auth.api_token_max_days,
            )
            .await
            .map(|(_, secret)| secret)
    }
}
