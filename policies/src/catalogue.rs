//! The policies Tollgate provides: their names, major versions and parameter schemas.
//!
//! Documents name a policy by `name` and major `version` (`v1`); the catalogue answers whether that pair
//! exists and checks the policy's `params` against a small built-in schema, so that a bad document is
//! rejected at the REST API rather than at the data plane.

pub mod basic_auth;
pub mod ratelimit;

use std::sync::Arc;

use serde_json::{Map, Value};

pub mod cors;
mod json_schema;
mod jwt;
pub mod mediation;

pub use jwt::JWT_AUTH;

/// Why [`Catalogue::lookup`] found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No provided policy has this name.
    UnknownName,
    /// The policy exists, but not in the requested major version.
    UnknownVersion,
}

/// One problem with a policy's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// Path of the offending parameter relative to `params`, e.g. `statusCode` or `headers[1].name`;
    /// empty when the `params` value itself is at fault.
    pub path: String,
    /// What is wrong; a wrong JSON type always starts with `Invalid type`.
    pub message: String,
}

/// One provided policy in one major version.
#[derive(Debug)]
pub struct PolicyDef {
    name: &'static str,
    version: &'static str,
    params: &'static [Param],
    /// Checks across parameters (WSO2's `anyOf`, `if`/`then`) once every parameter has its shape.
    extra: Option<Extra>,
    /// Checks against the gateway's configuration, run once the schema holds (e.g. names that must
    /// be configured).
    gateway: Option<ExtraCheck>,
    facts: Arc<GatewayFacts>,
}

/// A check of schema-valid `params` against what the gateway is configured with.
type ExtraCheck = fn(&Value, &GatewayFacts, &mut Vec<ParamError>);

/// What the gateway's configuration file tells the catalogue (policies whose parameters name
/// configured things, such as `jwt-auth`'s `issuers`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayFacts {
    /// The names of the configured JWT key managers (`jwt.key_managers`).
    pub key_managers: Vec<String>,
    /// The scheme before a JWT in its header (`jwt.auth_header_scheme`).
    pub auth_header_scheme: String,
}

/// A check of a whole value at a path, run after its schema passed (cross-field rules).
type Extra = fn(&Value, &str, &mut Vec<ParamError>);

/// The catalogue of provided policies.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// Kept sorted by (name, version) so that [`Catalogue::list`] needs no work.
    defs: Vec<PolicyDef>,
}

/// A named parameter of an object-shaped value.
#[derive(Debug)]
struct Param {
    name: &'static str,
    required: bool,
    schema: Schema,
}

/// The shape a parameter value must have.
#[derive(Debug)]
enum Schema {
    Str(StrRule),
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Array(&'static Schema),
    /// An object with any keys, each value of this shape (JSON Schema's `additionalProperties`).
    Map(&'static Schema),
    Object(&'static [Param]),
    /// The inner schema, then (only when it passed) a check of the whole value.
    Checked(&'static Schema, Extra),
    /// Checked by code (value, its path, the problems found): rules the table cannot say, such as
    /// array bounds or Go durations.
    Custom(fn(&Value, &str, &mut Vec<ParamError>)),
}

/// Extra constraints on a string value.
#[derive(Debug)]
enum StrRule {
    /// Non-empty; letters, digits, `-` and `_` (a header or query-parameter name).
    Token,
    OneOf(&'static [&'static str]),
    /// An HTTP field name Envoy lets a route add to a response: an RFC 9110 token, not `host`
    /// (and so never a `:` pseudo-header).
    ResponseHeaderName,
    /// An HTTP field value: no NUL, CR or LF.
    HeaderValue,
    /// At most this many bytes (Envoy's limit on a direct response body is 4,096).
    MaxBytes(usize),
    /// Empty (meaning "none"), or a cookie name: an RFC 9110 token (RFC 6265 §4.1.1).
    CookieName,
    /// A CORS origin: `*`, an exact origin, or an RE2 regex Envoy accepts (see [`cors`]).
    CorsOrigin,
    /// A CORS header name: an RFC 9110 token of at most 256 characters, or `*`.
    CorsHeader,
    /// A rule of one policy's own: the message when the value is refused.
    Custom(fn(&str) -> Option<String>),
    /// An RE2 regular expression of at most this many characters (its syntax is judged by the
    /// model, which holds the RE2 checker; see [`PolicyDef::regexes`]).
    Re2(usize),
}

const fn required(name: &'static str, schema: Schema) -> Param {
    Param {
        name,
        required: true,
        schema,
    }
}

const fn optional(name: &'static str, schema: Schema) -> Param {
    Param {
        name,
        required: false,
        schema,
    }
}

const API_KEY_AUTH_V1: &[Param] = &[
    required("key", Schema::Str(StrRule::Token)),
    required("in", Schema::Str(StrRule::OneOf(&["header", "query"]))),
    optional("stripKey", Schema::Bool),
];

/// WSO2's `subscription-validation` parameters (its definition gives types and defaults only:
/// `enabled` true, `subscriptionKeyHeader` `Subscription-Key`, `subscriptionKeyCookie` empty for
/// none). The header name must be one Envoy can send to ext_authz, as `api-key-auth`'s `key`.
const SUBSCRIPTION_VALIDATION_V1: &[Param] = &[
    optional("enabled", Schema::Bool),
    optional("subscriptionKeyHeader", Schema::Str(StrRule::Token)),
    optional("subscriptionKeyCookie", Schema::Str(StrRule::CookieName)),
];

/// The default of `subscriptionKeyHeader`.
pub const SUBSCRIPTION_KEY_HEADER: &str = "Subscription-Key";

const RESPOND_HEADER: Schema = Schema::Object(&[
    required("name", Schema::Str(StrRule::ResponseHeaderName)),
    required("value", Schema::Str(StrRule::HeaderValue)),
]);

/// Envoy's default `max_direct_response_body_size_bytes`.
const DIRECT_RESPONSE_BODY_MAX: usize = 4096;

const RESPOND_V1: &[Param] = &[
    // Envoy answers a direct response with a final status only (200-599).
    required("statusCode", Schema::Int { min: 200, max: 599 }),
    optional("body", Schema::Str(StrRule::MaxBytes(DIRECT_RESPONSE_BODY_MAX))),
    optional("headers", Schema::Array(&RESPOND_HEADER)),
];

// === impl Catalogue ===

impl Catalogue {
    /// The policies Tollgate ships, for a gateway with nothing configured for them (no key
    /// managers, so `jwt-auth` is refused).
    pub fn builtin() -> Catalogue {
        Catalogue::for_gateway(GatewayFacts::default())
    }

    /// The built-in policies, checked against what this gateway is configured with.
    pub fn for_gateway(facts: GatewayFacts) -> Catalogue {
        let facts = Arc::new(facts);
        let def = |name, params, extra, gateway| PolicyDef {
            name,
            version: "v1",
            params,
            extra,
            gateway,
            facts: facts.clone(),
        };
        let mut defs = vec![
            def("api-key-auth", API_KEY_AUTH_V1, None, None),
            def("cors", cors::CORS_V1, Some(cors::extra as Extra), None),
            def("basic-auth", basic_auth::BASIC_AUTH_V1, None, None),
            def("basic-ratelimit", ratelimit::BASIC_RATELIMIT_V1, None, None),
            def("advanced-ratelimit", ratelimit::ADVANCED_RATELIMIT_V1, None, None),
            def(JWT_AUTH, jwt::PARAMS_V1, None, Some(jwt::check as ExtraCheck)),
            def("respond", RESPOND_V1, None, None),
            def("subscription-validation", SUBSCRIPTION_VALIDATION_V1, None, None),
        ];
        defs.extend(mediation::defs(&facts));
        defs.sort_by(|a, b| (a.name, a.version).cmp(&(b.name, b.version)));
        Catalogue { defs }
    }

    /// The definition of `name` in major `version` (e.g. `v1`; full versions such as `v1.0.0` never match).
    pub fn lookup(&self, name: &str, version: &str) -> Result<&PolicyDef, Lookup> {
        let mut named = self.defs.iter().filter(|d| d.name == name).peekable();
        if named.peek().is_none() {
            return Err(Lookup::UnknownName);
        }
        named.find(|d| d.version == version).ok_or(Lookup::UnknownVersion)
    }

    /// Every provided policy, sorted by name and version.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyDef> {
        self.defs.iter()
    }

    /// Every provided (name, major version) pair, sorted.
    pub fn list(&self) -> Vec<(&str, &str)> {
        self.defs.iter().map(|d| (d.name, d.version)).collect()
    }
}

// === impl PolicyDef ===

impl PolicyDef {
    /// The policy's name, e.g. `respond`.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The major version, e.g. `v1`.
    pub fn version(&self) -> &str {
        self.version
    }

    /// Checks `params` (absent or `null` counts as an empty object) and returns every problem found.
    pub fn validate_params(&self, params: Option<&Value>) -> Vec<ParamError> {
        let empty = Value::Object(Map::new());
        let value = match params {
            None | Some(Value::Null) => &empty,
            Some(v) => v,
        };
        let mut out = Vec::new();
        check_object(self.params, value, "", &mut out);
        if let Some(extra) = self.extra.filter(|_| out.is_empty()) {
            extra(value, "", &mut out);
        }
        if let (true, Some(check)) = (out.is_empty(), self.gateway) {
            check(value, &self.facts, &mut out);
        }
        out
    }

    /// The regular expressions in valid `params`, with their paths, for the caller to judge as RE2.
    pub fn regexes<'a>(&self, params: &'a Value) -> Vec<(String, &'a str)> {
        let mut out = Vec::new();
        collect_object(self.params, params, "", &mut out);
        mediation::match_regexes(self.name, params, &mut out);
        out
    }
}

fn collect<'a>(schema: &Schema, value: &'a Value, path: &str, out: &mut Vec<(String, &'a str)>) {
    match (schema, value) {
        (Schema::Str(StrRule::Re2(_)), Value::String(s)) => out.push((path.to_string(), s)),
        (Schema::Array(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                collect(item, v, &format!("{path}[{i}]"), out);
            }
        }
        (Schema::Object(params), _) => collect_object(params, value, path, out),
        (Schema::Checked(inner, _), _) => collect(inner, value, path, out),
        _ => {}
    }
}

fn collect_object<'a>(params: &[Param], value: &'a Value, path: &str, out: &mut Vec<(String, &'a str)>) {
    for p in params {
        if let Some(v) = value.get(p.name) {
            collect(&p.schema, v, &join(path, p.name), out);
        }
    }
}

// === schema checking ===

fn check(schema: &Schema, value: &Value, path: &str, out: &mut Vec<ParamError>) {
    match schema {
        Schema::Str(rule) => match value.as_str() {
            Some(s) => check_str(rule, s, path, out),
            None => out.push(wrong_type("string", value, path)),
        },
        Schema::Bool if !value.is_boolean() => out.push(wrong_type("boolean", value, path)),
        Schema::Bool => {}
        Schema::Int { min, max } => match value.as_i64() {
            Some(n) if n < *min || n > *max => {
                out.push(error(
                    path,
                    format!("Value {n} is out of range (must be between {min} and {max})"),
                ));
            }
            Some(_) => {}
            // A u64 beyond i64 is an integer, just far out of range.
            None if value.is_u64() => out.push(error(
                path,
                format!("Value {value} is out of range (must be between {min} and {max})"),
            )),
            None => out.push(wrong_type("integer", value, path)),
        },
        Schema::Array(item) => match value.as_array() {
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    check(item, v, &format!("{path}[{i}]"), out);
                }
            }
            None => out.push(wrong_type("array", value, path)),
        },
        Schema::Map(item) => match value.as_object() {
            Some(map) => {
                for (k, v) in map {
                    check(item, v, &join(path, k), out);
                }
            }
            None => out.push(wrong_type("object", value, path)),
        },
        Schema::Object(params) => check_object(params, value, path, out),
        Schema::Checked(inner, extra) => {
            let before = out.len();
            check(inner, value, path, out);
            if out.len() == before {
                extra(value, path, out);
            }
        }
        Schema::Custom(f) => f(value, path, out),
    }
}

fn check_object(params: &[Param], value: &Value, path: &str, out: &mut Vec<ParamError>) {
    let Some(map) = value.as_object() else {
        out.push(wrong_type("object", value, path));
        return;
    };
    for p in params {
        let at = join(path, p.name);
        match map.get(p.name) {
            // An explicit null is treated as absent: YAML `key:` with no value means "not given".
            None | Some(Value::Null) if p.required => {
                out.push(error(&at, format!("Required parameter '{}' is missing", p.name)));
            }
            None | Some(Value::Null) => {}
            Some(v) => check(&p.schema, v, &at, out),
        }
    }
    for key in map.keys().filter(|k| !params.iter().any(|p| p.name == k.as_str())) {
        out.push(error(&join(path, key), format!("Unknown parameter '{key}'")));
    }
}

fn check_str(rule: &StrRule, s: &str, path: &str, out: &mut Vec<ParamError>) {
    match rule {
        StrRule::Token if s.is_empty() => out.push(error(path, "Value must not be empty".to_string())),
        StrRule::Token => {
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                let msg = format!("Invalid value '{s}' (must contain only letters, digits, '-' and '_')");
                out.push(error(path, msg));
            }
        }
        StrRule::CookieName => {
            if !s.is_empty() && !is_token(s) {
                out.push(error(path, format!("Invalid cookie name '{}'", s.escape_debug())));
            }
        }
        StrRule::ResponseHeaderName => {
            if !is_token(s) {
                out.push(error(path, format!("Invalid header name '{}'", s.escape_debug())));
            } else if s.eq_ignore_ascii_case("host") {
                out.push(error(path, "The host header cannot be set on a response".to_string()));
            }
        }
        StrRule::HeaderValue => {
            if s.contains(['\0', '\r', '\n']) {
                out.push(error(path, "Header value must not contain NUL, CR or LF".to_string()));
            }
        }
        StrRule::MaxBytes(max) => {
            if s.len() > *max {
                out.push(error(
                    path,
                    format!("Value is {} bytes long (at most {max} are allowed)", s.len()),
                ));
            }
        }
        StrRule::CorsOrigin => cors::check_origin(s, path, out),
        StrRule::CorsHeader => cors::check_header(s, path, out),
        StrRule::Custom(rule) => {
            if let Some(msg) = rule(s) {
                out.push(error(path, msg));
            }
        }
        StrRule::Re2(_) if s.is_empty() => out.push(error(path, "Value must not be empty".to_string())),
        StrRule::Re2(max) => {
            if s.chars().count() > *max {
                out.push(error(path, format!("Value is longer than {max} characters")));
            }
        }
        StrRule::OneOf(allowed) => {
            if !allowed.contains(&s) {
                out.push(error(
                    path,
                    format!("Invalid value '{s}' (must be one of: {})", allowed.join(", ")),
                ));
            }
        }
    }
}

/// An RFC 9110 token: one or more of letters, digits and ``!#$%&'*+-.^_`|~``.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn error(path: &str, message: String) -> ParamError {
    ParamError {
        path: path.to_string(),
        message,
    }
}

fn wrong_type(expected: &str, got: &Value, path: &str) -> ParamError {
    error(
        path,
        format!("Invalid type: expected {expected}, got {}", type_name(got)),
    )
}

/// JSON-schema style type names, so messages read like the reference implementation's.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
