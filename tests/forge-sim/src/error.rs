//! The errors the simulated API answers with, in GitLab's exact status codes and bodies.
//! Routes return `ApiError`; nothing else in the crate turns errors into HTTP responses.
//! It never decides whether a request is allowed; `auth.rs` and the routes do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown token: `{"message":"401 Unauthorized"}`.
    #[error("401 Unauthorized")]
    Unauthorized,
    /// Visible but the role is too low: `{"message":"403 Forbidden"}`.
    #[error("403 Forbidden")]
    Forbidden,
    /// Missing or invisible, named the way GitLab names it (`Group`, `Project`, `Label` ...).
    #[error("404 {0} Not Found")]
    NotFound(&'static str),
    /// A route that does not exist: `{"error":"404 Not Found"}`.
    #[error("404 Not Found")]
    NoRoute,
    /// A missing or malformed required parameter: `{"error":"title is missing"}`.
    #[error("{0}")]
    Param(String),
    /// Any other GitLab error body under `message`, with its status.
    #[error("{status}: {message}")]
    Message { status: StatusCode, message: Value },
}

impl ApiError {
    pub fn message(status: StatusCode, message: impl Into<Value>) -> ApiError {
        ApiError::Message {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<Value>) -> ApiError {
        ApiError::message(StatusCode::BAD_REQUEST, message)
    }

    pub fn missing(param: &str) -> ApiError {
        ApiError::Param(format!("{param} is missing"))
    }

    pub fn invalid(param: &str) -> ApiError {
        ApiError::Param(format!("{param} is invalid"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::Param(_) => StatusCode::BAD_REQUEST,
            ApiError::Message { status, .. } => *status,
        }
    }

    pub fn body(&self) -> Value {
        match self {
            ApiError::NoRoute => json!({ "error": "404 Not Found" }),
            ApiError::Param(text) => json!({ "error": text }),
            ApiError::Message { message, .. } => json!({ "message": message }),
            other => json!({ "message": other.to_string() }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.body())).into_response()
    }
}
