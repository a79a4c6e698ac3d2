//! Authentication flows, once for every frontend: login sessions with rotating refresh tokens
//! (a token used twice revokes its whole session), logout, API tokens (shown once, capped at
//! a role no higher than their owner's), one-time WebSocket tickets, and the announcement of
//! every change of users, grants or tokens ([`AuthEpoch`], [`Event::AuthChanged`]).
//!
//! The secrets themselves are described in [`crate::auth`]. Access tokens (JWTs) are HTTP's
//! format and live in orca-http; they name a session of this module.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;

use super::Orca;
use crate::actor::{Actor, AsActor, Ctx};
use crate::auth::{
    TokenPurpose, live, new_secret, secret_hash, session_hash, verify_password_async, well_formed,
};
use crate::bus::Event;
use crate::ids::UserId;
use crate::model::{AuditOutcome, Principal, Role, Timestamp};
use crate::store::{RevokeTokens, TokenKind, TokenRecord};
use crate::{Error, ErrorKind, Result};

/// The authorisation epoch of one [`Orca`]: it moves on whenever users, grants or tokens
/// changed through it, or may have (frontends that cache authenticated callers also bump it
/// on every [`Event::AuthChanged`] they hear from other nodes). Read it *before* the reads
/// whose result is cached; an entry read under an older epoch is stale.
#[derive(Debug, Default)]
pub struct AuthEpoch(AtomicU64);

impl AuthEpoch {
    /// The current epoch.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    /// Say that a user, a user's grants or a token changed, or may have.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A login session as handed out by [`Orca::login`] and [`Orca::refresh_session`].
#[derive(Debug, Clone)]
pub struct Session {
    /// Who logged in, as stored now.
    pub principal: Principal,
    /// The user.
    pub user_id: UserId,
    /// The session (access tokens name it; logout ends it).
    pub session_id: uuid::Uuid,
    /// The next single-use refresh token (shown to the client only).
    pub refresh_token: String,
    /// When the session ends unless refreshed before (refreshing keeps this time).
    pub expires_at: Timestamp,
}

/// The credential behind a WebSocket ticket (and the connection it opens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketCredential {
    /// A login session.
    Session(uuid::Uuid),
    /// An API token: its id and the hash of its secret (to find its record).
    ApiToken {
        /// The token's id.
        id: uuid::Uuid,
        /// The hash of its secret.
        hash: String,
    },
}

const BAD_LOGIN: &str = "invalid username or password";
const SESSION_ENDED: &str = "the session has ended; log in again";
/// The scope prefix recording which credential created an API token: `session:<session id>`
/// or `server`.
pub(crate) const CREATED_VIA: &str = "created_via:";
/// The scope prefix of a WebSocket ticket minted with an API token: that token's id.
const VIA: &str = "via:";
/// The scope prefix of a WebSocket ticket minted with an API token: the hash of its secret.
const VIA_HASH: &str = "via_hash:";

fn unauthenticated(msg: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, msg)
}

/// A principal for audit records about a user who is not (yet) authenticated.
fn attempted(name: &str, user_id: Option<UserId>) -> Principal {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    Principal {
        user_id,
        name: if clean.is_empty() { "-".into() } else { clean },
        role: Role::Viewer,
        scopes: vec![],
    }
}

fn delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

impl Orca {
    /// The authorisation epoch (see [`AuthEpoch`]).
    pub fn auth_epoch(&self) -> &Arc<AuthEpoch> {
        &self.auth_epoch
    }

    /// Users, grants or tokens changed (call after the write, whatever it returned: a write
    /// that reports an error may still have committed): bump the epoch at once, so this
    /// process's caches stop reusing what they read before, and announce it on the bus, so
    /// other nodes (PostgreSQL `LISTEN/NOTIFY`) do too.
    pub(crate) async fn auth_changed(&self, user_id: Option<UserId>) {
        self.auth_epoch.bump();
        if let Err(e) = self.bus.publish(vec![Event::AuthChanged { user_id }]).await {
            tracing::warn!(
                error = %e,
                "could not announce a change of users, grants or tokens on the event bus; \
                 other nodes see it within their credential cache's lifetime"
            );
        }
    }

    /// Revoke tokens for `p` with `audit` written in the same transaction, and announce it.
    async fn revoke(
        &self,
        p: &Actor,
        which: RevokeTokens,
        audit: crate::model::AuditRecord,
    ) -> Result<u64> {
        let r = self.store.revoke_tokens(which, Some(&audit)).await;
        let r = self.wrote(p, &audit, r);
        let user = match which {
            RevokeTokens::User(u) => Some(u),
            _ => p.user_id,
        };
        self.auth_changed(user).await;
        r
    }

    fn refresh_record(
        &self,
        user: UserId,
        sid: uuid::Uuid,
        expires: Timestamp,
    ) -> (String, TokenRecord) {
        let secret = new_secret(TokenPurpose::Refresh);
        let rec = TokenRecord {
            id: uuid::Uuid::now_v7(),
            user_id: user,
            kind: TokenKind::Refresh,
            family: Some(sid),
            hash: secret_hash(&secret),
            name: None,
            scopes: vec![TokenPurpose::Refresh.scope().into()],
            created_at: self.clock.now(),
            expires_at: Some(expires),
            used_at: None,
            revoked_at: None,
        };
        (secret, rec)
    }

    /// Hand out session `sid`'s next refresh token (ending at `expires`), audited as `action`
    /// by the user as stored now.
    async fn next_refresh(
        &self,
        ctx: &Ctx,
        user: UserId,
        sid: uuid::Uuid,
        expires: Timestamp,
        action: &str,
    ) -> Result<Session> {
        let principal = self.principal_for(user).await?;
        let (refresh, rec) = self.refresh_record(user, sid, expires);
        let who = Actor::new(principal.clone(), ctx.clone());
        let audit = self.audit(
            &who,
            "auth",
            Some(user.to_string()),
            action,
            serde_json::json!({"session": sid}),
        );
        let r = self.store.create_token(&rec, Some(&audit)).await;
        self.wrote(&who, &audit, r)?;
        Ok(Session {
            principal,
            user_id: user,
            session_id: sid,
            refresh_token: refresh,
            expires_at: expires,
        })
    }

    /// Log in with a user name and password: a new session lasting `ttl`, audited (a failed
    /// attempt too, as `login` with outcome `failure`). The same answer for an unknown user, a
    /// wrong password and a disabled user. Throttling attempts is the frontend's (it knows
    /// the client's address).
    pub async fn login(
        &self,
        ctx: &Ctx,
        username: &str,
        password: SecretString,
        ttl: Duration,
    ) -> Result<Session> {
        let user = match self.store.find_user(username).await {
            Ok(u) => Some(u),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let hash = user
            .as_ref()
            .filter(|u| u.active)
            .and_then(|u| u.password_hash.clone());
        let ok = verify_password_async(password, hash).await;
        let Some(user) = user.filter(|_| ok) else {
            let who = Actor::new(attempted(username, None), ctx.clone());
            let rec = self
                .audit(
                    &who,
                    "auth",
                    None,
                    "login",
                    serde_json::json!({"reason": "invalid credentials"}),
                )
                .with_outcome(AuditOutcome::Failure);
            if let Err(e) = self.append_audit(&who, &rec).await {
                tracing::error!(error = %e, "could not write an audit record");
            }
            return Err(unauthenticated(BAD_LOGIN));
        };
        let now = self.clock.now();
        let sid = uuid::Uuid::now_v7();
        let expires = now + delta(ttl);
        let anchor = TokenRecord {
            id: uuid::Uuid::now_v7(),
            user_id: user.id,
            kind: TokenKind::Refresh,
            family: Some(sid),
            hash: session_hash(sid),
            name: Some("session".into()),
            scopes: vec![TokenPurpose::Session.scope().into()],
            created_at: now,
            expires_at: Some(expires),
            used_at: Some(now),
            revoked_at: None,
        };
        self.store.create_token(&anchor, None).await?;
        self.next_refresh(ctx, user.id, sid, expires, "login").await
    }

    /// Trade a refresh token for the session's next one (the session keeps its end). A token
    /// used twice revokes its whole session (audited as `refresh_reuse`, denied).
    pub async fn refresh_session(&self, ctx: &Ctx, token: &str) -> Result<Session> {
        let invalid = || unauthenticated("the refresh token is invalid or expired; log in again");
        if !well_formed(token, TokenPurpose::Refresh) {
            return Err(invalid());
        }
        let rec = match self.store.find_token(&secret_hash(token)).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(invalid()),
            Err(e) => return Err(e),
        };
        if TokenPurpose::of(&rec) != Some(TokenPurpose::Refresh) || rec.kind != TokenKind::Refresh {
            return Err(invalid());
        }
        let Some(sid) = rec.family else {
            return Err(invalid());
        };
        if rec.revoked_at.is_some() {
            return Err(unauthenticated(SESSION_ENDED));
        }
        if !live(&rec, self.clock.now()) {
            return Err(invalid());
        }
        if rec.used_at.is_some() || !self.store.use_token(rec.id).await? {
            let name = match self.store.get_user(rec.user_id).await {
                Ok(u) => u.username,
                Err(_) => rec.user_id.to_string(),
            };
            let who = Actor::new(attempted(&name, Some(rec.user_id)), ctx.clone());
            let audit = self
                .audit(
                    &who,
                    "auth",
                    Some(rec.user_id.to_string()),
                    "refresh_reuse",
                    serde_json::json!({"session": sid, "reason": "a refresh token was used twice; the session was revoked"}),
                )
                .with_outcome(AuditOutcome::Denied);
            self.revoke(&who, RevokeTokens::Family(sid), audit).await?;
            tracing::warn!(user_id = %rec.user_id, "refresh token reuse: session revoked");
            return Err(unauthenticated(
                "this refresh token was already used, so the session was revoked as a precaution; log in again",
            ));
        }
        let expires = rec.expires_at.unwrap_or_else(|| self.clock.now());
        self.next_refresh(ctx, rec.user_id, sid, expires, "refresh")
            .await
    }

    /// End the actor's session `sid`: its refresh tokens (and access tokens naming it) stop
    /// working at once.
    pub async fn logout(&self, p: &(impl AsActor + ?Sized), sid: uuid::Uuid) -> Result<()> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let Some(user) = p.user_id else {
            return Err(Error::invalid("only a user has sessions to end"));
        };
        let audit = self.audit(
            p,
            "auth",
            Some(user.to_string()),
            "logout",
            serde_json::json!({"session": sid}),
        );
        self.revoke(p, RevokeTokens::Family(sid), audit).await?;
        Ok(())
    }

    /// The live anchor record of session `sid`, if the session is open.
    pub async fn open_session(&self, sid: uuid::Uuid) -> Result<Option<TokenRecord>> {
        self.live_token(&session_hash(sid), TokenPurpose::Session)
            .await
    }

    /// The live record of the API token whose secret is `secret`, if it is one.
    pub async fn api_token_by_secret(&self, secret: &str) -> Result<Option<TokenRecord>> {
        if !well_formed(secret, TokenPurpose::Api) {
            return Ok(None);
        }
        self.live_token(&secret_hash(secret), TokenPurpose::Api)
            .await
    }

    /// The live record behind `cred` if it belongs to `user`.
    pub async fn live_credential(
        &self,
        user: UserId,
        cred: &TicketCredential,
    ) -> Result<Option<TokenRecord>> {
        let (hash, purpose, id) = match cred {
            TicketCredential::Session(sid) => (session_hash(*sid), TokenPurpose::Session, None),
            TicketCredential::ApiToken { id, hash } => (hash.clone(), TokenPurpose::Api, Some(*id)),
        };
        Ok(self
            .live_token(&hash, purpose)
            .await?
            .filter(|r| r.user_id == user && id.is_none_or(|id| id == r.id)))
    }

    async fn live_token(&self, hash: &str, purpose: TokenPurpose) -> Result<Option<TokenRecord>> {
        let rec = match self.store.find_token(hash).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let ok = TokenPurpose::of(&rec) == Some(purpose) && live(&rec, self.clock.now());
        Ok(ok.then_some(rec))
    }

    /// Create an API token for the actor, acting with at most `role` (default: the actor's
    /// role; never more), expiring after `expires_in_days` (at most `max_days` when set; the
    /// default), recording `origin` (the credential that created it: `session:<id>` or
    /// `server`). Returns the record and the secret (shown this once).
    pub async fn create_api_token(
        &self,
        p: &(impl AsActor + ?Sized),
        origin: &str,
        name: &str,
        role: Option<Role>,
        expires_in_days: Option<u64>,
        max_days: Option<u64>,
    ) -> Result<(TokenRecord, String)> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let Some(user) = p.user_id else {
            return Err(Error::invalid("only a user can own API tokens"));
        };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "the token name must be 1-64 printable characters",
            ));
        }
        let effective = p.role;
        let role = role.unwrap_or(effective);
        if role > effective {
            return Err(Error::denied(format!(
                "a token cannot have more rights than its creator: you act as {}, not {}",
                effective.as_str(),
                role.as_str()
            )));
        }
        let days = match (expires_in_days, max_days) {
            (Some(0), _) => return Err(Error::invalid("expires_in_days must be at least 1")),
            (Some(d), Some(m)) if d > m => {
                return Err(Error::invalid(format!(
                    "expires_in_days must be at most {m} on this server"
                )));
            }
            (Some(d), _) => Some(d),
            (None, m) => m,
        };
        let now = self.clock.now();
        let expires_at = days
            .map(|d| now + chrono::TimeDelta::days(i64::try_from(d).unwrap_or(36500).min(36500)));
        let secret = new_secret(TokenPurpose::Api);
        let rec = TokenRecord {
            id: uuid::Uuid::now_v7(),
            user_id: user,
            kind: TokenKind::Api,
            family: None,
            hash: secret_hash(&secret),
            name: Some(name.to_string()),
            scopes: vec![
                TokenPurpose::Api.scope().into(),
                format!("role:{}", role.as_str()),
                format!("{CREATED_VIA}{origin}"),
            ],
            created_at: now,
            expires_at,
            used_at: None,
            revoked_at: None,
        };
        let audit = self.audit(
            p,
            "token",
            Some(rec.id.to_string()),
            "create",
            serde_json::json!({"name": name, "role": role.as_str(), "expires_at": expires_at, "created_via": origin}),
        );
        let r = self.store.create_token(&rec, Some(&audit)).await;
        self.wrote(p, &audit, r)?;
        Ok((rec, secret))
    }

    /// The actor's API tokens, newest first.
    pub async fn api_tokens(&self, p: &(impl AsActor + ?Sized)) -> Result<Vec<TokenRecord>> {
        let actor = p.as_actor();
        let Some(user) = actor.user_id else {
            return Ok(vec![]);
        };
        let mut v: Vec<TokenRecord> = self
            .store
            .list_tokens(user)
            .await?
            .into_iter()
            .filter(|t| TokenPurpose::of(t) == Some(TokenPurpose::Api))
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(v)
    }

    /// Revoke one of the actor's API tokens.
    pub async fn revoke_api_token(
        &self,
        p: &(impl AsActor + ?Sized),
        id: uuid::Uuid,
    ) -> Result<()> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let tokens = self.api_tokens(p).await?;
        let Some(t) = tokens.into_iter().find(|t| t.id == id) else {
            return Err(Error::not_found(format!("API token {id} not found")));
        };
        let audit = self.audit(
            p,
            "token",
            Some(id.to_string()),
            "revoke",
            serde_json::json!({"name": t.name}),
        );
        self.revoke(p, RevokeTokens::Id(id), audit).await?;
        Ok(())
    }

    /// A one-time ticket, valid for `ttl`, to open a connection as the actor with `cred` (the
    /// credential the actor authenticated with, re-checked while the connection lives).
    pub async fn create_ws_ticket(
        &self,
        p: &(impl AsActor + ?Sized),
        cred: &TicketCredential,
        ttl: Duration,
    ) -> Result<String> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let Some(user) = p.user_id else {
            return Err(Error::invalid("only a user can open live connections"));
        };
        let now = self.clock.now();
        let secret = new_secret(TokenPurpose::WsTicket);
        let mut scopes = vec![TokenPurpose::WsTicket.scope().to_string()];
        let family = match cred {
            TicketCredential::Session(sid) => Some(*sid),
            TicketCredential::ApiToken { id, hash } => {
                scopes.push(format!("{VIA}{id}"));
                scopes.push(format!("{VIA_HASH}{hash}"));
                None
            }
        };
        let rec = TokenRecord {
            id: uuid::Uuid::now_v7(),
            user_id: user,
            kind: TokenKind::Api,
            family,
            hash: secret_hash(&secret),
            name: Some("ws-ticket".into()),
            scopes,
            created_at: now,
            expires_at: Some(now + delta(ttl)),
            used_at: None,
            revoked_at: None,
        };
        let audit = self.audit(
            p,
            "ws",
            Some(rec.id.to_string()),
            "ticket",
            serde_json::json!({}),
        );
        let r = self.store.create_token(&rec, Some(&audit)).await;
        self.wrote(p, &audit, r)?;
        Ok(secret)
    }

    /// Redeem a ticket (once): its user and the credential that minted it. The caller must
    /// still check that credential ([`Orca::live_credential`]) and read the user's rights.
    pub async fn redeem_ws_ticket(&self, ticket: &str) -> Result<(UserId, TicketCredential)> {
        let invalid = || {
            unauthenticated(
                "the WebSocket ticket is invalid, expired or already used; get a new one from POST /api/v1/ws/ticket",
            )
        };
        if !well_formed(ticket, TokenPurpose::WsTicket) {
            return Err(invalid());
        }
        let Some(rec) = self
            .live_token(&secret_hash(ticket), TokenPurpose::WsTicket)
            .await?
        else {
            return Err(invalid());
        };
        if rec.used_at.is_some() || !self.store.use_token(rec.id).await? {
            return Err(invalid());
        }
        let scope = |prefix: &str| rec.scopes.iter().find_map(|s| s.strip_prefix(prefix));
        let cred = match (rec.family, scope(VIA), scope(VIA_HASH)) {
            (Some(sid), None, None) => TicketCredential::Session(sid),
            (None, Some(id), Some(hash)) => TicketCredential::ApiToken {
                id: id.parse().map_err(|_| invalid())?,
                hash: hash.to_string(),
            },
            _ => return Err(invalid()),
        };
        Ok((rec.user_id, cred))
    }

    /// Count one hit for `key` in the fixed window starting at `window_start`; the count so
    /// far in that window, across every node sharing the store (for rate limits).
    pub async fn count_hit(&self, key: &str, window_start: Timestamp) -> Result<u64> {
        self.store.rate_limit_hit(key, window_start).await
    }

    /// A user by name (admins; or the user itself).
    pub async fn find_user(
        &self,
        p: &(impl AsActor + ?Sized),
        username: &str,
    ) -> Result<crate::model::User> {
        let actor = p.as_actor();
        let p: &Actor = &actor;
        let is_self = p.user_id.is_some() && p.name.eq_ignore_ascii_case(username);
        if !is_self {
            crate::policy::check(p, crate::policy::Action::UserManage, None)?;
        }
        self.store.find_user(username).await
    }
}

/// Which credential created an API token, if recorded (`session:<id>` or `server`).
pub fn created_via(record: &TokenRecord) -> Option<&str> {
    record
        .scopes
        .iter()
        .find_map(|s| s.strip_prefix(CREATED_VIA))
}
