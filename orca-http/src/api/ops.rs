//! `/healthz`, `/readyz`, `/metrics`.

use orca_core::policy::Action;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::Tag;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Operational endpoints.
pub(crate) struct OpsApi(pub AppState);

impl AppState {
    /// Authenticate a scraper of `/metrics`: an admin's access token or API token.
    async fn metrics_caller(&self, req: &poem::Request) -> ApiResult<()> {
        let bearer = req
            .header("authorization")
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty());
        let Some(bearer) = bearer else {
            return Err(ApiError::unauthenticated(
                "this server's metrics need `Authorization: Bearer` with an admin's access token \
                 or API token",
            ));
        };
        let caller = self.authenticate(bearer).await?;
        orca_core::policy::check(&caller.principal, Action::MetricsRead, None)?;
        Ok(())
    }
}

/// A status.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct Status {
    /// `ok` or `ready`.
    pub status: String,
}

/// Readiness.
#[derive(ApiResponse)]
pub(crate) enum Ready {
    /// The database answers.
    #[oai(status = 200)]
    Ready(Json<Status>),
}

#[OpenApi(tag = "Tag::Operations")]
impl OpsApi {
    /// Liveness
    ///
    /// The process serves HTTP.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Status> {
        Json(Status {
            status: "ok".into(),
        })
    }

    /// Readiness
    ///
    /// The database is reachable (503 otherwise).
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self) -> ApiResult<Ready> {
        self.0.orca.ready().await.map_err(|e| {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::new(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                "the database is not reachable",
            )
        })?;
        Ok(Ready::Ready(Json(Status {
            status: "ready".into(),
        })))
    }

    /// Prometheus metrics
    ///
    /// HTTP requests and latency, executions by state, queue depth, finished executions and
    /// connector probe latency (by system id), in the Prometheus text format. Needs
    /// `Authorization: Bearer` with an admin's access token or API token when
    /// `http.metrics.require_token` says so (by default: when the server listens on an address
    /// other than loopback).
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, req: &poem::Request) -> ApiResult<PlainText<String>> {
        if !self.0.config.metrics.enabled {
            return Err(ApiError::new(
                poem::http::StatusCode::NOT_FOUND,
                "not_found",
                "metrics are switched off on this server",
            ));
        }
        if self.0.config.metrics_token_required() {
            self.0.metrics_caller(req).await?;
        }
        Ok(PlainText(self.0.metrics.render(&self.0.orca).await))
    }
}
