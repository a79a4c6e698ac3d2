//! API tokens (for automation; shown once; capped at a role no higher than their owner's) and
//! one-time WebSocket tickets.

use orca_core::model::{AuditRecord, Role, Timestamp};
use orca_core::{ErrorKind, RevokeTokens, TokenKind, TokenRecord};
use poem::http::StatusCode;
use poem_openapi::Object;

use super::{Caller, Purpose, Via, live, new_secret, role_cap, secret_hash, well_formed};
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
    /// Create an API token for the caller.
    pub(crate) async fn create_api_token(
        &self,
        caller: &Caller,
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
            serde_json::json!({"name": name, "role": role.as_str(), "expires_at": expires_at}),
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

    /// A one-time ticket to open a WebSocket as the caller.
    pub(crate) async fn create_ws_ticket(&self, caller: &Caller) -> ApiResult<(String, u64)> {
        let ttl = self.config.auth.ws_ticket_ttl_seconds;
        let now = self.orca.clock().now();
        let secret = new_secret(Purpose::WsTicket);
        let mut scopes = vec![Purpose::WsTicket.scope().to_string()];
        if let Via::ApiToken(id) = caller.via {
            scopes.push(format!("role:{}", caller.principal.role.as_str()));
            scopes.push(format!("via:{id}"));
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

    /// Redeem a WebSocket ticket (once).
    pub(crate) async fn redeem_ws_ticket(&self, ticket: &str) -> ApiResult<Caller> {
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
        let mut principal = self.orca.principal_for(rec.user_id).await?;
        if let Some(cap) = role_cap(&rec) {
            principal.role = principal.role.min(cap);
        }
        if let Some(c) = context::current() {
            c.set_actor(Actor {
                name: principal.name.clone(),
                user_id: Some(rec.user_id),
            });
        }
        Ok(Caller {
            principal,
            user_id: rec.user_id,
            via: match rec.family {
                Some(sid) => Via::Session(sid),
                None => Via::ApiToken(rec.id),
            },
        })
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
        self.create_api_token(&caller, name, role, expires_in_days)
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
