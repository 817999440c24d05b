//! Policy references (`{name, version, params}`) checked against the policy catalogue.

use serde_json::{Map, Value};
use tollgate_policies::Catalogue;

use super::{Errors, present};
use crate::PolicyRef;
use crate::document::Policy;

/// Checks the policies listed at `prefix` (e.g. `spec.policies`); returns the valid ones in order.
pub(super) fn check_all(list: &[Policy], prefix: &str, catalogue: &Catalogue, errs: &mut Errors) -> Vec<PolicyRef> {
    list.iter()
        .enumerate()
        .filter_map(|(i, p)| check(p, &format!("{prefix}[{i}]"), catalogue, errs))
        .collect()
}

/// One policy. An unknown name and an unknown version are both reported on `.version` with the same
/// message, as the reference implementation does (its tests look for `spec.policies[0].version` when the
/// name does not exist).
fn check(p: &Policy, at: &str, catalogue: &Catalogue, errs: &mut Errors) -> Option<PolicyRef> {
    let name = present(p.name.as_ref());
    let version = present(p.version.as_ref());
    if name.is_none() {
        errs.add(format!("{at}.name"), "Policy name is required");
    }
    let Some(version) = version else {
        errs.add(format!("{at}.version"), "Policy version is required");
        return None;
    };
    if !is_major(version) {
        let msg = format!("Policy version '{version}' must be a major version only (e.g., v1)");
        errs.add(format!("{at}.version"), msg);
        return None;
    }
    let name = name?;
    let Ok(def) = catalogue.lookup(name, version) else {
        let msg = format!("Policy '{name}' version '{version}' not found in loaded policy definitions");
        errs.add(format!("{at}.version"), msg);
        return None;
    };
    let problems = def.validate_params(p.params.as_ref());
    if !problems.is_empty() {
        for e in problems {
            let field = if e.path.is_empty() {
                format!("{at}.params")
            } else {
                format!("{at}.params.{}", e.path)
            };
            errs.add(field, e.message);
        }
        return None;
    }
    if let Some(params) = &p.params {
        // The catalogue holds no regex engine: it names its RE2 values, judged here as Envoy would.
        let bad: Vec<_> = def
            .regexes(params)
            .into_iter()
            .filter_map(|(path, re)| super::regex::check(re).err().map(|e| (path, re, e)))
            .collect();
        for (path, re, e) in &bad {
            errs.add(
                format!("{at}.params.{path}"),
                format!("Invalid regular expression '{re}': {e}"),
            );
        }
        if !bad.is_empty() {
            return None;
        }
        if let Some(msg) = missing_group(params) {
            let field = format!("{at}.params.pathRewrite.replaceRegexMatch.substitution");
            errs.add(field, msg);
            return None;
        }
    }
    let params = match &p.params {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v) => v.clone(),
    };
    Some(PolicyRef {
        name: name.to_string(),
        version: version.to_string(),
        params,
    })
}

/// A `request-rewrite` substitution naming a group its pattern lacks: Envoy takes the configuration but
/// then never rewrites, so it is refused here.
fn missing_group(params: &Value) -> Option<String> {
    let rw = params.pointer("/pathRewrite/replaceRegexMatch")?;
    let pattern = rw.get("pattern")?.as_str()?;
    let groups = regex_syntax::Parser::new()
        .parse(pattern)
        .ok()?
        .properties()
        .explicit_captures_len();
    let mut bytes = rw.get("substitution")?.as_str()?.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\'
            && let Some(d @ b'0'..=b'9') = bytes.next()
            && usize::from(d - b'0') > groups
        {
            return Some(format!("Group \\{} is not in the pattern (it has {groups})", d - b'0'));
        }
    }
    None
}

/// `^v\d+$`: a major version such as `v1`.
fn is_major(v: &str) -> bool {
    v.strip_prefix('v')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}
