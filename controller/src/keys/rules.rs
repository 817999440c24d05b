//! What a key value, name and expiry must look like, how values are generated and shown masked,
//! and the typed states a key row carries (their strings are the database's and the REST API's).

use std::fmt;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tollgate_proto::hex;

use super::KeyError;

/// The longest rotation grace period.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A stored key's status. Revoked keys are deleted, so only one exists today; the column and the
/// REST field exist for WSO2 compatibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// Usable until it expires (`active`).
    Active,
}

/// Where a key's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// Generated here, shown once (`local`).
    Local,
    /// Supplied by the caller or the control plane (`external`).
    External,
}

/// A stored string that names no key state.
#[derive(Debug, thiserror::Error)]
#[error("unknown key state {0:?}")]
pub struct UnknownKeyState(pub String);

// === impl KeyStatus ===

impl KeyStatus {
    /// The stored and shown form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
        }
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyStatus {
    type Err = UnknownKeyState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(KeyStatus::Active),
            other => Err(UnknownKeyState(other.to_string())),
        }
    }
}

crate::origin::sql_text_enum!(KeyStatus);

// === impl KeySource ===

impl KeySource {
    /// The stored and shown form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Local => "local",
            KeySource::External => "external",
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeySource {
    type Err = UnknownKeyState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(KeySource::Local),
            "external" => Ok(KeySource::External),
            other => Err(UnknownKeyState(other.to_string())),
        }
    }
}

crate::origin::sql_text_enum!(KeySource);

/// Refuses an expiry that is not in the future (`now` in Unix seconds).
pub(super) fn check_expiry(expires_at: Option<i64>, now: i64) -> Result<(), KeyError> {
    match expires_at {
        Some(t) if t <= now => Err(KeyError::Invalid("expiry must be in the future".into())),
        _ => Ok(()),
    }
}

/// `^[a-z0-9]+([_-][a-z0-9]+)*$`, 3–63 characters.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let ok_shape = !name.starts_with(['-', '_'])
        && !name.ends_with(['-', '_'])
        && !name.contains("--")
        && !name.contains("__")
        && !name.contains("-_")
        && !name.contains("_-");
    if (3..=63).contains(&name.len()) && ok_chars && ok_shape {
        Ok(())
    } else {
        Err(KeyError::Invalid(format!(
            "invalid API key name '{name}': use 3-63 lower-case letters, digits, '-' or '_' (not at the ends, not doubled)"
        )))
    }
}

/// An external value: 36–128 printable characters once trimmed.
pub(super) fn check_external(value: &str) -> Result<(), KeyError> {
    let len = value.trim().len();
    if (36..=128).contains(&len) && value.trim().bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(KeyError::Invalid("apiKey must be 36-128 printable characters".into()))
    }
}

/// `apip_` and 64 hex digits: 256 bits from the OS random source.
pub(super) fn generate() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Random)?;
    Ok(format!("apip_{}", hex::encode(&bytes)))
}

/// A name for a key created without one: the API handle, slugged, and 8 random hex digits.
pub(super) fn generated_name(api: &str) -> Result<String, KeyError> {
    let mut bytes = [0u8; 4];
    SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Random)?;
    let base: String = api
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let base: String = base.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-");
    let base = if base.is_empty() {
        "api".to_string()
    } else {
        base.chars().take(40).collect()
    };
    Ok(format!("{base}-key-{}", hex::encode(&bytes)))
}

/// `***` and the last five characters (`********` for five or fewer).
pub fn mask(value: &str) -> String {
    let v = value.trim();
    if v.len() <= 5 {
        "********".into()
    } else {
        format!("***{}", &v[v.len() - 5..])
    }
}

/// The stored digest of a key value: lower-case hex SHA-256 of the trimmed value.
pub(super) fn digest_hex(value: &str) -> String {
    hex::encode(&tollgate_policies::authz::digest_of(value.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_their_stored_form() {
        assert_eq!("active".parse::<KeyStatus>().unwrap(), KeyStatus::Active);
        for s in [KeySource::Local, KeySource::External] {
            assert_eq!(s.as_str().parse::<KeySource>().unwrap(), s);
        }
        assert!("revoked".parse::<KeyStatus>().is_err());
        assert!("Local".parse::<KeySource>().is_err());
    }

    #[test]
    fn generated_names_and_values_have_their_shape() {
        let v = generate().unwrap();
        assert!(v.starts_with("apip_") && v.len() == 69);
        let n = generated_name("My API/v2").unwrap();
        assert!(n.starts_with("my-api-v2-key-") && check_name(&n).is_ok(), "{n}");
        assert!(generated_name("--").unwrap().starts_with("api-key-"));
        assert_eq!(mask("abc"), "********");
        assert_eq!(mask(" 0123456789 "), "***56789");
    }
}
