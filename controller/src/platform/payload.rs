//! What the platform API sends, read into Tollgate's types: artifact documents, pushed API keys
//! (from an event or the bulk list alike), control-plane objects, and the checks on ids and
//! digests. No I/O.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock;
use crate::db::{CpKind, CpObject};
use crate::keys::PushedKey;
use tollgate_model::{RestApiDoc, parse};

/// Why an artifact document was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Not YAML at all, or over the parser's bounds (depth, size, aliases).
    #[error("artifact is not valid YAML: {0}")]
    Yaml(String),
    /// YAML, but not a mapping.
    #[error("artifact is not a YAML mapping")]
    NotMapping,
    /// Another kind of artifact.
    #[error("artifact kind '{0}' is not supported (Tollgate serves RestApi)")]
    Kind(String),
    /// A `RestApi` of an unknown API version.
    #[error("artifact apiVersion '{0}' is not supported")]
    ApiVersion(String),
    /// A `RestApi` that does not match the schema.
    #[error("artifact does not match the RestApi schema: {0}")]
    Schema(#[source] serde_json::Error),
}

/// Why a pushed key cannot be stored.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadKey {
    /// No usable SHA-256 digest in `apiKeyHashes`.
    #[error("apiKeyHashes has no valid sha256 digest")]
    Digest,
    /// Neither a name nor a UUID.
    #[error("API key event without a name or uuid")]
    Unnamed,
    /// `expiresAt` is not an RFC 3339 timestamp.
    #[error("bad expiresAt '{0}'")]
    Expiry(String),
}

/// An API key as the platform API describes it, in an `apikey.*` event or the bulk key list.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPayload {
    #[serde(default)]
    pub uuid: String,
    #[serde(default, alias = "keyName")]
    pub name: String,
    #[serde(default)]
    pub api_key_hashes: Value,
    #[serde(default)]
    pub masked_api_key: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// How the fields a key payload lacks are filled: events and the bulk list differ.
#[derive(Clone, Copy, Debug)]
pub struct KeyDefaults<'a> {
    /// Who the key is recorded as created by.
    pub created_by: &'a str,
    /// The timestamps of a payload without `createdAt` / `updatedAt`.
    pub stamp: &'a str,
    /// Whether a bad `expiresAt` refuses the key (events) or means no expiry (the bulk list).
    pub strict_expiry: bool,
}

// === impl KeyPayload ===

impl KeyPayload {
    /// The key to store for API `api` (a handle).
    pub fn into_pushed(self, api: &str, defaults: KeyDefaults<'_>) -> Result<PushedKey, BadKey> {
        let digest = sha256_of(&self.api_key_hashes).ok_or(BadKey::Digest)?;
        let name = if self.name.is_empty() {
            self.uuid.clone()
        } else {
            self.name
        };
        if name.is_empty() {
            return Err(BadKey::Unnamed);
        }
        let expires_at = match self.expires_at.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => match clock::parse_secs(s) {
                Some(t) => Some(t),
                None if defaults.strict_expiry => return Err(BadKey::Expiry(s.to_string())),
                None => None,
            },
            None => None,
        };
        Ok(PushedKey {
            uuid: self.uuid,
            api: api.to_string(),
            name,
            digest,
            masked: self.masked_api_key,
            expires_at,
            created_at: self.created_at.unwrap_or_else(|| defaults.stamp.to_string()),
            updated_at: self.updated_at.unwrap_or_else(|| defaults.stamp.to_string()),
            created_by: defaults.created_by.to_string(),
        })
    }
}

/// A UUID-like identifier: letters, digits, `-`, `_`, 1–128 characters. Artifact ids go into URL
/// paths, so they must be plain identifiers.
pub fn is_id(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The SHA-256 digest from `apiKeyHashes`: a JSON string holding an object (events) or an object
/// (bulk lists).
pub fn sha256_of(hashes: &Value) -> Option<String> {
    let obj = match hashes {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    let hex = obj.get("sha256")?.as_str()?.trim().to_ascii_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// Subscription tokens are credentials: only their SHA-256 digest is stored.
pub fn redact_tokens(p: &Value) -> Value {
    let mut v = p.clone();
    if let Some(obj) = v.as_object_mut()
        && let Some(Value::String(token)) = obj.remove("subscriptionToken")
    {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes());
        obj.insert(
            "subscriptionTokenSha256".into(),
            json!(tollgate_proto::hex::encode(digest.as_ref())),
        );
    }
    v
}

/// The object of `kind` that payload `p` describes, its id in field `id_field`, tokens redacted;
/// `None` without a (non-empty) id.
pub fn cp_object(kind: CpKind, p: &Value, id_field: &str, api: Option<String>) -> Option<CpObject> {
    let id = p.get(id_field).and_then(Value::as_str).filter(|s| !s.is_empty())?;
    Some(CpObject {
        kind,
        id: id.to_string(),
        api,
        body: redact_tokens(p).to_string(),
        updated_at: clock::rfc3339_now(),
    })
}

/// The `RestApi` document inside an artifact (`v1` or `v1alpha1`), read within the same bounds as a
/// REST body (`tollgate_model::parse`).
pub fn artifact_document(yaml: &str) -> Result<RestApiDoc, ArtifactError> {
    let value = parse::value(yaml.as_bytes(), parse::Syntax::Yaml).map_err(|e| ArtifactError::Yaml(e.to_string()))?;
    if !value.is_object() {
        return Err(ArtifactError::NotMapping);
    }
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "RestApi" {
        return Err(ArtifactError::Kind(kind.to_string()));
    }
    // platform-api down-converts a RestApi for gateways older than 1.2.0 by changing only
    // `apiVersion`; the v1alpha1 fields are a subset of v1's, so both parse alike.
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !matches!(
        api_version,
        "gateway.api-platform.wso2.com/v1" | "gateway.api-platform.wso2.com/v1alpha1"
    ) {
        return Err(ArtifactError::ApiVersion(api_version.to_string()));
    }
    serde_json::from_value(value).map_err(ArtifactError::Schema)
}

#[cfg(test)]
mod tests;
