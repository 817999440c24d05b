//! The `[jwt]` section: what WSO2 calls the `jwt-auth` policy's system parameters. Key managers
//! (`[[jwt.key_managers]]`) name where tokens' keys come from; documents pick among them by name
//! in the policy's `issuers`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tollgate_translate::{ErrorFormat, Jwks, JwksEndpoint, JwtSettings, KeyManager as KeyManagerOut};

use super::{ConfigError, duration};

mod pem;

/// `jwt-auth`'s gateway-wide settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Jwt {
    /// Where tokens' keys come from; none means `jwt-auth` cannot be used.
    pub key_managers: Vec<KeyManager>,
    /// How long Envoy keeps a fetched JWKS.
    #[serde(with = "duration")]
    pub jwks_cache_ttl: Duration,
    #[serde(with = "duration")]
    pub jwks_fetch_timeout: Duration,
    pub jwks_fetch_retry_count: u32,
    #[serde(with = "duration")]
    pub jwks_fetch_retry_interval: Duration,
    /// Clock skew allowed on `exp` and `nbf` (whole seconds, at least 1s).
    #[serde(with = "duration")]
    pub leeway: Duration,
    /// The scheme before the token in the header (`Bearer`); empty for a bare token.
    pub auth_header_scheme: String,
    pub header_name: String,
    /// 401 or 403, for a missing or invalid token.
    pub on_failure_status_code: u16,
    /// `json`, `plain` or `minimal` (no body).
    pub error_message_format: String,
    pub error_message: String,
    /// Whether a key manager's `issuer` must match the token's `iss`.
    pub validate_issuer: bool,
}

/// One key manager (identity provider).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyManager {
    /// The name documents use in `issuers`: letters, digits, `-` and `_`.
    pub name: String,
    /// The `iss` its tokens carry (checked unless `validate_issuer` is off).
    #[serde(default)]
    pub issuer: Option<String>,
    pub jwks: JwksSource,
}

/// Exactly one of `remote` and `local`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSource {
    #[serde(default)]
    pub remote: Option<RemoteJwks>,
    #[serde(default)]
    pub local: Option<LocalJwks>,
}

/// A JWKS endpoint Envoy fetches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwks {
    /// `http://` or `https://` URI.
    pub uri: String,
    /// The CA of the endpoint's certificate (PEM); else `router.trusted_ca_path`.
    #[serde(default)]
    pub certificate_path: Option<PathBuf>,
    /// No verification of the endpoint's certificate: tests and trusted networks only.
    #[serde(default)]
    pub skip_tls_verify: bool,
}

/// Keys given locally, as a JWKS or PEM (certificates or public keys): exactly one of `inline`
/// and `certificate_path`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalJwks {
    #[serde(default)]
    pub inline: Option<String>,
    #[serde(default)]
    pub certificate_path: Option<PathBuf>,
}

impl Default for Jwt {
    fn default() -> Self {
        let d = JwtSettings::default();
        Jwt {
            key_managers: vec![],
            jwks_cache_ttl: d.jwks_cache_ttl,
            jwks_fetch_timeout: d.jwks_fetch_timeout,
            jwks_fetch_retry_count: d.jwks_fetch_retries,
            jwks_fetch_retry_interval: d.jwks_fetch_retry_interval,
            leeway: d.leeway,
            auth_header_scheme: d.scheme,
            header_name: d.header_name,
            on_failure_status_code: d.failure_status,
            error_message_format: "json".into(),
            error_message: d.error_message,
            validate_issuer: d.validate_issuer,
        }
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

// === impl Jwt ===

impl Jwt {
    /// The key managers' names (for the policy catalogue).
    pub fn names(&self) -> Vec<String> {
        self.key_managers.iter().map(|k| k.name.clone()).collect()
    }

    /// Checks every value and the files named, and returns what the translator needs (file
    /// paths made absolute: Envoy reads them).
    pub fn settings(&self) -> Result<JwtSettings, ConfigError> {
        if !matches!(self.on_failure_status_code, 401 | 403) {
            return Err(invalid("jwt.on_failure_status_code", "must be 401 or 403"));
        }
        let error_format = match self.error_message_format.as_str() {
            "json" => ErrorFormat::Json,
            "plain" => ErrorFormat::Plain,
            "minimal" => ErrorFormat::Minimal,
            _ => return Err(invalid("jwt.error_message_format", "must be json, plain or minimal")),
        };
        if self.error_message.contains(['\0', '\r', '\n']) || self.error_message.len() > 1024 {
            return Err(invalid(
                "jwt.error_message",
                "at most 1024 bytes, without NUL, CR or LF",
            ));
        }
        if self.leeway < Duration::from_secs(1) || self.leeway.subsec_nanos() != 0 {
            return Err(invalid("jwt.leeway", "must be whole seconds, at least 1s"));
        }
        if self.jwks_cache_ttl < Duration::from_secs(1) {
            return Err(invalid("jwt.jwks_cache_ttl", "must be at least 1s"));
        }
        if self.jwks_fetch_timeout.is_zero() {
            return Err(invalid("jwt.jwks_fetch_timeout", "must be greater than 0"));
        }
        if self.jwks_fetch_retry_interval < Duration::from_millis(1) {
            return Err(invalid("jwt.jwks_fetch_retry_interval", "must be at least 1ms"));
        }
        if !is_token(&self.header_name) {
            return Err(invalid("jwt.header_name", "must be an HTTP header name"));
        }
        if !self.auth_header_scheme.is_empty() && !is_token(&self.auth_header_scheme) {
            return Err(invalid(
                "jwt.auth_header_scheme",
                "must be empty or a single word such as Bearer",
            ));
        }
        let mut key_managers = Vec::new();
        for (i, km) in self.key_managers.iter().enumerate() {
            if key_managers.iter().any(|k: &KeyManagerOut| k.name == km.name) {
                let msg = format!("[{i}].name: {:?} is used twice", km.name);
                return Err(invalid("jwt.key_managers", msg));
            }
            key_managers.push(km.settings(i)?);
        }
        Ok(JwtSettings {
            key_managers,
            jwks_cache_ttl: self.jwks_cache_ttl,
            jwks_fetch_timeout: self.jwks_fetch_timeout,
            jwks_fetch_retries: self.jwks_fetch_retry_count,
            jwks_fetch_retry_interval: self.jwks_fetch_retry_interval,
            leeway: self.leeway,
            header_name: self.header_name.clone(),
            scheme: self.auth_header_scheme.clone(),
            failure_status: self.on_failure_status_code,
            error_format,
            error_message: self.error_message.clone(),
            validate_issuer: self.validate_issuer,
        })
    }
}

// === impl KeyManager ===

impl KeyManager {
    fn settings(&self, i: usize) -> Result<KeyManagerOut, ConfigError> {
        let bad = |msg: String| invalid("jwt.key_managers", format!("[{i}]{msg}"));
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(bad(".name: 1-64 letters, digits, '-' or '_'".into()));
        }
        if self.issuer.as_deref().is_some_and(str::is_empty) {
            return Err(bad(".issuer: must not be empty (leave it out instead)".into()));
        }
        let jwks = match (&self.jwks.remote, &self.jwks.local) {
            (Some(r), None) => Jwks::Remote(r.endpoint().map_err(|m| bad(format!(".jwks.remote{m}")))?),
            (None, Some(l)) => l.jwks().map_err(|m| bad(format!(".jwks.local{m}")))?,
            _ => return Err(bad(".jwks: exactly one of remote and local is required".into())),
        };
        Ok(KeyManagerOut {
            name: self.name.clone(),
            issuer: self.issuer.clone(),
            jwks,
        })
    }
}

impl RemoteJwks {
    fn endpoint(&self) -> Result<JwksEndpoint, String> {
        let uri: http::Uri = self.uri.parse().map_err(|e| format!(".uri: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(".uri: must start with http:// or https://".into()),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or(".uri: has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let ca_path = match &self.certificate_path {
            Some(p) => Some(envoy_file(p).map_err(|e| format!(".certificate_path: {e}"))?),
            None => None,
        };
        Ok(JwksEndpoint {
            uri: self.uri.clone(),
            tls,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            host,
            ca_path,
            skip_tls_verify: self.skip_tls_verify,
        })
    }
}

impl LocalJwks {
    fn jwks(&self) -> Result<Jwks, String> {
        let text = match (&self.inline, &self.certificate_path) {
            (Some(t), None) => t.clone(),
            (None, Some(p)) => {
                std::fs::read_to_string(p).map_err(|e| format!(".certificate_path: {}: {e}", p.display()))?
            }
            _ => return Err(": exactly one of inline and certificate_path is required".into()),
        };
        let field = if self.inline.is_some() {
            "inline"
        } else {
            "certificate_path"
        };
        // Envoy reads only a JWKS: PEM certificates and keys are converted here (and then travel
        // inline), and a JWKS is checked for its shape (Envoy would refuse a bad one only at run
        // time, failing every token).
        if pem::is_pem(&text) {
            return pem::to_jwks(&text)
                .map(Jwks::Inline)
                .map_err(|e| format!(".{field}: {e}"));
        }
        let not_jwks = || format!(".{field}: must be a JWKS (JSON with keys) or PEM");
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|_| not_jwks())?;
        if !doc.get("keys").is_some_and(serde_json::Value::is_array) {
            return Err(not_jwks());
        }
        match &self.certificate_path {
            Some(p) => Ok(Jwks::File(
                envoy_file(p).map_err(|e| format!(".certificate_path: {e}"))?,
            )),
            None => Ok(Jwks::Inline(text)),
        }
    }
}

/// A readable file's absolute path, as Envoy (started from another directory) must be given it.
fn envoy_file(path: &Path) -> Result<String, String> {
    let abs = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    abs.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{} is not valid UTF-8", abs.display()))
}

/// An RFC 9110 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

#[cfg(test)]
mod tests;
