//! Login sessions: login, refresh with rotation and reuse detection, logout, and the
//! authentication of every request.
//!
//! Token records are written through `self.orca.store()`, which is the
//! [`crate::AuditContextLayer`]: a revocation here (logout, refresh-token reuse) ends the reuse
//! of cached callers on this node at once and is announced to the other nodes on the event bus
//! (see `auth::cache`).

use orca_core::model::{AuditOutcome, AuditRecord, Principal, Role, Timestamp};
use orca_core::{ErrorKind, RevokeTokens, TokenKind, TokenRecord};
use poem_openapi::Object;
use secrecy::SecretString;

use super::cache::{self, Validity};
use super::{
    Caller, Purpose, Via, live, new_secret, role_cap, secret_hash, session_hash, well_formed,
};
use crate::context::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Tokens handed out by login and refresh.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenPair {
    /// A JWT for `Authorization: Bearer ...`, valid for `expires_in` seconds.
    pub access_token: String,
    /// An opaque, single-use token for `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

const BAD_LOGIN: &str = "invalid username or password";
const SESSION_ENDED: &str = "the session has ended; log in again";

/// A principal for audit records about a user who is not (yet) authenticated.
fn attempted(name: &str, user_id: Option<orca_core::ids::UserId>) -> Principal {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    Principal {
        user_id,
        name: if clean.is_empty() { "-".into() } else { clean },
        role: Role::Viewer,
        scopes: vec![],
    }
}

fn secs(d: u64) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(i64::try_from(d).unwrap_or(i64::MAX / 1000))
}

impl AppState {
    fn now(&self) -> Timestamp {
        self.orca.clock().now()
    }

    fn refresh_record(
        &self,
        user: orca_core::ids::UserId,
        sid: uuid::Uuid,
        expires: Timestamp,
    ) -> (String, TokenRecord) {
        let secret = new_secret(Purpose::Refresh);
        let rec = TokenRecord {
            id: uuid::Uuid::now_v7(),
            user_id: user,
            kind: TokenKind::Refresh,
            family: Some(sid),
            hash: secret_hash(&secret),
            name: None,
            scopes: vec![Purpose::Refresh.scope().into()],
            created_at: self.now(),
            expires_at: Some(expires),
            used_at: None,
            revoked_at: None,
        };
        (secret, rec)
    }

    /// Log in with a user name and password.
    pub(crate) async fn login(
        &self,
        username: &str,
        password: SecretString,
    ) -> ApiResult<TokenPair> {
        self.throttle_password_check(username).await?;
        let user = match self.orca.store().find_user(username).await {
            Ok(u) => Some(u),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let hash = user
            .as_ref()
            .filter(|u| u.active)
            .and_then(|u| u.password_hash.clone());
        let ok = super::password::verify_password_async(password, hash).await;
        let Some(user) = user.filter(|_| ok) else {
            let rec = AuditRecord::new(
                self.now(),
                &attempted(username, None),
                "auth",
                None,
                "login",
                serde_json::json!({"reason": "invalid credentials"}),
            )
            .with_outcome(AuditOutcome::Failure);
            self.write_audit(rec).await;
            return Err(ApiError::unauthenticated(BAD_LOGIN));
        };
        let now = self.now();
        let sid = uuid::Uuid::now_v7();
        let expires = now + secs(self.config.auth.refresh_ttl_seconds);
        let anchor = TokenRecord {
            id: uuid::Uuid::now_v7(),
            user_id: user.id,
            kind: TokenKind::Refresh,
            family: Some(sid),
            hash: session_hash(sid),
            name: Some("session".into()),
            scopes: vec![Purpose::Session.scope().into()],
            created_at: now,
            expires_at: Some(expires),
            used_at: Some(now),
            revoked_at: None,
        };
        self.orca.store().create_token(&anchor, None).await?;
        let (refresh, rec) = self.refresh_record(user.id, sid, expires);
        let audit = AuditRecord::new(
            now,
            &Principal::user(&user, &[]),
            "auth",
            Some(user.id.to_string()),
            "login",
            serde_json::json!({"session": sid}),
        );
        self.orca.store().create_token(&rec, Some(&audit)).await?;
        if let Some(c) = context::current() {
            c.set_actor(Actor {
                name: user.username.clone(),
                user_id: Some(user.id),
            });
        }
        Ok(TokenPair {
            access_token: self.jwt.issue(user.id, sid)?,
            refresh_token: refresh,
            token_type: "Bearer".into(),
            expires_in: self.jwt.ttl(),
        })
    }

    /// Trade a refresh token for a new pair. A token used twice revokes its whole session.
    pub(crate) async fn refresh(&self, token: &str) -> ApiResult<TokenPair> {
        let invalid =
            || ApiError::unauthenticated("the refresh token is invalid or expired; log in again");
        if !well_formed(token, Purpose::Refresh) {
            return Err(invalid());
        }
        let rec = match self.orca.store().find_token(&secret_hash(token)).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if Purpose::of(&rec) != Some(Purpose::Refresh) || rec.kind != TokenKind::Refresh {
            return Err(invalid());
        }
        let Some(sid) = rec.family else {
            return Err(invalid());
        };
        if rec.revoked_at.is_some() {
            return Err(ApiError::unauthenticated(SESSION_ENDED));
        }
        if !live(&rec, self.now()) {
            return Err(invalid());
        }
        if rec.used_at.is_some() || !self.orca.store().use_token(rec.id).await? {
            let name = match self.orca.store().get_user(rec.user_id).await {
                Ok(u) => u.username,
                Err(_) => rec.user_id.to_string(),
            };
            let audit = AuditRecord::new(
                self.now(),
                &attempted(&name, Some(rec.user_id)),
                "auth",
                Some(rec.user_id.to_string()),
                "refresh_reuse",
                serde_json::json!({"session": sid, "reason": "a refresh token was used twice; the session was revoked"}),
            )
            .with_outcome(AuditOutcome::Denied);
            self.orca
                .store()
                .revoke_tokens(RevokeTokens::Family(sid), Some(&audit))
                .await?;
            tracing::warn!(request_id = %context::request_id(), user_id = %rec.user_id, "refresh token reuse: session revoked");
            return Err(ApiError::unauthenticated(
                "this refresh token was already used, so the session was revoked as a precaution; log in again",
            ));
        }
        let principal = self.orca.principal_for(rec.user_id).await?;
        let expires = rec.expires_at.unwrap_or_else(|| self.now());
        let (refresh, new) = self.refresh_record(rec.user_id, sid, expires);
        let audit = AuditRecord::new(
            self.now(),
            &principal,
            "auth",
            Some(rec.user_id.to_string()),
            "refresh",
            serde_json::json!({"session": sid}),
        );
        self.orca.store().create_token(&new, Some(&audit)).await?;
        if let Some(c) = context::current() {
            c.set_actor(Actor {
                name: principal.name.clone(),
                user_id: Some(rec.user_id),
            });
        }
        Ok(TokenPair {
            access_token: self.jwt.issue(rec.user_id, sid)?,
            refresh_token: refresh,
            token_type: "Bearer".into(),
            expires_in: self.jwt.ttl(),
        })
    }

    /// End the caller's session: its refresh tokens and access tokens stop working at once.
    pub(crate) async fn logout(&self, caller: &Caller) -> ApiResult<()> {
        let Via::Session(sid) = caller.via else {
            return Err(ApiError::new(
                poem::http::StatusCode::CONFLICT,
                "conflict",
                "this request uses an API token, which has no session to end; revoke it with DELETE /api/v1/tokens/{id}",
            ));
        };
        let audit = AuditRecord::new(
            self.now(),
            &caller.principal,
            "auth",
            Some(caller.user_id.to_string()),
            "logout",
            serde_json::json!({"session": sid}),
        );
        self.orca
            .store()
            .revoke_tokens(RevokeTokens::Family(sid), Some(&audit))
            .await?;
        Ok(())
    }

    /// Authenticate a bearer credential (an access token or an API token) and read the
    /// caller's principal as stored now, or as stored at most `http.auth.cache_ttl_ms` ago
    /// when no change of users, grants or tokens was made on this node or announced by
    /// another since (see `auth::cache`).
    pub(crate) async fn authenticate(&self, bearer: &str) -> ApiResult<Caller> {
        let cached = if self.auth_cache.enabled() {
            let key = cache::key(bearer);
            match self.auth_cache.get(&key, self.now()) {
                Some(c) => Ok(c),
                None => Err(Some(key)),
            }
        } else {
            Err(None)
        };
        let caller = match cached {
            Ok(c) => c,
            Err(key) => {
                let read_at = self.auth_cache.epoch();
                let (caller, validity) = self.authenticate_uncached(bearer).await?;
                if let Some(key) = key {
                    self.auth_cache.insert(key, &caller, read_at, validity);
                }
                caller
            }
        };
        if let Some(c) = context::current() {
            c.set_actor(Actor {
                name: caller.principal.name.clone(),
                user_id: Some(caller.user_id),
            });
        }
        let key = match caller.via {
            Via::ApiToken(id) => format!("token:{id}"),
            Via::Session(_) => format!("user:{}", caller.user_id),
        };
        self.local_limit(
            &key,
            self.config.rate_limit.per_caller_per_minute,
            "requests by this caller",
        )?;
        Ok(caller)
    }

    /// Verify a bearer credential and read its session or token record, the user and the
    /// grants from the store; also says how long the result may be reused.
    async fn authenticate_uncached(&self, bearer: &str) -> ApiResult<(Caller, Validity)> {
        let now = self.now();
        let store = self.orca.store();
        let (user_id, via, cap, validity) = if bearer.starts_with(Purpose::Api.prefix()) {
            let invalid =
                || ApiError::unauthenticated("the API token is invalid, expired or revoked");
            if !well_formed(bearer, Purpose::Api) {
                return Err(invalid());
            }
            let rec = match store.find_token(&secret_hash(bearer)).await {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(invalid()),
                Err(e) => return Err(e.into()),
            };
            if Purpose::of(&rec) != Some(Purpose::Api) || !live(&rec, now) {
                return Err(invalid());
            }
            let validity = Validity {
                token_until_unix: None,
                record_expires: rec.expires_at,
            };
            (rec.user_id, Via::ApiToken(rec.id), role_cap(&rec), validity)
        } else {
            let (user, sid, until) = self.jwt.verify_until(bearer).map_err(|r| {
                tracing::debug!(request_id = %context::request_id(), reason = %r.0, "access token refused");
                ApiError::unauthenticated("the access token is invalid or expired; refresh it or log in again")
            })?;
            let rec = match store.find_token(&session_hash(sid)).await {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(ApiError::unauthenticated(SESSION_ENDED));
                }
                Err(e) => return Err(e.into()),
            };
            if rec.user_id != user
                || Purpose::of(&rec) != Some(Purpose::Session)
                || !live(&rec, now)
            {
                return Err(ApiError::unauthenticated(SESSION_ENDED));
            }
            let validity = Validity {
                token_until_unix: Some(until),
                record_expires: rec.expires_at,
            };
            (user, Via::Session(sid), None, validity)
        };
        let mut principal = self.orca.principal_for(user_id).await?;
        if let Some(cap) = cap {
            principal.role = principal.role.min(cap);
        }
        Ok((
            Caller {
                principal,
                user_id,
                via,
            },
            validity,
        ))
    }
}
