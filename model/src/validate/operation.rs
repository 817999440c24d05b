//! `spec.operations`: methods, paths in the simple and match forms, header matchers, and the
//! operation-level resilience and policies.

use tollgate_policies::Catalogue;

use super::{Errors, Limits, duration, policy, present};
use crate::document::{self, HeaderMatchDoc, OperationMatch};
use crate::path::{after_context_regex, full_path, template_regex};
use crate::{HeaderMatch, Method, Operation, PathKind, Resilience};

/// The gateway's own health routes live here; no API may shadow them.
const HEALTH_PREFIX: &str = "/_gateway-health";

/// What operations are checked against: the API's resolved context (if valid) and API-level settings.
#[derive(Debug)]
pub(super) struct Scope<'a> {
    pub context: Option<&'a str>,
    pub resilience: Resilience,
    pub catalogue: &'a Catalogue,
    pub limits: Limits,
}

/// The matching half of an operation, from either form.
#[derive(Debug)]
struct Matcher {
    method: Option<Method>,
    path: Option<String>,
    kind: PathKind,
    headers: Vec<HeaderMatch>,
}

/// Checks every operation; returns the valid ones in document order.
pub(super) fn check_all(ops: Option<&[document::Operation]>, scope: &Scope<'_>, errs: &mut Errors) -> Vec<Operation> {
    let ops = ops.unwrap_or_default();
    if ops.is_empty() {
        errs.add("spec.operations", "At least one operation is required");
        return Vec::new();
    }
    if ops.len() > scope.limits.max_operations {
        let msg = format!(
            "Too many operations ({}; at most {} are allowed)",
            ops.len(),
            scope.limits.max_operations
        );
        errs.add("spec.operations", msg);
    }
    let checked: Vec<(usize, Operation)> = ops
        .iter()
        .enumerate()
        .filter_map(|(j, op)| check(op, &format!("spec.operations[{j}]"), scope, errs).map(|o| (j, o)))
        .collect();
    check_duplicates(&checked, errs);
    checked.into_iter().map(|(_, o)| o).collect()
}

fn check(op: &document::Operation, at: &str, scope: &Scope<'_>, errs: &mut Errors) -> Option<Operation> {
    let before = errs.0.len();
    // When `match` is present it is authoritative and the simple-form fields are ignored.
    let m = match &op.match_ {
        Some(m) => matched(m, &format!("{at}.match"), scope, errs),
        None => Matcher {
            method: method(op.method.as_ref(), &format!("{at}.method"), errs),
            path: path(op.path.as_ref(), &format!("{at}.path"), scope.context, errs),
            kind: PathKind::Template,
            headers: Vec::new(),
        },
    };
    let own = duration::resilience(op.resilience.as_ref(), &format!("{at}.resilience"), errs);
    let resilience = Resilience {
        timeout: own.timeout.or(scope.resilience.timeout),
        idle_timeout: own.idle_timeout.or(scope.resilience.idle_timeout),
    };
    let policies = policy::check_all(&op.policies, &format!("{at}.policies"), scope.catalogue, errs);
    if errs.0.len() > before {
        return None;
    }
    Some(Operation {
        method: m.method?,
        path: m.path?,
        kind: m.kind,
        headers: m.headers,
        resilience,
        policies,
    })
}

fn matched(m: &OperationMatch, at: &str, scope: &Scope<'_>, errs: &mut Errors) -> Matcher {
    let method = method(m.method.as_ref(), &format!("{at}.method"), errs);
    let value = m.path.as_ref().and_then(|p| p.value.as_ref());
    let path = path(value, &format!("{at}.path.value"), scope.context, errs);
    let exact = match m.path.as_ref().and_then(|p| p.kind.as_deref()) {
        None | Some("Exact") => true,
        Some("PathPrefix") => false,
        Some(other) => {
            errs.add(
                format!("{at}.path.type"),
                format!("Invalid path match type '{other}' (must be Exact or PathPrefix)"),
            );
            false
        }
    };
    // As in the reference translator, wildcard, parameter and root paths keep their template matching
    // even under `type: Exact`; only a literal path becomes an exact match. `PathPrefix` behaves like the
    // simple form.
    let literal = path
        .as_deref()
        .is_some_and(|p| p != "/" && !p.contains('{') && !p.ends_with("/*"));
    let kind = if exact && literal {
        PathKind::Exact
    } else {
        PathKind::Template
    };
    let headers = m
        .headers
        .iter()
        .enumerate()
        .filter_map(|(k, h)| header(h, &format!("{at}.headers[{k}]"), errs))
        .collect();
    Matcher {
        method,
        path,
        kind,
        headers,
    }
}

fn method(value: Option<&String>, field: &str, errs: &mut Errors) -> Option<Method> {
    let Some(m) = present(value) else {
        errs.add(field, "HTTP method is required");
        return None;
    };
    let parsed = Method::parse(m);
    if parsed.is_none() {
        errs.add(
            field,
            format!("Invalid HTTP method '{m}' (must be GET, POST, PUT, DELETE, PATCH, HEAD, or OPTIONS)"),
        );
    }
    parsed
}

fn path(value: Option<&String>, field: &str, context: Option<&str>, errs: &mut Errors) -> Option<String> {
    let Some(p) = present(value) else {
        errs.add(field, "Operation path is required");
        return None;
    };
    if !p.starts_with('/') {
        errs.add(field, "Operation path must start with /");
        return None;
    }
    let before = errs.0.len();
    if p.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        errs.add(field, "Operation path must not contain whitespace, '?' or '#'");
    }
    match check_params(p) {
        Err(e) => errs.add(field, e.to_string()),
        Ok(()) => {
            if let (Some(ctx), true) = (context, p.contains('{')) {
                template_fits_re2(ctx, p, field, errs);
            }
        }
    }
    if p.contains('*') && !(p.ends_with("/*") && p.matches('*').count() == 1) {
        errs.add(field, "Wildcard '*' is only allowed as the final path segment ('/*')");
    }
    if let Some(ctx) = context {
        let full = clean(&format!("{ctx}{p}"));
        if full == HEALTH_PREFIX || full.starts_with(&format!("{HEALTH_PREFIX}/")) {
            errs.add(
                field,
                "path conflicts with the reserved gateway health-check namespace (/_gateway-health)",
            );
        }
    }
    (errs.0.len() == before).then(|| p.to_string())
}

/// A templated path becomes a regex route (and a regex rewrite after the context); both must be within
/// what Envoy's RE2 accepts.
fn template_fits_re2(context: &str, p: &str, field: &str, errs: &mut Errors) {
    let ctx = if context == "/" { "" } else { context };
    for re in [template_regex(&full_path(context, p)), after_context_regex(ctx)] {
        if let Err(e) = super::regex::check(&re) {
            errs.add(
                field,
                format!("Operation path is too complex for Envoy's regex engine: {e}"),
            );
            return;
        }
    }
}

/// What is wrong with a path's `{param}` segments.
#[derive(Debug, thiserror::Error)]
enum ParamError {
    #[error("Operation path has an empty parameter name '{{}}'")]
    Empty,
    #[error("Invalid path parameter name '{0}'")]
    Name(String),
    #[error("Operation path has unbalanced braces in parameters")]
    Unbalanced,
}

/// `{param}` segments: braces balanced and not nested, names non-empty of `[A-Za-z0-9_.-]`.
fn check_params(p: &str) -> Result<(), ParamError> {
    let mut open: Option<usize> = None;
    for (i, c) in p.char_indices() {
        match (c, open) {
            ('{', None) => open = Some(i + 1),
            ('}', Some(start)) => {
                let name = &p[start..i];
                if name.is_empty() {
                    return Err(ParamError::Empty);
                }
                if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(ParamError::Name(name.to_string()));
                }
                open = None;
            }
            ('{', Some(_)) | ('}', None) => {
                return Err(ParamError::Unbalanced);
            }
            _ => {}
        }
    }
    match open {
        Some(_) => Err(ParamError::Unbalanced),
        None => Ok(()),
    }
}

/// Lexical clean like Go's `path.Clean`: collapses `//`, `.` and `..` (never above the root).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn header(h: &HeaderMatchDoc, at: &str, errs: &mut Errors) -> Option<HeaderMatch> {
    let before = errs.0.len();
    let name = present(h.name.as_ref());
    match name {
        None => errs.add(format!("{at}.name"), "Header name is required"),
        Some(n) if !n.chars().all(is_token_char) => {
            errs.add(format!("{at}.name"), format!("Invalid header name '{n}'"))
        }
        Some(_) => {}
    }
    let regex = match h.kind.as_deref() {
        None | Some("Exact") => false,
        Some("RegularExpression") => true,
        Some(other) => {
            let msg = format!("Invalid header match type '{other}' (must be Exact or RegularExpression)");
            errs.add(format!("{at}.type"), msg);
            false
        }
    };
    match &h.value {
        None => errs.add(format!("{at}.value"), "Header value is required"),
        Some(v) if regex && v.is_empty() => errs.add(
            format!("{at}.value"),
            "Invalid regular expression '': empty".to_string(),
        ),
        Some(v) if regex => {
            if let Err(e) = super::regex::check(v) {
                errs.add(format!("{at}.value"), format!("Invalid regular expression '{v}': {e}"))
            }
        }
        Some(_) => {}
    }
    if errs.0.len() > before {
        return None;
    }
    Some(HeaderMatch {
        name: name?.to_ascii_lowercase(),
        value: h.value.clone()?,
        regex,
    })
}

/// RFC 9110 token characters (header field names).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Two operations with the same method, path and header conditions would produce the same route.
fn check_duplicates(ops: &[(usize, Operation)], errs: &mut Errors) {
    let key = |o: &Operation| {
        let mut headers = o.headers.clone();
        headers.sort();
        (o.method, o.path.clone(), headers)
    };
    for (n, (j, op)) in ops.iter().enumerate() {
        let k = key(op);
        if let Some((first, _)) = ops[..n].iter().find(|(_, other)| key(other) == k) {
            let msg = format!(
                "Duplicate operation: {} {} is already declared by spec.operations[{first}]",
                op.method.as_str(),
                op.path
            );
            errs.add(format!("spec.operations[{j}]"), msg);
        }
    }
}
