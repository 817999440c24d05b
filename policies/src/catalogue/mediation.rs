//! The mediation policies: `set-headers`, `remove-headers`, `host-rewrite`, `request-rewrite` and
//! `redirect`. Names, types and limits are WSO2's (`policies/<name>/policy-definition.yaml` in
//! `wso2/gateway-controllers`); on top of them we refuse what Envoy's route configuration would refuse.
//! The translator lowers them to route configuration, except what Envoy cannot do natively (a new
//! request method, a query value edited in place), which the ext_authz service does ([`service`]).

use serde_json::Value;

use super::{Extra, Param, ParamError, PolicyDef, Schema, StrRule, error, optional, required};

/// WSO2's header values (at most 8,192 characters) that Envoy takes: no NUL, CR or LF.
const HEADER_VALUE: Schema = Schema::Str(StrRule::Custom(header_value));

const SET_HEADER: Schema = Schema::Object(&[
    required("name", Schema::Str(StrRule::Custom(settable_request_header))),
    required("value", HEADER_VALUE),
]);
const SET_RESPONSE_HEADER: Schema = Schema::Object(&[
    required("name", Schema::Str(StrRule::Custom(response_header_name))),
    required("value", HEADER_VALUE),
]);

const SET_HEADERS_V1: &[Param] = &[
    optional("requestHeaders", Schema::Array(&SET_HEADER)),
    optional("responseHeaders", Schema::Array(&SET_RESPONSE_HEADER)),
];

const REMOVE_REQUEST_HEADER: Schema =
    Schema::Object(&[required("name", Schema::Str(StrRule::Custom(removable_request_header)))]);
const REMOVE_RESPONSE_HEADER: Schema =
    Schema::Object(&[required("name", Schema::Str(StrRule::Custom(response_header_name)))]);

const REMOVE_HEADERS_V1: &[Param] = &[
    optional(
        "requestHeaders",
        Schema::Checked(&Schema::Array(&REMOVE_REQUEST_HEADER), non_empty),
    ),
    optional(
        "responseHeaders",
        Schema::Checked(&Schema::Array(&REMOVE_RESPONSE_HEADER), non_empty),
    ),
];

const HOST_REWRITE_V1: &[Param] = &[required("host", Schema::Str(StrRule::Custom(host)))];

const MATCH_TYPES: &[&str] = &["Exact", "Regex", "Present"];

/// One `match.headers` or `match.queryParams` item: `value` is required for Exact and Regex and
/// refused for Present; a Regex value is an RE2 pattern.
const MATCHER: Schema = Schema::Checked(
    &Schema::Object(&[
        required("name", Schema::Str(StrRule::Custom(match_name))),
        required("type", Schema::Str(StrRule::OneOf(MATCH_TYPES))),
        optional("value", Schema::Str(StrRule::Custom(match_value))),
    ]),
    matcher,
);
const HEADER_MATCHER: Schema = Schema::Checked(&MATCHER, header_matcher_name);

const MATCH: Schema = Schema::Checked(
    &Schema::Object(&[
        optional("headers", Schema::Checked(&Schema::Array(&HEADER_MATCHER), non_empty)),
        optional("queryParams", Schema::Checked(&Schema::Array(&MATCHER), non_empty)),
    ]),
    non_empty_object,
);

const PATH_REWRITE_TYPES: &[&str] = &["ReplacePrefixMatch", "ReplaceFullPath", "ReplaceRegexMatch"];

const REGEX_REWRITE: Schema = Schema::Object(&[
    required("pattern", Schema::Str(StrRule::Re2(1024))),
    required("substitution", Schema::Str(StrRule::Custom(substitution))),
]);

const PATH_REWRITE: Schema = Schema::Checked(
    &Schema::Object(&[
        required("type", Schema::Str(StrRule::OneOf(PATH_REWRITE_TYPES))),
        optional("replacePrefixMatch", Schema::Str(StrRule::Custom(prefix_path))),
        optional("replaceFullPath", Schema::Str(StrRule::Custom(full_path))),
        optional("replaceRegexMatch", REGEX_REWRITE),
    ]),
    path_rewrite,
);

const QUERY_ACTIONS: &[&str] = &["Replace", "Remove", "Add", "Append", "ReplaceRegexMatch"];

const QUERY_RULE: Schema = Schema::Checked(
    &Schema::Object(&[
        required("action", Schema::Str(StrRule::OneOf(QUERY_ACTIONS))),
        required("name", Schema::Str(StrRule::Custom(query_name))),
        optional("value", Schema::Str(StrRule::Custom(query_value))),
        optional("separator", Schema::Str(StrRule::Custom(separator))),
        optional("pattern", Schema::Str(StrRule::Re2(1024))),
        optional("substitution", Schema::Str(StrRule::Custom(substitution))),
    ]),
    query_rule,
);

const QUERY_REWRITE: Schema = Schema::Object(&[required(
    "rules",
    Schema::Checked(&Schema::Array(&QUERY_RULE), non_empty),
)]);

/// The methods WSO2's `methodRewrite` names.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

const REQUEST_REWRITE_V1: &[Param] = &[
    optional("match", MATCH),
    optional("pathRewrite", PATH_REWRITE),
    optional("queryRewrite", QUERY_REWRITE),
    optional("methodRewrite", Schema::Str(StrRule::OneOf(METHODS))),
];

/// The redirect statuses Envoy's route redirect can answer.
pub const REDIRECT_CODES: &[i64] = &[301, 302, 303, 307, 308];

/// WSO2 publishes no `redirect` definition we could read; this schema is Tollgate's own (see the
/// README): `url` is where to send the client, `statusCode` how (302 unless given).
const REDIRECT_V1: &[Param] = &[
    required("url", Schema::Str(StrRule::Custom(redirect_url))),
    optional(
        "statusCode",
        Schema::Checked(&Schema::Int { min: 301, max: 308 }, redirect_code),
    ),
];

/// The mediation policies, for [`super::Catalogue::builtin`].
pub(super) fn defs(facts: &std::sync::Arc<super::GatewayFacts>) -> [PolicyDef; 5] {
    let def = |name, params, extra| PolicyDef {
        name,
        version: "v1",
        params,
        extra,
        gateway: None,
        facts: facts.clone(),
    };
    [
        def("set-headers", SET_HEADERS_V1, Some(headers_any_of as Extra)),
        def("remove-headers", REMOVE_HEADERS_V1, Some(headers_any_of as Extra)),
        def("host-rewrite", HOST_REWRITE_V1, None),
        def("request-rewrite", REQUEST_REWRITE_V1, Some(rewrite_any_of as Extra)),
        def("redirect", REDIRECT_V1, None),
    ]
}

/// The `Regex` values of `request-rewrite`'s `match` (their `value` is a plain string otherwise).
pub(super) fn match_regexes<'a>(policy: &str, params: &'a Value, out: &mut Vec<(String, &'a str)>) {
    if policy != "request-rewrite" {
        return;
    }
    for list in ["headers", "queryParams"] {
        let items = params.pointer(&format!("/match/{list}")).and_then(Value::as_array);
        for (i, m) in items.into_iter().flatten().enumerate() {
            if m.get("type").and_then(Value::as_str) == Some("Regex")
                && let Some(re) = m.get("value").and_then(Value::as_str)
            {
                out.push((format!("match.{list}[{i}].value"), re));
            }
        }
    }
}

// === string rules (the message when refused) ===

fn header_name(s: &str) -> Option<String> {
    let ok = (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (!ok).then(|| {
        format!(
            "Invalid header name '{}' (1 to 256 of letters, digits, '-' and '_')",
            s.escape_debug()
        )
    })
}

/// Envoy refuses to touch `host` on a response (and has no use for it there).
fn response_header_name(s: &str) -> Option<String> {
    header_name(s).or_else(|| {
        s.eq_ignore_ascii_case("host")
            .then(|| "The host header cannot be set or removed on a response".to_string())
    })
}

/// The identity headers ext_authz adds are the gateway's word to the upstream (README): a document
/// may not forge them.
fn settable_request_header(s: &str) -> Option<String> {
    header_name(s).or_else(|| {
        let prefix = crate::IDENTITY_HEADER_PREFIX;
        s.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
            .then(|| format!("Headers starting with '{prefix}' are set by the gateway only"))
    })
}

/// Envoy never removes the request's `host` (every HTTP request has one; `host-rewrite` changes it).
fn removable_request_header(s: &str) -> Option<String> {
    header_name(s).or_else(|| {
        s.eq_ignore_ascii_case("host")
            .then(|| "The host header cannot be removed (use host-rewrite to change it)".to_string())
    })
}

fn header_value(s: &str) -> Option<String> {
    if s.chars().count() > 8192 {
        Some("Value is longer than 8192 characters".to_string())
    } else if s.contains(['\0', '\r', '\n']) {
        Some("Header value must not contain NUL, CR or LF".to_string())
    } else {
        None
    }
}

fn host(s: &str) -> Option<String> {
    let ok = (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".:-".contains(&b));
    (!ok).then(|| {
        format!(
            "Invalid host '{}' (1 to 255 of letters, digits, '.', ':' and '-')",
            s.escape_debug()
        )
    })
}

/// Non-empty; at most 1,024 bytes (Envoy's limit on a query parameter matcher's name).
fn match_name(s: &str) -> Option<String> {
    if s.is_empty() {
        Some("Value must not be empty".to_string())
    } else if s.len() > 1024 {
        Some("Value is longer than 1024 bytes".to_string())
    } else {
        None
    }
}

fn match_value(s: &str) -> Option<String> {
    if s.is_empty() {
        Some("Value must not be empty".to_string())
    } else if s.chars().count() > 2048 {
        Some("Value is longer than 2048 characters".to_string())
    } else {
        None
    }
}

/// A path Envoy can send upstream: printable ASCII without spaces, `?` or `#` (the query stays the
/// request's own, so a rewrite never carries one).
fn path_chars(s: &str) -> Option<String> {
    if s.chars().count() > 2048 {
        return Some("Value is longer than 2048 characters".to_string());
    }
    let ok = s.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
    (!ok).then(|| format!("Invalid path '{}' (no spaces, controls, '?' or '#')", s.escape_debug()))
}

fn prefix_path(s: &str) -> Option<String> {
    path_chars(s)
}

fn full_path(s: &str) -> Option<String> {
    if !s.starts_with('/') {
        return Some("Path must start with '/'".to_string());
    }
    path_chars(s)
}

/// An RE2 rewrite string: `\0`–`\9` name groups, `\\` is a backslash; nothing else may follow `\`.
fn substitution(s: &str) -> Option<String> {
    if s.chars().count() > 2048 {
        return Some("Value is longer than 2048 characters".to_string());
    }
    if s.contains(['\0', '\r', '\n']) {
        return Some("Value must not contain NUL, CR or LF".to_string());
    }
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' && !matches!(bytes.next(), Some(b'0'..=b'9' | b'\\')) {
            return Some("A '\\' must be followed by a group number or another '\\'".to_string());
        }
    }
    None
}

fn query_name(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("Value must not be empty".to_string());
    }
    query_chars(s)
}

fn query_value(s: &str) -> Option<String> {
    if s.chars().count() > 2048 {
        return Some("Value is longer than 2048 characters".to_string());
    }
    query_chars(s)
}

fn separator(s: &str) -> Option<String> {
    (s.chars().count() > 64).then(|| "Value is longer than 64 characters".to_string())
}

/// Envoy puts query names and values into the path as given: no controls.
fn query_chars(s: &str) -> Option<String> {
    s.chars()
        .any(char::is_control)
        .then(|| "Value must not contain control characters".to_string())
}

/// `http(s)://host[:port][/path][?query]` without user info or fragment, or a path on the same host.
fn redirect_url(s: &str) -> Option<String> {
    match split_url(s) {
        Some(_) => None,
        None => Some(format!(
            "Invalid URL '{}' (an http or https URL without user info or fragment, or a path starting with '/')",
            s.escape_debug()
        )),
    }
}

/// A redirect target in the parts Envoy's redirect action sets.
#[derive(Debug, PartialEq, Eq)]
pub struct RedirectTarget<'a> {
    /// `http` or `https`; `None` for a path on the same host.
    pub scheme: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<u16>,
    /// The path and query (at least `/`).
    pub path: &'a str,
}

/// Splits a valid `redirect` URL; `None` when it is not one.
pub fn split_url(s: &str) -> Option<RedirectTarget<'_>> {
    if s.bytes().any(|b| !b.is_ascii_graphic() || b == b'#') || s.len() > 2048 {
        return None;
    }
    if s.starts_with('/') {
        return Some(RedirectTarget {
            scheme: None,
            host: None,
            port: None,
            path: s,
        });
    }
    let (scheme, rest) = s.split_once("://")?;
    let scheme = ["http", "https"].into_iter().find(|x| scheme.eq_ignore_ascii_case(x))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().ok().filter(|p| *p > 0)?)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !host_ok {
        return None;
    }
    let path = if path.is_empty() {
        "/"
    } else if path.starts_with('?') {
        return None;
    } else {
        path
    };
    Some(RedirectTarget {
        scheme: Some(scheme),
        host: Some(host),
        port,
        path,
    })
}

// === cross-field rules ===

fn non_empty(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    if value.as_array().is_some_and(|a| a.is_empty()) {
        out.push(error(path, "At least one item is required".to_string()));
    }
}

fn non_empty_object(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    if value.as_object().is_some_and(|o| o.values().all(Value::is_null)) {
        out.push(error(
            path,
            "At least one of 'headers' or 'queryParams' is required".to_string(),
        ));
    }
}

fn present<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.get(key).filter(|v| !v.is_null())
}

fn headers_any_of(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    if present(value, "requestHeaders").is_none() && present(value, "responseHeaders").is_none() {
        let msg = "At least one of 'requestHeaders' or 'responseHeaders' is required";
        out.push(error(path, msg.to_string()));
    }
}

fn rewrite_any_of(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    if ["pathRewrite", "queryRewrite", "methodRewrite"]
        .iter()
        .all(|k| present(value, k).is_none())
    {
        let msg = "At least one of 'pathRewrite', 'queryRewrite' or 'methodRewrite' is required";
        out.push(error(path, msg.to_string()));
    }
}

fn at(path: &str, name: &str) -> String {
    super::join(path, name)
}

fn matcher(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    let present_type = value.get("type").and_then(Value::as_str) == Some("Present");
    match (present_type, present(value, "value")) {
        (true, Some(_)) => out.push(error(
            &at(path, "value"),
            "Not allowed when type is Present".to_string(),
        )),
        (false, None) => out.push(error(
            &at(path, "value"),
            "Required parameter 'value' is missing".to_string(),
        )),
        _ => {}
    }
}

/// A header Envoy can match on: not a `:` pseudo-header (letters, digits and RFC 9110 token marks).
fn header_matcher_name(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    if let Some(name) = value.get("name").and_then(Value::as_str)
        && !super::is_token(name)
    {
        out.push(error(
            &at(path, "name"),
            format!("Invalid header name '{}'", name.escape_debug()),
        ));
    }
}

fn path_rewrite(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    let needed = match value.get("type").and_then(Value::as_str) {
        Some("ReplacePrefixMatch") => "replacePrefixMatch",
        Some("ReplaceFullPath") => "replaceFullPath",
        _ => "replaceRegexMatch",
    };
    if present(value, needed).is_none() {
        out.push(error(
            &at(path, needed),
            format!("Required parameter '{needed}' is missing"),
        ));
    }
}

fn query_rule(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    let action = value.get("action").and_then(Value::as_str).unwrap_or_default();
    let needs: &[&str] = match action {
        "Replace" | "Add" | "Append" => &["value"],
        "ReplaceRegexMatch" => &["pattern", "substitution"],
        _ => &[],
    };
    for key in needs {
        if present(value, key).is_none() {
            out.push(error(&at(path, key), format!("Required parameter '{key}' is missing")));
        }
    }
}

fn redirect_code(value: &Value, path: &str, out: &mut Vec<ParamError>) {
    if let Some(code) = value.as_i64()
        && !REDIRECT_CODES.contains(&code)
    {
        out.push(error(
            path,
            format!("Invalid value {code} (must be one of: 301, 302, 303, 307, 308)"),
        ));
    }
}

pub mod service;

#[cfg(test)]
mod tests;
