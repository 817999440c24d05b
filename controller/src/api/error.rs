//! The management API's one error type: stable messages, details logged not leaked.

use std::any::Any;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::error;

use crate::app::AppError;
use crate::auth::Denied;
use crate::db::DbError;
use tollgate_model::FieldError;

/// Everything a management API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body could not be parsed.
    #[error("Failed to parse configuration: {0}")]
    Parse(String),
    /// The body is over the configured limit.
    #[error("request body is larger than the configured limit of {0} bytes")]
    TooLarge(usize),
    /// The body could not be read.
    #[error("invalid request body: {0}")]
    Body(String),
    /// A write was refused or failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// Authentication or authorization refused the call.
    #[error("denied")]
    Denied(Denied),
    /// No such route.
    #[error("not found")]
    NoRoute,
    /// A named thing does not exist (404).
    #[error("{0}")]
    NotFoundMessage(String),
    /// The caller may not do this to that thing (403).
    #[error("{0}")]
    ForbiddenMessage(String),
    /// A read behind the answer failed (500; the detail is logged, not sent).
    #[error("internal server error")]
    Storage(#[from] DbError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, errors): (StatusCode, Option<&[FieldError]>) = match &self {
            ApiError::Parse(_) | ApiError::Body(_) => (StatusCode::BAD_REQUEST, None),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, None),
            ApiError::NoRoute | ApiError::NotFoundMessage(_) => (StatusCode::NOT_FOUND, None),
            ApiError::ForbiddenMessage(_) => (StatusCode::FORBIDDEN, None),
            ApiError::Denied(d) => return denied(*d),
            ApiError::Storage(e) => return internal(e),
            ApiError::App(g) => match g {
                AppError::Invalid(errors) => (StatusCode::BAD_REQUEST, Some(errors.as_slice())),
                AppError::Rejected(message) => return rejected(message),
                AppError::NotFound(_) | AppError::Missing(_) => (StatusCode::NOT_FOUND, None),
                AppError::Mismatch { .. } => (StatusCode::BAD_REQUEST, None),
                g if g.is_conflict() => (StatusCode::CONFLICT, None),
                _ => return internal(g),
            },
        };
        let mut body = json!({"status": "error", "message": self.to_string()});
        if let Some(errors) = errors {
            body["errors"] = json!(errors);
        }
        (status, Json(body)).into_response()
    }
}

/// A change an Envoy refused: a 400 in the validation-error shape, with Envoy's message.
fn rejected(message: &str) -> Response {
    let errors = [FieldError {
        field: "spec".into(),
        message: format!("rejected by Envoy: {message}"),
    }];
    let body = json!({"status": "error", "message": "Envoy rejected the configuration", "errors": errors});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// The layer every REST router wears outermost: a handler that panics answers [`panicked`]'s 500 and
/// the server keeps serving.
pub type CatchPanics = CatchPanicLayer<fn(Box<dyn Any + Send + 'static>) -> Response>;

/// See [`CatchPanics`].
pub fn catch_panics() -> CatchPanics {
    CatchPanicLayer::custom(panicked as fn(Box<dyn Any + Send + 'static>) -> Response)
}

/// A 500 with the fixed message of every internal error. The payload may hold anything (a key, a
/// password), so it is neither sent nor logged here.
fn panicked(_payload: Box<dyn Any + Send + 'static>) -> Response {
    error!("a request handler panicked; answered 500");
    internal_response()
}

fn internal_response() -> Response {
    let body = json!({"status": "error", "message": "internal server error"});
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

/// A 500 with a fixed message; the cause goes to the log only.
fn internal(cause: &dyn std::fmt::Display) -> Response {
    error!(error = %cause, "internal error");
    internal_response()
}

fn denied(d: Denied) -> Response {
    let (status, code, message) = match d {
        Denied::Missing => (
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "no valid authentication credentials provided",
        ),
        Denied::Failed => (
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "authentication failed",
        ),
        Denied::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "forbidden"),
        Denied::Throttled(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_logins",
            "too many failed logins: retry later",
        ),
    };
    let mut resp = (status, Json(json!({"code": code, "message": message}))).into_response();
    if let Denied::Throttled(secs) = d
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tollgate\""),
        );
    }
    resp
}
