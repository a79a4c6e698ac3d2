//! The shared state of the HTTP API.

use std::ops::Deref;
use std::sync::Arc;

use orca_core::{Error, Orca, Result};

use crate::auth::cache::{self, AuthCache};
use crate::auth::jwt::JwtKeys;
use crate::auth::{AuthChanges, follow_auth_changes};
use crate::config::HttpConfig;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::ratelimit::{LocalLimiter, window_now};

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

/// The inside of [`AppState`].
pub struct StateInner {
    pub(crate) orca: Orca,
    pub(crate) config: HttpConfig,
    pub(crate) jwt: JwtKeys,
    pub(crate) limiter: LocalLimiter,
    pub(crate) metrics: Metrics,
    pub(crate) auth_cache: AuthCache,
    /// Changes of users, grants and tokens, for open WebSockets.
    pub(crate) auth_changes: AuthChanges,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Deref for AppState {
    type Target = StateInner;
    fn deref(&self) -> &StateInner {
        &self.inner
    }
}

impl AppState {
    /// The state for serving `orca` with `config`. The config is validated. Call inside a
    /// Tokio runtime: it starts a task that counts finished
    /// executions for `/metrics` and, with the credential cache on, one that follows the
    /// Orca's event bus so changes announced by any node end the reuse of cached callers here
    /// (module `auth::cache`), and one that tells open WebSockets of such changes.
    pub fn new(orca: Orca, config: HttpConfig) -> Result<Self> {
        config.validate()?;
        let secret = config
            .auth
            .jwt_secret
            .as_ref()
            .ok_or_else(|| Error::invalid("http.auth.jwt_secret is required"))?;
        let jwt = JwtKeys::new(secret.bytes(), &config.auth);
        let auth_cache = AuthCache::new(
            std::time::Duration::from_millis(config.auth.cache_ttl_ms),
            orca.auth_epoch().clone(),
        );
        if auth_cache.enabled() {
            cache::follow_bus(orca.bus(), orca.auth_epoch())?;
        }
        let metrics = Metrics::default();
        metrics.follow_bus(&orca);
        let (auth_changes, _) = tokio::sync::broadcast::channel(256);
        follow_auth_changes(orca.bus(), &auth_changes);
        Ok(AppState {
            inner: Arc::new(StateInner {
                orca,
                config,
                jwt,
                limiter: LocalLimiter::default(),
                metrics,
                auth_cache,
                auth_changes,
            }),
        })
    }

    /// The Orca facade.
    pub fn orca(&self) -> &Orca {
        &self.inner.orca
    }

    /// The settings.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// Count a hit in a window shared by all nodes (the database); 429 when over `limit`.
    pub(crate) async fn db_limit(&self, key: &str, limit: u32, what: &str) -> ApiResult<()> {
        if !self.config.rate_limit.enabled {
            return Ok(());
        }
        let (n, left) = self.db_hit(key).await?;
        if n > u64::from(limit) {
            return Err(ApiError::rate_limited(left, what));
        }
        Ok(())
    }

    /// Count a hit in a window shared by all nodes (the database): the hits in this window
    /// so far (this one included) and the seconds left in it.
    pub(crate) async fn db_hit(&self, key: &str) -> ApiResult<(u64, u64)> {
        let (start, left) = window_now();
        let start = chrono::DateTime::from_timestamp(start as i64, 0)
            .ok_or_else(|| ApiError::from(Error::unexpected("clock out of range")))?;
        let n = self.orca.count_hit(key, start).await?;
        Ok((n, left))
    }

    /// Count a hit in this process; 429 when over `limit`.
    pub(crate) fn local_limit(&self, key: &str, limit: u32, what: &str) -> ApiResult<()> {
        if !self.config.rate_limit.enabled {
            return Ok(());
        }
        self.limiter
            .hit(key, limit)
            .map_err(|left| ApiError::rate_limited(left, what))
    }
}
