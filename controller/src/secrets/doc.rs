//! The secret document of the management API (reference §1.9): parsing with field-level errors,
//! and the JSON shapes answered (the value only where asked for).

use serde_json::{Value, json};
use tollgate_model::FieldError;

use super::SecretMeta;
use crate::secret::Secret;

/// `apiVersion` of the documents.
pub const API_VERSION: &str = "gateway.api-platform.wso2.com/v1";
/// Largest value, in bytes.
pub const MAX_VALUE: usize = 10 * 1024;
const MAX_ID: usize = 255;
const MAX_DISPLAY_NAME: usize = 253;
const MAX_DESCRIPTION: usize = 1024;

/// A valid secret document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretDoc {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub value: Secret<String>,
}

// === impl SecretDoc ===

impl SecretDoc {
    /// Parses a request body; every problem is reported with its field. `path_id` is the id of
    /// `PUT /secrets/{id}`: the body's `metadata.name`, when present, must match it.
    pub fn parse(body: &Value, path_id: Option<&str>) -> Result<SecretDoc, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.into(),
                message: message.into(),
            })
        };
        let text = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        match body.get("apiVersion").map(|v| v.as_str()) {
            Some(Some(API_VERSION)) => {}
            _ => err("apiVersion", &format!("apiVersion must be '{API_VERSION}'")),
        }
        if body.get("kind").and_then(Value::as_str) != Some("Secret") {
            err("kind", "kind must be 'Secret'");
        }
        let id = match (text(body, "/metadata/name"), path_id) {
            (Some(n), Some(p)) if n != p => {
                err(
                    "metadata.name",
                    &format!("metadata.name '{n}' does not match the id in the path"),
                );
                p.to_string()
            }
            (Some(n), _) => n,
            (None, Some(p)) => p.to_string(),
            (None, None) => String::new(),
        };
        if id.is_empty() || id.len() > MAX_ID || !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            err(
                "metadata.name",
                "metadata.name is required: 1 to 255 letters, digits, '.', '_' or '-'",
            );
        }
        let display_name = text(body, "/spec/displayName").unwrap_or_default();
        let name_ok = display_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c));
        if display_name.is_empty() || display_name.len() > MAX_DISPLAY_NAME || !name_ok {
            err(
                "spec.displayName",
                "spec.displayName is required: 1 to 253 letters, digits, spaces, '-', '_' or '.'",
            );
        }
        let description = text(body, "/spec/description");
        if description.as_ref().is_some_and(|d| d.len() > MAX_DESCRIPTION) {
            err("spec.description", "spec.description is at most 1024 characters");
        }
        let value = text(body, "/spec/value").unwrap_or_default();
        if value.is_empty() || value.len() > MAX_VALUE {
            err("spec.value", "spec.value is required: 1 byte to 10 KiB");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SecretDoc {
            id,
            display_name,
            description,
            value: Secret::new(value),
        })
    }
}

/// The answer for one secret: without the value unless `value` is given.
pub fn secret_json(m: &SecretMeta, value: Option<&Secret<String>>) -> Value {
    let mut spec = json!({"displayName": m.display_name});
    if let Some(d) = &m.description {
        spec["description"] = json!(d);
    }
    if let Some(v) = value {
        spec["value"] = json!(v.expose());
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "Secret",
        "metadata": {"name": m.id},
        "spec": spec,
        "status": {"id": m.id, "createdAt": m.created_at, "updatedAt": m.updated_at},
    })
}
