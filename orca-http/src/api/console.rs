//! `/api/v1/auth/console/*`: the web console's sign-in, which keeps the refresh token in an
//! `HttpOnly` cookie instead of handing it to script (see [`crate::auth::cookie`]).
//!
//! Each operation calls the same session logic as `/api/v1/auth/login`, `/refresh` and
//! `/logout`; only where the refresh token travels differs.
//!
//! A refresh whose answer never reached the browser (the page reloaded or closed while it was in
//! flight) leaves the browser holding the refresh token it just spent, and presenting a spent
//! token ends the session. So for [`REUSE_GRACE`] after a console refresh, presenting the same
//! token again answers the same renewed pair instead of counting as reuse (the "reuse interval"
//! of mainstream identity providers). The memory of recent refreshes is per process: behind a
//! load balancer, send a browser back to the node it came from or accept the rare sign-out.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use poem::Request;
use poem::http::StatusCode;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;

use super::Tag;
use super::auth::LoginRequest;
use crate::auth::TokenPair;
use crate::auth::cookie::{self, REFRESH_COOKIE, clear_csrf, issue_csrf};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The web console's sign-in operations.
pub(crate) struct ConsoleApi(pub AppState);

/// An access token for the console (the refresh token is in the `orca_refresh` cookie).
#[derive(Debug, Clone, Object)]
pub(crate) struct ConsoleSession {
    /// A JWT for `Authorization: Bearer ...`, valid for `expires_in` seconds. Keep it in
    /// memory only.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// A console session started or renewed.
#[derive(ApiResponse)]
pub(crate) enum SessionResponse {
    /// Signed in. `Set-Cookie` carries the refresh token (`orca_refresh`, `HttpOnly`,
    /// `SameSite=Strict`, path `/api/v1/auth/console`) and, on login, the CSRF token
    /// (`orca_csrf`) to repeat in `X-CSRF-Token`.
    #[oai(status = 200)]
    Ok(
        Json<ConsoleSession>,
        /// The `orca_refresh` cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

/// A console session ended.
#[derive(ApiResponse)]
pub(crate) enum LoggedOut {
    /// Signed out; the cookies are removed.
    #[oai(status = 204)]
    Done(
        /// Removes the `orca_refresh` cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

impl ConsoleApi {
    fn answer(&self, req: &Request, pair: TokenPair) -> SessionResponse {
        let max_age = self.0.config.auth.refresh_ttl_seconds;
        let set = cookie::refresh_cookie(&pair.refresh_token, cookie::is_https(req), max_age);
        SessionResponse::Ok(
            Json(ConsoleSession {
                access_token: pair.access_token,
                token_type: pair.token_type,
                expires_in: pair.expires_in,
            }),
            set,
        )
    }
}

/// How long a just-spent refresh token still answers the pair it was traded for.
pub(crate) const REUSE_GRACE: Duration = Duration::from_secs(20);

/// Recent console refreshes: SHA-256 of the spent refresh token → (when, the pair it got).
static RECENT: LazyLock<Mutex<HashMap<String, (Instant, TokenPair)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn recent_refresh(token: &str) -> Option<TokenPair> {
    let key = orca_core::auth::secret_hash(token);
    let mut m = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    m.retain(|_, (at, _)| at.elapsed() < REUSE_GRACE);
    m.get(&key).map(|(_, pair)| pair.clone())
}

fn remember_refresh(token: &str, pair: &TokenPair) {
    let key = orca_core::auth::secret_hash(token);
    let mut m = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    m.insert(key, (Instant::now(), pair.clone()));
}

fn no_session() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "no console session: sign in again",
    )
}

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Auth")]
impl ConsoleApi {
    /// Console: log in
    ///
    /// Like `POST /api/v1/auth/login` (same throttling, same answers for unknown users and
    /// wrong passwords), for a browser: the refresh token is set as an `HttpOnly` cookie and
    /// not returned, and a CSRF token is set in the `orca_csrf` cookie.
    #[oai(
        path = "/auth/console/login",
        method = "post",
        operation_id = "console_login",
        transform = "issue_csrf"
    )]
    async fn login(&self, req: &Request, body: Json<LoginRequest>) -> ApiResult<SessionResponse> {
        let b = body.0;
        let pair = self
            .0
            .login(&b.username, SecretString::from(b.password.0))
            .await?;
        Ok(self.answer(req, pair))
    }

    /// Console: refresh
    ///
    /// Trade the `orca_refresh` cookie for a new access token and a new refresh cookie (each
    /// refresh token works once; presenting a used one ends the session). Needs
    /// `X-CSRF-Token` equal to the `orca_csrf` cookie (403 otherwise).
    #[oai(
        path = "/auth/console/refresh",
        method = "post",
        operation_id = "console_refresh"
    )]
    async fn refresh(
        &self,
        req: &Request,
        /// The value of the `orca_csrf` cookie.
        #[oai(name = "X-CSRF-Token", validator(max_length = 256))]
        csrf: Header<String>,
    ) -> ApiResult<SessionResponse> {
        cookie::check_csrf(req, &csrf.0)?;
        let token = cookie::read(req, REFRESH_COOKIE).ok_or_else(no_session)?;
        if let Some(pair) = recent_refresh(&token) {
            // The same pair again: its access token is still checked on every use, so a session
            // ended meanwhile stays ended.
            if self.0.authenticate(&pair.access_token).await.is_ok() {
                return Ok(self.answer(req, pair));
            }
        }
        // Finished even when the browser goes away meanwhile (a reload drops the request): a
        // refresh that spent the token must be remembered, or the next one ends the session.
        let state = self.0.clone();
        let task = async move {
            let r = state.refresh(&token).await;
            if let Ok(pair) = &r {
                remember_refresh(&token, pair);
            }
            r
        };
        let handle = match crate::context::current() {
            Some(ctx) => tokio::spawn(crate::context::scope(ctx, task)),
            None => tokio::spawn(task),
        };
        let pair = handle.await.map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unexpected",
                format!("refresh failed: {e}"),
            )
        })??;
        Ok(self.answer(req, pair))
    }

    /// Console: log out
    ///
    /// End the session of the `orca_refresh` cookie (its access and refresh tokens stop
    /// working at once) and remove the cookies. Needs `X-CSRF-Token` equal to the `orca_csrf`
    /// cookie (403 otherwise). Without a session cookie it only removes the cookies.
    #[oai(
        path = "/auth/console/logout",
        method = "post",
        operation_id = "console_logout",
        transform = "clear_csrf"
    )]
    async fn logout(
        &self,
        req: &Request,
        /// The value of the `orca_csrf` cookie.
        #[oai(name = "X-CSRF-Token", validator(max_length = 256))]
        csrf: Header<String>,
    ) -> ApiResult<LoggedOut> {
        cookie::check_csrf(req, &csrf.0)?;
        if let Some(token) = cookie::read(req, REFRESH_COOKIE) {
            // The session is found through its refresh token: renew it once to act as it,
            // then end it. A used or unknown token has no session left to end.
            if let Ok(pair) = self.0.refresh(&token).await
                && let Ok(caller) = self.0.authenticate(&pair.access_token).await
            {
                self.0.logout(&caller).await?;
            }
        }
        Ok(LoggedOut::Done(cookie::clear_refresh_cookie(
            cookie::is_https(req),
        )))
    }
}
