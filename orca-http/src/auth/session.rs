//! Login sessions over HTTP (login, refresh, logout: the facade's [`orca_core::Orca::login`]
//! and neighbours, which audit them and announce revocations), and the authentication of every
//! request.

use orca_core::Session;
use orca_core::auth::{TokenPurpose, role_cap};
use orca_core::model::Timestamp;
use poem_openapi::Object;
use secrecy::SecretString;

use super::cache::{self, Validity};
use super::{Caller, Via};
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

const SESSION_ENDED: &str = "the session has ended; log in again";

impl AppState {
    fn now(&self) -> Timestamp {
        self.orca.clock().now()
    }

    /// The token pair for a session the facade opened or refreshed; the request's actor
    /// becomes its user.
    fn pair(&self, s: Session) -> ApiResult<TokenPair> {
        if let Some(c) = context::current() {
            c.set_actor(Actor {
                name: s.principal.name.clone(),
                user_id: Some(s.user_id),
            });
        }
        Ok(TokenPair {
            access_token: self.jwt.issue(s.user_id, s.session_id)?,
            refresh_token: s.refresh_token,
            token_type: "Bearer".into(),
            expires_in: self.jwt.ttl(),
        })
    }

    /// Log in with a user name and password (throttled per address and per account).
    pub(crate) async fn login(
        &self,
        username: &str,
        password: SecretString,
    ) -> ApiResult<TokenPair> {
        self.throttle_password_check(username).await?;
        let ttl = std::time::Duration::from_secs(self.config.auth.refresh_ttl_seconds);
        let session = self
            .orca
            .login(&context::core(), username, password, ttl)
            .await?;
        self.pair(session)
    }

    /// Trade a refresh token for a new pair. A token used twice revokes its whole session.
    pub(crate) async fn refresh(&self, token: &str) -> ApiResult<TokenPair> {
        let session = self.orca.refresh_session(&context::core(), token).await?;
        self.pair(session)
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
        self.orca.logout(&caller.actor(), sid).await?;
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
        let (user_id, via, cap, validity) = if bearer.starts_with(TokenPurpose::Api.prefix()) {
            let Some(rec) = self.orca.api_token_by_secret(bearer).await? else {
                return Err(ApiError::unauthenticated(
                    "the API token is invalid, expired or revoked",
                ));
            };
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
            let Some(rec) = self
                .orca
                .open_session(sid)
                .await?
                .filter(|r| r.user_id == user)
            else {
                return Err(ApiError::unauthenticated(SESSION_ENDED));
            };
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
