//! Errors on the wire: one table from [`ErrorKind`] to an HTTP status and a stable `code`, and
//! the JSON body every error has: `{"code": "...", "message": "...", "request_id": "..."}`.

use orca_core::{Error, ErrorKind};
use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::context;

/// The body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `not_found`, `invalid_input`, `rate_limited`.
    pub code: String,
    /// What happened and what to do, for humans.
    pub message: String,
    /// The request id (also in the `x-request-id` response header and the server's logs).
    pub request_id: String,
}

/// The one mapping from orca-core error kinds to HTTP statuses. The `code` is
/// [`ErrorKind::code`]. Kinds about remote systems (connection, remote authentication, host
/// keys, timeouts) are gateway errors: the API worked, the system behind it did not.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Conflict | ErrorKind::LeaseLost => {
            StatusCode::CONFLICT
        }
        ErrorKind::Unsupported => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::ConnectionFailed | ErrorKind::AuthFailed | ErrorKind::HostKeyRejected => {
            StatusCode::BAD_GATEWAY
        }
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Storage | ErrorKind::Incompatible => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Crypto | ErrorKind::Unexpected => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Whether the message of this kind may leak internals (database errors, bugs): such messages
/// are logged with the request id and replaced by a generic one on the wire.
fn hide_message(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Storage | ErrorKind::Unexpected | ErrorKind::Crypto | ErrorKind::Incompatible
    ) || status_for(kind) == StatusCode::INTERNAL_SERVER_ERROR
}

/// An error response of any operation. Every operation may answer each of these; the body is
/// always an [`ErrorBody`].
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed or breaks a rule (`invalid_input`).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid credentials (`unauthenticated`).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Authenticated, but not allowed (`permission_denied`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Not found, or outside the caller's scope (`not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflicts with the current state (`conflict`, `already_exists`).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body is too large (`payload_too_large`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is not JSON or has no `Content-Type` (`unsupported_media_type`).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Understood but not possible with this system (`unsupported`).
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many requests (`rate_limited`); retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A bug or unexpected condition (`unexpected`).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A remote system failed (`connection_failed`, `auth_failed`, `host_key_rejected`).
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// The database is unavailable (`storage`).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
    /// A remote system did not answer in time (`timeout`).
    #[oai(status = 504)]
    GatewayTimeout(Json<ErrorBody>),
}

/// The result of an operation.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    /// An error with `status`, `code` and `message`, stamped with the current request id.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        let body = Json(ErrorBody {
            code: code.to_string(),
            message: message.into(),
            request_id: context::request_id(),
        });
        match status.as_u16() {
            400 => ApiError::BadRequest(body),
            401 => ApiError::Unauthorized(body),
            403 => ApiError::Forbidden(body),
            404 => ApiError::NotFound(body),
            409 => ApiError::Conflict(body),
            413 => ApiError::PayloadTooLarge(body),
            415 => ApiError::UnsupportedMediaType(body),
            422 => ApiError::Unprocessable(body),
            429 => ApiError::TooManyRequests(body, 1),
            502 => ApiError::BadGateway(body),
            503 => ApiError::Unavailable(body),
            504 => ApiError::GatewayTimeout(body),
            _ => ApiError::Internal(body),
        }
    }

    /// `429` with `Retry-After`.
    pub fn rate_limited(retry_after: u64, what: &str) -> Self {
        ApiError::TooManyRequests(
            Json(ErrorBody {
                code: "rate_limited".into(),
                message: format!("too many {what}; try again in {retry_after} s"),
                request_id: context::request_id(),
            }),
            retry_after.max(1),
        )
    }

    /// `401` with a message.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// `400` with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The body.
    pub fn body(&self) -> &ErrorBody {
        match self {
            ApiError::BadRequest(b)
            | ApiError::Unauthorized(b)
            | ApiError::Forbidden(b)
            | ApiError::NotFound(b)
            | ApiError::Conflict(b)
            | ApiError::PayloadTooLarge(b)
            | ApiError::UnsupportedMediaType(b)
            | ApiError::Unprocessable(b)
            | ApiError::TooManyRequests(b, _)
            | ApiError::Internal(b)
            | ApiError::BadGateway(b)
            | ApiError::Unavailable(b)
            | ApiError::GatewayTimeout(b) => &b.0,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let status = status_for(kind);
        let message = if hide_message(kind) {
            tracing::error!(request_id = %context::request_id(), code = kind.code(), error = %e, "request failed");
            match kind {
                ErrorKind::Storage => {
                    "the database is unavailable or failed; try again later (details are in the server log under this request id)".to_string()
                }
                _ => "an internal error occurred (details are in the server log under this request id)".to_string(),
            }
        } else {
            e.message().to_string()
        };
        ApiError::new(status, kind.code(), message)
    }
}

/// A stable code for an error poem or poem-openapi produced before a handler ran (parse
/// errors, unknown routes, missing credentials...).
pub(crate) fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_input",
        401 => "unauthenticated",
        403 => "permission_denied",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        409 => "conflict",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_input",
        429 => "rate_limited",
        s if s >= 500 => "unexpected",
        _ => "invalid_input",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_kind() {
        let cases = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::AlreadyExists, 409),
            (ErrorKind::Conflict, 409),
            (ErrorKind::LeaseLost, 409),
            (ErrorKind::InvalidInput, 400),
            (ErrorKind::PermissionDenied, 403),
            (ErrorKind::Unauthenticated, 401),
            (ErrorKind::Timeout, 504),
            (ErrorKind::ConnectionFailed, 502),
            (ErrorKind::AuthFailed, 502),
            (ErrorKind::HostKeyRejected, 502),
            (ErrorKind::Unsupported, 422),
            (ErrorKind::Crypto, 500),
            (ErrorKind::Incompatible, 503),
            (ErrorKind::Storage, 503),
            (ErrorKind::Unexpected, 500),
        ];
        for (kind, status) in cases {
            let e = ApiError::from(Error::new(kind, "boom"));
            assert_eq!(e.status().as_u16(), status, "{kind:?}");
            assert_eq!(e.body().code, kind.code());
        }
    }

    #[test]
    fn internal_messages_are_hidden() {
        let e = ApiError::from(Error::storage("SELECT * FROM secret_table failed"));
        assert!(!e.body().message.contains("secret_table"));
        let e = ApiError::from(Error::invalid("limit must be at most 1000"));
        assert_eq!(e.body().message, "limit must be at most 1000");
    }
}
