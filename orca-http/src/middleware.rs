//! The request pipeline around every endpoint: request id and client address, a log line,
//! per-address rate limit, body size limit, JSON error bodies for errors raised before a handler
//! ran, one audit record for every mutating or denied request the facade did not audit,
//! metrics, and a few response headers (request id, `nosniff`, `X-Frame-Options: DENY`, a
//! `Content-Security-Policy` that loads nothing and forbids framing unless the answer has its
//! own, as the docs page does; see `csp`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use orca_core::Actor;
use orca_core::model::{AuditOutcome, Principal, Role};
use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;
use tracing::Instrument;

use crate::context::{self, RequestCtx};
use crate::error::{ApiError, ErrorBody, code_for_status};
use crate::state::AppState;

/// The client address: the peer, or the last address in `X-Forwarded-For` that is not a
/// trusted proxy when the peer is one.
fn client_address(req: &Request, trusted: &[IpAddr]) -> String {
    let Some(peer) = req.remote_addr().as_socket_addr().map(|a| a.ip()) else {
        return req.remote_addr().to_string();
    };
    if trusted.contains(&peer)
        && let Some(xff) = req.header("x-forwarded-for")
    {
        for hop in xff.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if trusted.contains(&ip) => continue,
                Ok(ip) => return ip.to_string(),
                Err(_) => break,
            }
        }
    }
    peer.to_string()
}

fn has_body(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// A JSON error response for an error poem or poem-openapi raised.
fn error_response(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let message = if status == StatusCode::UNAUTHORIZED {
        "authentication required: send `Authorization: Bearer <access token or API token>`"
            .to_string()
    } else if status.is_server_error() {
        tracing::error!(request_id = %context::request_id(), error = %err, "request failed");
        "an internal error occurred (details are in the server log under this request id)"
            .to_string()
    } else {
        err.to_string()
    };
    json_error(status, code_for_status(status), message)
}

fn json_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        code: code.to_string(),
        message,
        request_id: context::request_id(),
    };
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(serde_json::to_vec(&body).unwrap_or_default())
}

/// Limit the body: by `Content-Length`, or by reading at most `max` bytes.
async fn limit_body(req: &mut Request, max: usize) -> Result<(), Response> {
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {max} bytes"),
        )
    };
    if let Some(len) = req.header("content-length") {
        return match len.trim().parse::<u64>() {
            Ok(n) if n > max as u64 => Err(too_large()),
            Ok(_) => Ok(()),
            Err(_) => Err(json_error(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "bad Content-Length".into(),
            )),
        };
    }
    if has_body(req.method()) {
        let body = req.take_body();
        match body.into_bytes_limit(max).await {
            Ok(b) => req.set_body(b),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Err(too_large()),
            Err(e) => {
                return Err(json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    format!("cannot read the request body: {e}"),
                ));
            }
        }
    }
    Ok(())
}

fn singular(seg: &str) -> &str {
    match seg {
        "systems" => "system",
        "jobs" => "job",
        "executions" => "execution",
        "users" => "user",
        "tokens" => "token",
        other => other,
    }
}

/// Record, through the facade, a request it did not audit (refused before an operation, or
/// an operation that failed before its write).
async fn record_unaudited(
    state: &AppState,
    ctx: &RequestCtx,
    method: &Method,
    path: &str,
    op: &str,
    status: StatusCode,
    code: Option<String>,
) {
    let actor = ctx.actor();
    let principal = Principal {
        user_id: actor.as_ref().and_then(|a| a.user_id),
        name: actor.map(|a| a.name).unwrap_or_else(|| "anonymous".into()),
        role: Role::Viewer,
        scopes: vec![],
    };
    let mut segs = path
        .trim_start_matches("/api/v1/")
        .split('/')
        .filter(|s| !s.is_empty());
    let resource_type = segs
        .next()
        .map(singular)
        .unwrap_or("http")
        .chars()
        .take(32)
        .collect::<String>();
    let resource_id = segs.next().map(|s| s.chars().take(255).collect::<String>());
    let outcome = match status.as_u16() {
        401 | 403 | 429 => AuditOutcome::Denied,
        s if s < 400 => AuditOutcome::Success,
        _ => AuditOutcome::Failure,
    };
    let r = state
        .orca
        .record_action(
            &Actor::new(principal, ctx.core.clone()),
            (&resource_type, resource_id),
            op,
            outcome,
            serde_json::json!({"method": method.as_str(), "path": path.chars().take(512).collect::<String>(), "status": status.as_u16(), "code": code}),
        )
        .await;
    if let Err(e) = r {
        tracing::error!(request_id = %ctx.request_id, error = %e, "could not write an audit record");
    }
}

/// Run one request through the pipeline.
pub(crate) async fn handle<E: Endpoint + 'static>(
    state: AppState,
    routes: Arc<Routes>,
    ep: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id = context::sanitize_request_id(req.header("x-request-id"));
    let client = client_address(&req, &state.config.trusted_proxies);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let user_agent = req.header("user-agent").map(|ua| {
        ua.chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect::<String>()
    });
    let ctx = Arc::new(RequestCtx::new(
        request_id.clone(),
        client.clone(),
        user_agent,
    ));
    let span = tracing::info_span!("http", request_id = %request_id);
    let liveness_probe = path == "/healthz";
    let inner = {
        let state = state.clone();
        async move {
            let limit = state.config.rate_limit.per_address_per_minute;
            // `/healthz` is a liveness probe: it does no work and is never throttled (an
            // orchestrator probing often from one address must not see its server as down).
            if state.config.rate_limit.enabled
                && !liveness_probe
                && let Err(e) = state.local_limit(
                    &format!("addr:{client}"),
                    limit,
                    "requests from this address",
                )
            {
                return (poem::Error::from(e).into_response(), None);
            }
            if let Err(resp) = limit_body(&mut req, state.config.max_body_bytes).await {
                return (resp, None);
            }
            match ep.call(req).await {
                Ok(r) => {
                    let r = r.into_response();
                    let op = r.data::<OperationId>().copied();
                    (r, op)
                }
                Err(err) => {
                    let op = err.data::<OperationId>().copied();
                    (error_response(err), op)
                }
            }
        }
    };
    let (mut resp, op) = context::scope(ctx.clone(), inner.instrument(span.clone())).await;
    let status = resp.status();
    let op: &'static str = match op {
        Some(o) => o.0,
        None if path.starts_with("/api/v1/ws") => "websocket",
        None => "other",
    };
    if (has_body(&method) || status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN)
        && ctx.audits() == 0
        && path.starts_with("/api/")
    {
        let code = if status.is_client_error() || status.is_server_error() {
            Some(code_for_status(status).to_string())
        } else {
            None
        };
        context::scope(
            ctx.clone(),
            record_unaudited(&state, &ctx, &method, &path, op, status, code),
        )
        .instrument(span.clone())
        .await;
    }
    let elapsed = started.elapsed();
    state.metrics.observe(
        crate::metrics::method_name(&method),
        op,
        status.as_u16(),
        elapsed.as_secs_f64(),
    );
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            operation = %op,
            status = status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            client = %ctx.client,
            "request"
        )
    });
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !h.contains_key("content-security-policy") {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(crate::csp::API),
        );
    }
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = routes.allow(&path)
        && let Ok(v) = HeaderValue::from_str(allow)
    {
        h.insert("allow", v);
    }
    if path.starts_with("/api/v1") {
        h.insert("cache-control", HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        poem::Error::from(e).into_response()
    }
}

/// The methods each path template allows, for the `Allow` header of 405 answers.
#[derive(Debug, Default)]
pub(crate) struct Routes(Vec<(Vec<String>, String)>);

impl Routes {
    /// From the OpenAPI document's paths, plus the routes outside it.
    pub fn from_spec(spec: &serde_json::Value) -> Self {
        let mut v = vec![
            (split("/api/v1/ws"), "GET".to_string()),
            (split("/api/openapi.json"), "GET".to_string()),
        ];
        if let Some(paths) = spec["paths"].as_object() {
            for (p, item) in paths {
                let methods: Vec<String> = item
                    .as_object()
                    .map(|m| m.keys().map(|k| k.to_uppercase()).collect())
                    .unwrap_or_default();
                v.push((split(p), methods.join(", ")));
            }
        }
        Routes(v)
    }

    fn allow(&self, path: &str) -> Option<&str> {
        let segs = split(path);
        self.0
            .iter()
            .find(|(t, _)| {
                t.len() == segs.len()
                    && t.iter()
                        .zip(&segs)
                        .all(|(a, b)| a.starts_with('{') || a == b)
            })
            .map(|(_, m)| m.as_str())
    }
}

fn split(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
