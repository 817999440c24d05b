//! `basic-ratelimit` v1 and `advanced-ratelimit` v1: WSO2's parameter schemas, and the lowering
//! of a policy into the quota lines a route hands the ext_authz service (its `tollgate.rl`
//! context extension), which [`QuotaLine::parse`] reads back on the hot path.
//!
//! A quota line is `<scope> <limits> <parts> <name> <status> <type> <body>`, fields separated by
//! one space, lines by `\n`: `scope` names the counters (the API, and the route or the quota as
//! WSO2 scopes them; the static key parts), `limits` is `<requests>/<seconds>` comma-separated in
//! ascending window order, `parts` the key parts read per request (`h:<header>`, `ip`; `-` for
//! none), then the quota's name and its refusal. Free text is escaped ([`escape`]), so the split
//! is exact.

mod duration;

use serde_json::Value;

pub use duration::{DurationError, window_secs};

use super::{Param, ParamError, Schema, StrRule, check, error, is_token, optional, required, wrong_type};

/// WSO2's `basic-ratelimit`: `limits` of `{requests, duration}`, all enforced.
pub(super) const BASIC_RATELIMIT_V1: &[Param] = &[required("limits", Schema::Custom(basic_limits))];

const BASIC_LIMIT: Schema = Schema::Object(&[
    required(
        "requests",
        Schema::Int {
            min: 1,
            max: MAX_REQUESTS,
        },
    ),
    required("duration", Schema::Custom(basic_duration)),
]);

/// WSO2's `advanced-ratelimit`: `quotas`, a default `keyExtraction` and the refusal.
pub(super) const ADVANCED_RATELIMIT_V1: &[Param] = &[
    required("quotas", Schema::Custom(quotas)),
    optional("keyExtraction", Schema::Custom(key_extraction)),
    optional(
        "onRateLimitExceeded",
        Schema::Object(&[
            optional("statusCode", Schema::Int { min: 400, max: 599 }),
            optional("body", Schema::Str(StrRule::MaxBytes(8192))),
            optional("bodyFormat", Schema::Str(StrRule::OneOf(&["json", "plain"]))),
        ]),
    ),
];

const QUOTA: Schema = Schema::Object(&[
    optional("name", Schema::Custom(quota_name)),
    required("limits", Schema::Custom(advanced_limits)),
    optional("keyExtraction", Schema::Custom(key_extraction)),
    optional("costExtraction", Schema::Custom(cost_extraction)),
]);

const ADVANCED_LIMIT: Schema = Schema::Object(&[
    required(
        "limit",
        Schema::Int {
            min: 1,
            max: MAX_REQUESTS,
        },
    ),
    required("duration", Schema::Custom(advanced_duration)),
    // Accepted for compatibility; a fixed window has no burst beyond its limit (README).
    optional(
        "burst",
        Schema::Int {
            min: 1,
            max: MAX_REQUESTS,
        },
    ),
]);

const KEY_PART: Schema = Schema::Object(&[
    required(
        "type",
        Schema::Str(StrRule::OneOf(&[
            "header",
            "metadata",
            "ip",
            "apiname",
            "apiversion",
            "routename",
            "cel",
            "constant",
        ])),
    ),
    optional("key", Schema::Custom(|v, p, out| text(v, p, out, 256))),
    optional("expression", Schema::Custom(|v, p, out| text(v, p, out, 1024))),
]);

/// WSO2's bound on `requests` and `limit`.
const MAX_REQUESTS: i64 = 1_000_000_000;
/// The longest window: its seconds must fit the counters' `u32`.
pub const MAX_WINDOW_SECS: u64 = u32::MAX as u64;
/// WSO2's default refusal body (both policies).
pub const DEFAULT_BODY: &str =
    "{\"error\": \"Too Many Requests\", \"message\": \"Rate limit exceeded. Please try again later.\"}";

// === schema checks ===

fn bounded(value: &Value, path: &str, out: &mut Vec<ParamError>, (min, max): (usize, usize), item: &Schema) {
    let Some(items) = value.as_array() else {
        out.push(wrong_type("array", value, path));
        return;
    };
    if items.len() < min || items.len() > max {
        out.push(error(
            path,
            format!("Array has {} items (must have between {min} and {max})", items.len()),
        ));
    }
    for (i, v) in items.iter().enumerate() {
        check(item, v, &format!("{path}[{i}]"), out);
    }
}

fn basic_limits(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    bounded(value, path, out, (1, 10), &BASIC_LIMIT);
}

fn advanced_limits(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    bounded(value, path, out, (1, 10), &ADVANCED_LIMIT);
}

fn quotas(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    bounded(value, path, out, (1, 10), &QUOTA);
}

fn key_extraction(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    bounded(value, path, out, (0, 5), &Schema::Custom(key_part));
}

/// One key part: the table's fields, then what each type needs, and the types Tollgate refuses.
fn key_part(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    let before = out.len();
    check(&KEY_PART, value, path, out);
    if out.len() > before {
        return;
    }
    let kind = value.get("type").and_then(Value::as_str).unwrap_or_default();
    let key = value.get("key").and_then(Value::as_str);
    let at = format!("{path}.key");
    match (kind, key) {
        ("header" | "constant", None) => {
            out.push(error(&at, format!("Required parameter 'key' is missing (type '{kind}')")));
        }
        ("header", Some(k)) if !is_token(k) => {
            out.push(error(&at, format!("Invalid header name '{}'", k.escape_debug())));
        }
        ("metadata" | "cel", _) => out.push(error(
            &format!("{path}.type"),
            format!("Key type '{kind}' is not supported by Tollgate (use header, ip, apiname, apiversion, routename or constant)"),
        )),
        _ => {}
    }
}

fn text(value: &Value, path: &str, out: &mut Vec<ParamError>, max: usize) {
    match value.as_str() {
        Some(s) if s.is_empty() || s.chars().count() > max => {
            out.push(error(path, format!("Value must be 1 to {max} characters long")));
        }
        Some(_) => {}
        None => out.push(wrong_type("string", value, path)),
    }
}

fn quota_name(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    match value.as_str() {
        Some(s) if s.is_empty() || s.chars().count() > 128 => {
            out.push(error(path, "Value must be 1 to 128 characters long".to_string()));
        }
        Some(s) if s.chars().any(char::is_control) => {
            out.push(error(path, "Value must not contain control characters".to_string()));
        }
        Some(_) => {}
        None => out.push(wrong_type("string", value, path)),
    }
}

/// Cost extraction (token-based limits) is not supported: accepted only when disabled.
fn cost_extraction(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    let Some(map) = value.as_object() else {
        out.push(wrong_type("object", value, path));
        return;
    };
    match map.get("enabled") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => out.push(error(
            &format!("{path}.enabled"),
            "Cost extraction is not supported by Tollgate (every request costs 1)".to_string(),
        )),
        Some(v) => out.push(wrong_type("boolean", v, &format!("{path}.enabled"))),
    }
    for key in map
        .keys()
        .filter(|k| !["enabled", "sources", "default"].contains(&k.as_str()))
    {
        out.push(error(&format!("{path}.{key}"), format!("Unknown parameter '{key}'")));
    }
}

fn basic_duration(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    duration(value, path, out, true);
}

fn advanced_duration(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    duration(value, path, out, false);
}

fn duration(value: &Value, path: &str, out: &mut Vec<ParamError>, simple: bool) {
    let Some(s) = value.as_str() else {
        out.push(wrong_type("string", value, path));
        return;
    };
    match window_secs(s, simple) {
        Ok(_) => {}
        Err(DurationError::Syntax) => out.push(error(
            path,
            format!(
                "Invalid duration '{}' (a Go duration such as \"1s\", \"1m\", \"1h\" or \"24h\")",
                s.escape_debug()
            ),
        )),
        Err(DurationError::Range) => out.push(error(
            path,
            format!("Duration '{s}' must be a whole number of seconds from 1s to {MAX_WINDOW_SECS}s"),
        )),
    }
}

// === lowering ===

/// Where a policy sits, and the names its key parts may use.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The API's handle: every counter is the API's own.
    pub api: &'a str,
    pub api_name: &'a str,
    pub api_version: &'a str,
    /// The operation (method, path and header conditions): `routename`.
    pub route: &'a str,
    /// Attached to the operation rather than the API.
    pub operation: bool,
}

/// One quota as a route carries it (see the module's line format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaLine {
    pub scope: String,
    /// `(requests, window seconds)`, shortest window first.
    pub limits: Vec<(u64, u64)>,
    /// Key parts read per request: `h:<lower-case header>` or `ip`.
    pub parts: Vec<String>,
    pub name: String,
    pub status: u16,
    pub json: bool,
    pub body: String,
}

/// The quota lines of one `basic-ratelimit` or `advanced-ratelimit` policy (valid `params`;
/// anything else lowers to nothing). `basic-ratelimit` counts per API at API level and per
/// operation at operation level, as WSO2 does.
pub fn lower(policy: &str, params: &Value, at: &Scope<'_>) -> Vec<QuotaLine> {
    match policy {
        "basic-ratelimit" => {
            let keyed = if at.operation {
                format!("basic|{}|route={}", at.api, at.route)
            } else {
                format!("basic|{}", at.api)
            };
            vec![QuotaLine {
                limits: limits_of(params.get("limits"), "requests", true),
                ..QuotaLine::new(keyed, vec![], "default".into())
            }]
        }
        "advanced-ratelimit" => advanced(params, at),
        _ => vec![],
    }
}

/// The `(requests, seconds)` of a `limits` array, shortest window first.
fn limits_of(v: Option<&Value>, field: &str, simple: bool) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let n = l.get(field)?.as_u64()?;
            Some((n, window_secs(l.get("duration")?.as_str()?, simple).ok()?))
        })
        .collect();
    out.sort_by_key(|&(n, w)| (w, n));
    out
}

fn advanced(params: &Value, at: &Scope<'_>) -> Vec<QuotaLine> {
    let exceeded = params.get("onRateLimitExceeded");
    let status = exceeded
        .and_then(|e| e.get("statusCode"))
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(429);
    let json = exceeded.and_then(|e| e.get("bodyFormat")).and_then(Value::as_str) != Some("plain");
    let body = exceeded
        .and_then(|e| e.get("body"))
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_BODY);
    let global = params
        .get("keyExtraction")
        .and_then(Value::as_array)
        .filter(|k| !k.is_empty());
    let quotas = params.get("quotas").and_then(Value::as_array).into_iter().flatten();
    let level = if at.operation { "operation" } else { "api" };
    quotas
        .enumerate()
        .map(|(i, q)| {
            let name = q
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("quota-{i}"), str::to_string);
            let own = q
                .get("keyExtraction")
                .and_then(Value::as_array)
                .filter(|k| !k.is_empty());
            let mut scope = format!("advanced|{}|{level}|{name}", at.api);
            let mut parts = Vec::new();
            match own.or(global) {
                Some(keys) => {
                    for k in keys {
                        let key = k.get("key").and_then(Value::as_str).unwrap_or_default();
                        match k.get("type").and_then(Value::as_str).unwrap_or_default() {
                            "header" => parts.push(format!("h:{}", key.to_ascii_lowercase())),
                            "ip" => parts.push("ip".into()),
                            "apiname" => scope.push_str(&format!("|apiname={}", at.api_name)),
                            "apiversion" => scope.push_str(&format!("|apiversion={}", at.api_version)),
                            "routename" => scope.push_str(&format!("|routename={}", at.route)),
                            other => scope.push_str(&format!("|{other}={key}")),
                        }
                    }
                }
                None => scope.push_str(&format!("|routename={}", at.route)),
            }
            // The parts' kinds and order are in the scope, so two layouts never share counters.
            scope.push_str(&format!("|parts={}", parts.join(",")));
            QuotaLine {
                limits: limits_of(q.get("limits"), "limit", false),
                status,
                json,
                body: body.to_string(),
                ..QuotaLine::new(scope, parts, name)
            }
        })
        .collect()
}

// === impl QuotaLine ===

impl QuotaLine {
    fn new(scope: String, parts: Vec<String>, name: String) -> Self {
        QuotaLine {
            scope,
            limits: vec![],
            parts,
            name,
            status: 429,
            json: true,
            body: DEFAULT_BODY.to_string(),
        }
    }

    /// The line's text (no `\n`).
    pub fn encode(&self) -> String {
        let limits: Vec<String> = self.limits.iter().map(|(n, w)| format!("{n}/{w}")).collect();
        let parts = if self.parts.is_empty() {
            "-".to_string()
        } else {
            self.parts.join(",")
        };
        format!(
            "{} {} {} {} {} {} {}",
            escape(&self.scope),
            limits.join(","),
            parts,
            escape(&self.name),
            self.status,
            if self.json { "json" } else { "plain" },
            escape(&self.body)
        )
    }
}

/// A quota line read in place: the scope and text fields still escaped (the counter key hashes
/// the escaped scope; [`unescape`] the name and body only to build a refusal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLine<'a> {
    pub scope: &'a str,
    pub limits: &'a str,
    pub parts: &'a str,
    pub name: &'a str,
    pub status: u16,
    pub json: bool,
    pub body: &'a str,
}

impl<'a> RawLine<'a> {
    /// Splits one line; `None` if it is not one [`QuotaLine::encode`] wrote.
    pub fn parse(line: &'a str) -> Option<Self> {
        let mut f = line.splitn(7, ' ');
        let (scope, limits, parts, name) = (f.next()?, f.next()?, f.next()?, f.next()?);
        let status = f.next()?.parse().ok()?;
        let json = match f.next()? {
            "json" => true,
            "plain" => false,
            _ => return None,
        };
        Some(RawLine {
            scope,
            limits,
            parts,
            name,
            status,
            json,
            body: f.next()?,
        })
    }

    /// The `(requests, seconds)` pairs; a malformed pair ends the list with `None`.
    pub fn limits(&self) -> impl Iterator<Item = Option<(u64, u32)>> + 'a {
        self.limits.split(',').map(|l| {
            let (n, w) = l.split_once('/')?;
            Some((n.parse().ok()?, w.parse().ok().filter(|&w: &u32| w > 0)?))
        })
    }

    /// The key parts read per request.
    pub fn parts(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.parts.split(',').filter(|p| *p != "-" && !p.is_empty())
    }
}

/// `%`, space and line breaks as `%25`, `%20`, `%0A`, `%0D`, so fields split exactly.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            ' ' => out.push_str("%20"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`].
pub fn unescape(s: &str) -> String {
    s.replace("%20", " ")
        .replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%25", "%")
}

#[cfg(test)]
mod tests;
