//! What a client command can fail with, each with the exit code scripts can act on, and the
//! server's refusals shown with their field-level messages (`errors[].field/message`).

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Exit code: the server refused, or something else failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the thing named does not exist (404).
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code: it conflicts with what exists (409).
pub const EXIT_CONFLICT: u8 = 4;
/// Exit code: the controller cannot be reached.
pub const EXIT_CONNECT: u8 = 5;

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A setting (flag, variable or config file entry) cannot be used.
    #[error("{what}: {reason}")]
    Setting { what: String, reason: String },
    /// A file to read (a document, password file, CA or config file) cannot be read.
    #[error("cannot read {path}: {source}")]
    Input { path: String, source: std::io::Error },
    /// A document cannot be sent (not YAML or JSON, not a RestApi).
    #[error("{origin}: {reason}")]
    Document { origin: String, reason: String },
    /// The controller cannot be reached (refused, no such host, timed out).
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server answered with an error status.
    #[error("{0}")]
    Refused(Box<Refusal>),
    /// An answer could not be read.
    #[error("{0}")]
    Answer(String),
    /// `apply --wait` ended before every Envoy served the change.
    #[error("{0}")]
    Wait(String),
    /// The TLS client could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A non-2xx answer.
#[derive(Debug)]
pub struct Refusal {
    /// What was being done (e.g. the document), shown first.
    pub context: Option<String>,
    /// `POST /rest-apis`.
    pub request: String,
    pub status: StatusCode,
    pub message: String,
    /// `(field, message)` pairs of a validation error.
    pub errors: Vec<(String, String)>,
    /// Set on a 401 when no password was given.
    pub no_password: bool,
}

// === impl ClientError ===

impl ClientError {
    /// The exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Setting { .. } => super::super::EXIT_USAGE,
            ClientError::Input { .. } => super::super::EXIT_NO_INPUT,
            ClientError::Connect { .. } => EXIT_CONNECT,
            ClientError::Refused(r) if r.status == StatusCode::NOT_FOUND => EXIT_NOT_FOUND,
            ClientError::Refused(r) if r.status == StatusCode::CONFLICT => EXIT_CONFLICT,
            _ => EXIT_FAILED,
        }
    }

    /// The refusal of `method url` with `status` and body `body`.
    pub fn refused(method: &Method, url: &Url, status: StatusCode, body: &Value, has_password: bool) -> ClientError {
        let message = match body {
            Value::String(text) => text.chars().take(500).collect(),
            other => other["message"].as_str().unwrap_or_default().to_string(),
        };
        let errors = body["errors"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                        (text("field"), text("message"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        ClientError::Refused(Box::new(Refusal {
            context: None,
            request: format!("{method} {}", short_path(url)),
            status,
            message,
            errors,
            no_password: status == StatusCode::UNAUTHORIZED && !has_password,
        }))
    }

    /// A request that got no answer.
    pub fn transport(url: &Url, e: reqwest::Error) -> ClientError {
        let e = e.without_url();
        // The innermost cause says it best ("Connection refused (os error 111)").
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        if e.is_connect() || e.is_timeout() || e.is_request() {
            let mut origin = url.clone();
            origin.set_path("");
            origin.set_query(None);
            ClientError::Connect {
                url: origin.to_string(),
                reason,
            }
        } else {
            ClientError::Answer(reason)
        }
    }

    /// The same error, saying what was being done.
    pub fn context(self, context: String) -> ClientError {
        match self {
            ClientError::Refused(mut r) => {
                r.context = Some(context);
                ClientError::Refused(r)
            }
            ClientError::Document { origin, reason } => ClientError::Document {
                origin: format!("{context}: {origin}"),
                reason,
            },
            other => other,
        }
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Refused(r) => Some(r.status),
            _ => None,
        }
    }
}

/// The path after the API's base, e.g. `/rest-apis/x` (the base is the same for every call).
fn short_path(url: &Url) -> String {
    let path = url.path();
    ["/api/management/v1", "/api/admin/v1"]
        .iter()
        .find_map(|b| path.strip_prefix(b))
        .unwrap_or(path)
        .to_string()
}

// === impl Refusal ===

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(c) = &self.context {
            write!(f, "{c}: ")?;
        }
        write!(f, "{}: {}", self.request, self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        for (field, message) in &self.errors {
            write!(f, "\n  {field}: {message}")?;
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let hint = if self.no_password {
                "no password was given: set TOLLGATE_PASSWORD, --password-file or the CLI config file"
            } else {
                "check the user name and password (TOLLGATE_USERNAME, TOLLGATE_PASSWORD)"
            };
            write!(f, "\n  ({hint})")?;
        }
        Ok(())
    }
}
