//! The rules of plan and subscription bodies (reference §1.7, §1.8), with a field path for every
//! problem, and the generation of subscription tokens.

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use tollgate_model::FieldError;
use tollgate_proto::hex;

/// The longest plan name, billing plan, application or billing id accepted.
const MAX_TEXT: usize = 256;
/// The longest subscription token accepted from a caller.
const MAX_TOKEN: usize = 512;
/// The prefix of a generated subscription token: recognisable in a leak scan.
pub const TOKEN_PREFIX: &str = "tgsub_";

/// Collects field errors while reading a JSON object.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    body: Option<&'a Map<String, Value>>,
    pub errors: Vec<FieldError>,
}

/// A plan's quota window, in its canonical (WSO2 REST) spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Min,
    Hour,
    Day,
    Month,
}

// === impl Unit ===

impl Unit {
    /// `Min`, `Hour`, `Day`, `Month`, or the platform's `MINUTE|HOUR|DAY|MONTH` (any case).
    pub fn parse(s: &str) -> Option<Unit> {
        match s.trim().to_ascii_lowercase().as_str() {
            "min" | "minute" => Some(Unit::Min),
            "hour" => Some(Unit::Hour),
            "day" => Some(Unit::Day),
            "month" => Some(Unit::Month),
            _ => None,
        }
    }

    /// The stored and answered form.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Min => "Min",
            Unit::Hour => "Hour",
            Unit::Day => "Day",
            Unit::Month => "Month",
        }
    }
}

// === impl Fields ===

impl<'a> Fields<'a> {
    /// Reads `body`, which must be a JSON object.
    pub fn of(body: &'a Value) -> Fields<'a> {
        let mut f = Fields {
            body: body.as_object(),
            errors: Vec::new(),
        };
        if f.body.is_none() {
            f.fail("", "the body must be a JSON or YAML object");
        }
        f
    }

    /// Records a problem with `field`.
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Whether the body names `field` (even as `null`).
    pub fn has(&self, field: &str) -> bool {
        self.body.is_some_and(|b| b.contains_key(field))
    }

    /// A string field, trimmed; `None` when absent or null. Empty strings and strings longer
    /// than `max` are refused.
    pub fn text(&mut self, field: &str, max: usize) -> Option<String> {
        match self.body.and_then(|b| b.get(field)) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let t = s.trim();
                if t.is_empty() {
                    self.fail(field, "must not be empty");
                    None
                } else if t.len() > max || t.chars().any(char::is_control) {
                    self.fail(
                        field,
                        format!("must be at most {max} bytes, without control characters"),
                    );
                    None
                } else {
                    Some(t.to_string())
                }
            }
            Some(_) => {
                self.fail(field, "Invalid type: expected a string");
                None
            }
        }
    }

    /// A short identifier-like string field ([`MAX_TEXT`] bytes).
    pub fn short(&mut self, field: &str) -> Option<String> {
        self.text(field, MAX_TEXT)
    }

    /// A boolean field.
    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        match self.body.and_then(|b| b.get(field)) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.fail(field, "Invalid type: expected a boolean");
                None
            }
        }
    }

    /// A positive integer field (at most `u32::MAX`).
    pub fn positive(&mut self, field: &str) -> Option<i64> {
        match self.body.and_then(|b| b.get(field)) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) if n > 0 && n <= i64::from(u32::MAX) => Some(n),
                Some(_) => {
                    self.fail(field, format!("must be between 1 and {}", u32::MAX));
                    None
                }
                None => {
                    self.fail(field, "Invalid type: expected an integer");
                    None
                }
            },
        }
    }

    /// One of `allowed` (compared without case); the canonical spelling.
    pub fn one_of(&mut self, field: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let s = self.text(field, MAX_TEXT)?;
        match allowed.iter().find(|a| a.eq_ignore_ascii_case(&s)) {
            Some(a) => Some(a),
            None => {
                self.fail(field, format!("must be one of {}", allowed.join(", ")));
                None
            }
        }
    }

    /// An RFC 3339 instant, normalised to UTC seconds.
    pub fn instant(&mut self, field: &str) -> Option<String> {
        let s = self.text(field, 64)?;
        match crate::clock::parse_secs(&s) {
            Some(secs) => Some(crate::clock::rfc3339_of(secs)),
            None => {
                self.fail(field, "must be an RFC 3339 date-time, e.g. 2027-01-31T00:00:00Z");
                None
            }
        }
    }

    /// A caller-supplied subscription token: trimmed, printable ASCII, at most [`MAX_TOKEN`] bytes.
    pub fn token(&mut self, field: &str) -> Option<String> {
        let t = self.text(field, MAX_TOKEN)?;
        if t.bytes().all(|b| b.is_ascii_graphic()) {
            Some(t)
        } else {
            self.fail(field, "must be printable ASCII without spaces");
            None
        }
    }

    /// The problems found, or `ok`.
    pub fn finish<T>(self, ok: T) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(ok)
        } else {
            Err(self.errors)
        }
    }
}

/// A new subscription token: [`TOKEN_PREFIX`] and 64 hex digits, 256 bits from the OS source.
pub fn generate_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(format!("{TOKEN_PREFIX}{}", hex::encode(&bytes)))
}

/// The stored form of a token: SHA-256 of the trimmed token, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes()).as_ref())
}
