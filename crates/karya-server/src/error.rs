//! The one error type at the HTTP edge.
//!
//! Every failure leaves as `{"error": {"code", "message"}}` with a status from one table
//! ([`ErrorCode::status`]). Server faults are opaque to the caller: the cause is logged once,
//! here, and the body says only that something went wrong.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use karya_store::StoreError;
use serde_json::json;

/// Stable error codes: clients match on these, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body is not JSON, or not JSON of the expected shape.
    InvalidJson,
    /// The body parsed but a value is out of bounds or malformed.
    InvalidInput,
    /// A path or query parameter is malformed.
    InvalidParameter,
    /// No such resource (or it belongs to another client).
    NotFound,
    /// No credentials, or credentials that are not valid.
    Unauthenticated,
    /// Signed in, but the role may not do this.
    Forbidden,
    /// Too many attempts; wait.
    RateLimited,
    /// No such route or method.
    NoRoute,
    MethodNotAllowed,
    /// The change collides with stored data (a duplicate, a concurrent change).
    Conflict,
    /// The change breaks a rule (an illegal state transition).
    RuleViolation,
    /// Rows of a bulk file are refused; the body lists them (`rows`, `total_errors`).
    InvalidRows,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The database is unreachable or overloaded.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NoRoute => "no_route",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RuleViolation => "rule_violation",
            ErrorCode::InvalidRows => "invalid_rows",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidJson | ErrorCode::InvalidInput | ErrorCode::InvalidParameter => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::NotFound | ErrorCode::NoRoute => StatusCode::NOT_FOUND,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RuleViolation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidRows => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Field-level problems as (JSON pointer, problem), answered as `fields`.
    pub fields: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidInput, message)
    }

    /// An unexpected fault: logged with its cause, answered without it.
    pub fn internal(err: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %err, "request failed");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the cause has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.fields.is_empty() {
            true => json!({"error": {"code": self.code.as_str(), "message": self.message}}),
            false => {
                let fields: Vec<_> = self
                    .fields
                    .iter()
                    .map(|(path, problem)| json!({"path": path, "problem": problem}))
                    .collect();
                json!({"error": {"code": self.code.as_str(), "message": self.message, "fields": fields}})
            }
        };
        (self.code.status(), axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound { kind, id } => {
                ApiError::new(ErrorCode::NotFound, format!("{kind} {id} not found"))
            }
            StoreError::Conflict { message } => ApiError::new(ErrorCode::Conflict, message),
            StoreError::Rejected { message } => ApiError::new(ErrorCode::RuleViolation, message),
            err @ StoreError::SchemaTooNew { .. } => ApiError::internal(&err),
            StoreError::Other(err) => {
                let text = format!("{err:#}");
                if text.contains("pool timed out") || text.contains("Connection refused") {
                    tracing::warn!(error = %text, "database unavailable");
                    return ApiError::new(
                        ErrorCode::Unavailable,
                        "the database is unavailable; retry shortly",
                    );
                }
                ApiError::internal(&text)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with content-type: application/json",
            ),
            JsonRejection::JsonSyntaxError(err) => ApiError::new(
                ErrorCode::InvalidJson,
                format!("malformed JSON: {}", source_text(&err)),
            ),
            JsonRejection::JsonDataError(err) => ApiError::new(
                ErrorCode::InvalidJson,
                format!("JSON does not fit the schema: {}", source_text(&err)),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body too large")
            }
            other => ApiError::new(ErrorCode::InvalidJson, other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(ErrorCode::InvalidParameter, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("malformed query: {}", source_text(&rejection)),
        )
    }
}

/// The innermost cause's text: serde's message ("unknown field `x`, expected one of ...")
/// without axum's wrapping.
fn source_text(err: &dyn std::error::Error) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
