//! The `cors` policy v1: WSO2's parameters, and the rules across them that its schema cannot say.
//!
//! Names, defaults and limits follow WSO2's `policies/cors/policy-definition.yaml`: `allowedOrigins`
//! (required, at least one, each 1–2,048 characters), `allowedMethods`, `allowedHeaders`,
//! `exposedHeaders` (each 1–256 characters), `allowCredentials`, `maxAge` (0–86,400) and
//! `forwardPreflight`. An origin is `*`, an exact origin (`scheme://host[:port]`), or else an RE2
//! regex matched against the whole `Origin` header; the regex is checked as Envoy will judge it.

use serde_json::{Map, Value};

use super::{ParamError, Schema, StrRule, error, optional, required};
use crate::regex;

/// The methods a browser may ask for, and `*` for any.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "*"];
/// `allowedMethods` when absent.
pub const DEFAULT_METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "OPTIONS"];
/// `maxAge` when absent, in seconds.
pub const DEFAULT_MAX_AGE: i64 = 3600;
/// WSO2's longest origin.
const ORIGIN_MAX: usize = 2048;
/// WSO2's longest header name.
const HEADER_MAX: usize = 256;

pub(super) const CORS_V1: &[super::Param] = &[
    required("allowedOrigins", Schema::Array(&Schema::Str(StrRule::CorsOrigin))),
    optional("allowedMethods", Schema::Array(&Schema::Str(StrRule::OneOf(METHODS)))),
    optional("allowedHeaders", Schema::Array(&Schema::Str(StrRule::CorsHeader))),
    optional("exposedHeaders", Schema::Array(&Schema::Str(StrRule::CorsHeader))),
    optional("allowCredentials", Schema::Bool),
    optional("maxAge", Schema::Int { min: 0, max: 86400 }),
    optional("forwardPreflight", Schema::Bool),
];

/// How one entry of `allowedOrigins` matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// `*`: every origin.
    Any,
    /// A serialised origin, compared byte for byte.
    Exact(&'a str),
    /// An RE2 regex that must match the whole `Origin` header.
    Regex(&'a str),
}

// === impl Origin ===

impl<'a> Origin<'a> {
    /// Classifies an `allowedOrigins` entry: `*`, an exact origin, or a regex.
    pub fn parse(s: &'a str) -> Origin<'a> {
        if s == "*" {
            Origin::Any
        } else if is_origin(s) {
            Origin::Exact(s)
        } else {
            Origin::Regex(s)
        }
    }
}

/// `scheme://host[:port]` with a lower-case scheme, a host of letters, digits, `.` and `-` (or a
/// bracketed IPv6 literal), and no path: what a browser sends in `Origin`.
fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c));
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'),
        None => !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    scheme_ok && host_ok && port_ok
}

/// `allowedOrigins[i]`: `*`, an exact origin or an RE2 regex Envoy accepts.
pub(super) fn check_origin(s: &str, path: &str, out: &mut Vec<ParamError>) {
    if s.is_empty() || s.len() > ORIGIN_MAX {
        out.push(error(path, format!("Origin must be 1 to {ORIGIN_MAX} characters long")));
        return;
    }
    if let Origin::Regex(re) = Origin::parse(s)
        && let Err(e) = regex::check(re)
    {
        let msg = format!(
            "Invalid origin '{}': not an origin, and not a usable regex: {e}",
            s.escape_debug()
        );
        out.push(error(path, msg));
    }
}

/// `allowedHeaders[i]` and `exposedHeaders[i]`: an HTTP field name (RFC 9110 token) or `*`.
pub(super) fn check_header(s: &str, path: &str, out: &mut Vec<ParamError>) {
    if s.len() > HEADER_MAX {
        out.push(error(
            path,
            format!("Header name is longer than {HEADER_MAX} characters"),
        ));
    } else if s != "*" && !super::is_token(s) {
        out.push(error(path, format!("Invalid header name '{}'", s.escape_debug())));
    }
}

/// The rules across parameters, run once every parameter has the right shape.
pub(super) fn extra(params: &Value, _path: &str, out: &mut Vec<ParamError>) {
    if let Some(map) = params.as_object() {
        rules(map, out);
    }
}

fn rules(params: &Map<String, Value>, out: &mut Vec<ParamError>) {
    let strings = |name: &str| -> Vec<&str> {
        params
            .get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let origins = strings("allowedOrigins");
    if params
        .get("allowedOrigins")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        out.push(error("allowedOrigins", "At least one origin is required".to_string()));
    }
    if params
        .get("allowedMethods")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        out.push(error("allowedMethods", "At least one method is required".to_string()));
    }
    // The CORS standard forbids `*` with credentials; WSO2 refuses each of these.
    if params.get("allowCredentials").and_then(Value::as_bool) == Some(true) {
        for (name, what) in [
            ("allowedOrigins", "origin"),
            ("allowedMethods", "methods"),
            ("allowedHeaders", "headers"),
            ("exposedHeaders", "exposed headers"),
        ] {
            if let Some(i) = strings(name).iter().position(|s| *s == "*") {
                let msg = format!("Cannot have wildcard {what} with allowCredentials set to true");
                out.push(error(&format!("{name}[{i}]"), msg));
            }
        }
    }
    // The preflight routes match the origin and the requested headers with one regex each.
    if !origins.contains(&"*")
        && let Err(e) = regex::check(&origin_regex(&origins))
    {
        let msg = format!("Too many or too complex origins for one preflight match: {e}");
        out.push(error("allowedOrigins", msg));
    }
    if let Some(re) = request_headers_regex(&strings("allowedHeaders"))
        && let Err(e) = regex::check(&re)
    {
        let msg = format!("Too many or too long header names for one preflight match: {e}");
        out.push(error("allowedHeaders", msg));
    }
}

/// One RE2 regex matching exactly the allowed origins (none of them `*`): exact origins quoted,
/// regexes grouped, all anchored.
pub fn origin_regex(origins: &[&str]) -> String {
    let alternatives: Vec<String> = origins
        .iter()
        .map(|o| match Origin::parse(o) {
            Origin::Regex(re) => format!("(?:{re})"),
            Origin::Exact(_) | Origin::Any => quote(o),
        })
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// The RE2 regex an `Access-Control-Request-Headers` value must match when only `allowed` may be
/// requested: a comma-separated list of them in any case and order, or nothing. `None` when any
/// header may be (`*`).
pub fn request_headers_regex(allowed: &[&str]) -> Option<String> {
    if allowed.contains(&"*") {
        return None;
    }
    if allowed.is_empty() {
        return Some(r"^\s*$".to_string());
    }
    let names: Vec<String> = allowed.iter().map(|h| quote(&h.to_ascii_lowercase())).collect();
    // Each name is followed by a comma or the end, so two names cannot run together.
    Some(format!(r"(?i)^\s*(?:(?:{})\s*(?:,\s*|$))*$", names.join("|")))
}

/// `s` with every regex metacharacter escaped (origins and header names use few of them).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
