//! `basic-auth` v1: WSO2's parameters (`username`, `password`, `allowUnauthenticated`, `realm`)
//! and the line a route hands the ext_authz service (`tollgate.basic`):
//! `<realm> <allow> <username> <verifier>`, text fields escaped as the rate-limit lines are. The
//! verifier is a PHC string (argon2id or bcrypt), never the password: a document's plaintext
//! password is hashed by the translator, and one already given as a PHC string is used as is.

use serde_json::Value;

use super::ratelimit::{escape, unescape};
use super::{Param, ParamError, Schema, error, optional, required, wrong_type};

pub(super) const BASIC_AUTH_V1: &[Param] = &[
    required("username", Schema::Custom(username)),
    required("password", Schema::Custom(|v, p, out| text(v, p, out, false))),
    optional("allowUnauthenticated", Schema::Bool),
    optional("realm", Schema::Custom(|v, p, out| text(v, p, out, true))),
];

/// WSO2's default realm.
pub const DEFAULT_REALM: &str = "Restricted";

fn text(value: &Value, path: &str, out: &mut Vec<ParamError>, header_safe: bool) {
    match value.as_str() {
        Some(s) if s.is_empty() || s.chars().count() > 256 => {
            out.push(error(path, "Value must be 1 to 256 characters long".to_string()));
        }
        // The realm is quoted in `WWW-Authenticate`: printable, without `"` or `\`.
        Some(s) if header_safe && s.chars().any(|c| c.is_control() || c == '"' || c == '\\') => {
            out.push(error(
                path,
                "Value must not contain control characters, '\"' or '\\'".to_string(),
            ));
        }
        Some(_) => {}
        None => out.push(wrong_type("string", value, path)),
    }
}

fn username(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    let before = out.len();
    text(value, path, out, false);
    // RFC 7617: the user-id cannot contain a colon (the first one ends it).
    if out.len() == before
        && value
            .as_str()
            .is_some_and(|s| s.contains(':') || s.chars().any(char::is_control))
    {
        out.push(error(
            path,
            "Value must not contain ':' or control characters".to_string(),
        ));
    }
}

/// Whether `s` is a PHC password hash the service can verify (argon2 or bcrypt).
pub fn is_phc(s: &str) -> bool {
    s.starts_with("$argon2") || ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p))
}

/// One route's basic-auth check, as the translator writes it and the service reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicLine {
    pub realm: String,
    pub allow_unauthenticated: bool,
    pub username: String,
    /// A PHC string.
    pub verifier: String,
}

impl BasicLine {
    /// The line's text.
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            escape(&self.realm),
            u8::from(self.allow_unauthenticated),
            escape(&self.username),
            self.verifier
        )
    }

    /// Reads a line [`BasicLine::encode`] wrote.
    pub fn parse(line: &str) -> Option<Self> {
        let mut f = line.splitn(4, ' ');
        let (realm, allow, username, verifier) = (f.next()?, f.next()?, f.next()?, f.next()?);
        Some(BasicLine {
            realm: unescape(realm),
            allow_unauthenticated: match allow {
                "1" => true,
                "0" => false,
                _ => return None,
            },
            username: unescape(username),
            verifier: verifier.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
