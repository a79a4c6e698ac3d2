//! API tokens (for automation; shown once; capped at a role no higher than their owner's) and
//! one-time WebSocket tickets.

use orca_core::model::{AuditRecord, Role, Timestamp};
use orca_core::{ErrorKind, RevokeTokens, TokenKind, TokenRecord};
use poem::http::StatusCode;
use poem_openapi::Object;

use super::live::Credential;
use super::{Caller, Purpose, Via, live, new_secret, secret_hash, well_formed};
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

/// The scope prefix recording which credential created an API token: `session:<session id>`
/// (a login session) or `server` ([`AppState::issue_api_token`]).
pub(crate) const CREATED_VIA: &str = "created_via:";
/// The scope prefix of a WebSocket ticket minted with an API token: that token's id.
const VIA: &str = "via:";
/// The scope prefix of a WebSocket ticket minted with an API token: the hash of its secret.
const VIA_HASH: &str = "via_hash:";

/// Which credential created an API token, if recorded (`session:<id>` or `server`).
pub(crate) fn created_via(record: &TokenRecord) -> Option<&str> {
    record
        .scopes
        .iter()
        .find_map(|s| s.strip_prefix(CREATED_VIA))
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
        self.mint_api_token(
            caller,
            &format!("session:{sid}"),
            name,
            role,
            expires_in_days,
        )
        .await
    }

    /// Create an API token for `caller`, recording `origin` (the credential that created it)
    /// as its `created_via:` scope.
    async fn mint_api_token(
        &self,
        caller: &Caller,
        origin: &str,
        name: &str,
        role: Option<Role>,
        expires_in_days: Option<u64>,
    ) -> ApiResult<(TokenRecord, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "the token name must be 1-64 printable characters",
            ));
        }
        let effective = caller.principal.role;
        let role = role.unwrap_or(effective);
        if role > effective {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                format!(
                    "a token cannot have more rights than its creator: you act as {}, not {}",
                    effective.as_str(),
                    role.as_str()
                ),
            ));
        }
        let max = self.config.auth.api_token_max_days;
        let days = match (expires_in_days, max) {
            (Some(0), _) => return Err(ApiError::invalid("expires_in_days must be at least 1")),
            (Some(d), Some(m)) if d > m => {
                return Err(ApiError::invalid(format!(
                    "expires_in_days must be at most {m} on this server"
                )));
            }
            (Some(d), _) => Some(d),
            (None, m) => m,
        };
        let now = self.orca.clock().now();
        let expires_at = days
            .map(|d| now + chrono::TimeDelta::days(i64::try_from(d).unwrap_or(36500).min(36500)));
        let secret = new_secret(Purpose::Api);
        let rec = TokenRecord {
            id: uuid::Uuid::now_v7(),
            user_id: caller.user_id,
            kind: TokenKind::Api,
            family: None,
            hash: secret_hash(&secret),
            name: Some(name.to_string()),
            scopes: vec![
                Purpose::Api.scope().into(),
                format!("role:{}", role.as_str()),
                format!("{CREATED_VIA}{origin}"),
            ],
            created_at: now,
            expires_at,
            used_at: None,
            revoked_at: None,
        };
        let audit = AuditRecord::new(
            now,
            &caller.principal,
            "token",
            Some(rec.id.to_string()),
            "create",
            serde_json::json!({"name": name, "role": role.as_str(), "expires_at": expires_at, "created_via": origin}),
        );
        self.orca.store().create_token(&rec, Some(&audit)).await?;
        Ok((rec, secret))
    }

    /// The caller's API tokens, newest first.
    pub(crate) async fn api_tokens(&self, caller: &Caller) -> ApiResult<Vec<TokenRecord>> {
        let mut v: Vec<TokenRecord> = self
            .orca
            .store()
            .list_tokens(caller.user_id)
            .await?
            .into_iter()
            .filter(|t| Purpose::of(t) == Some(Purpose::Api))
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(v)
    }

    /// Revoke one of the caller's API tokens.
    pub(crate) async fn revoke_api_token(&self, caller: &Caller, id: uuid::Uuid) -> ApiResult<()> {
        let tokens = self.api_tokens(caller).await?;
        let Some(t) = tokens.into_iter().find(|t| t.id == id) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("API token {id} not found"),
            ));
        };
        let audit = AuditRecord::new(
            self.orca.clock().now(),
            &caller.principal,
            "token",
            Some(id.to_string()),
            "revoke",
            serde_json::json!({"name": t.name}),
        );
        self.orca
            .store()
            .revoke_tokens(RevokeTokens::Id(id), Some(&audit))
            .await?;
        Ok(())
    }

    /// A one-time ticket to open a WebSocket as the caller. A caller with an API token gives
    /// the hash of its secret (`api_token_hash`), so the socket can re-check that token.
    pub(crate) async fn create_ws_ticket(
        &self,
        caller: &Caller,
        api_token_hash: Option<String>,
    ) -> ApiResult<(String, u64)> {
        let ttl = self.config.auth.ws_ticket_ttl_seconds;
        let now = self.orca.clock().now();
        let secret = new_secret(Purpose::WsTicket);
        let mut scopes = vec![Purpose::WsTicket.scope().to_string()];
        if let Via::ApiToken(id) = caller.via {
            let Some(hash) = api_token_hash else {
                return Err(orca_core::Error::unexpected(
                    "a WebSocket ticket for an API token needs the token's hash",
                )
                .into());
            };
            scopes.push(format!("{VIA}{id}"));
            scopes.push(format!("{VIA_HASH}{hash}"));
        }
        let rec = TokenRecord {
            id: uuid::Uuid::now_v7(),
            user_id: caller.user_id,
            kind: TokenKind::Api,
            family: match caller.via {
                Via::Session(sid) => Some(sid),
                Via::ApiToken(_) => None,
            },
            hash: secret_hash(&secret),
            name: Some("ws-ticket".into()),
            scopes,
            created_at: now,
            expires_at: Some(now + chrono::TimeDelta::seconds(ttl as i64)),
            used_at: None,
            revoked_at: None,
        };
        let audit = AuditRecord::new(
            now,
            &caller.principal,
            "ws",
            Some(rec.id.to_string()),
            "ticket",
            serde_json::json!({}),
        );
        self.orca.store().create_token(&rec, Some(&audit)).await?;
        Ok((secret, ttl))
    }

    /// Redeem a WebSocket ticket (once). The credential that minted it (the login session or
    /// the API token) must still be live; the caller is read fresh, with that credential as
    /// its `via` (and an API token's current role cap).
    pub(crate) async fn redeem_ws_ticket(&self, ticket: &str) -> ApiResult<(Caller, Credential)> {
        let invalid = || {
            ApiError::unauthenticated(
                "the WebSocket ticket is invalid, expired or already used; get a new one from POST /api/v1/ws/ticket",
            )
        };
        if !well_formed(ticket, Purpose::WsTicket) {
            return Err(invalid());
        }
        let store = self.orca.store();
        let rec = match store.find_token(&secret_hash(ticket)).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if Purpose::of(&rec) != Some(Purpose::WsTicket)
            || !live(&rec, self.orca.clock().now())
            || rec.used_at.is_some()
            || !store.use_token(rec.id).await?
        {
            return Err(invalid());
        }
        let scope = |prefix: &str| rec.scopes.iter().find_map(|s| s.strip_prefix(prefix));
        let cred = match (rec.family, scope(VIA), scope(VIA_HASH)) {
            (Some(sid), None, None) => Credential::Session(sid),
            (None, Some(id), Some(hash)) => Credential::ApiToken {
                id: id.parse().map_err(|_| invalid())?,
                hash: hash.to_string(),
            },
            _ => return Err(invalid()),
        };
        let caller = match self.fresh_caller(rec.user_id, &cred).await? {
            Ok(c) => c,
            Err(ended) => return Err(ApiError::unauthenticated(ended.reason())),
        };
        if let Some(c) = context::current() {
            c.set_actor(Actor {
                name: caller.principal.name.clone(),
                user_id: Some(rec.user_id),
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
        let caller = Caller {
            principal,
            user_id: user,
            via: Via::Session(uuid::Uuid::nil()),
        };
        self.mint_api_token(&caller, "server", name, role, expires_in_days)
            .await
            .map(|(_, secret)| secret)
            .map_err(|e| {
                let b = e.body();
                orca_core::Error::new(
                    match e.status().as_u16() {
                        403 => orca_core::ErrorKind::PermissionDenied,
                        400 => orca_core::ErrorKind::InvalidInput,
                        _ => orca_core::ErrorKind::Unexpected,
                    },
                    b.message.clone(),
                )
            })
    }
}
