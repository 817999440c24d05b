//! Virtual hosts: the `_gateway_default_` sentinel, gateway defaults, and the `;`-separated main list.

use super::{Errors, VhostDefaults};
use crate::RestApiDoc;
use crate::document::{Spec, Vhosts};

/// Stands for the gateway's configured default vhost.
pub(super) const SENTINEL: &str = "_gateway_default_";

/// The main vhost string in effect: absent, blank or the sentinel mean the default; a sentinel inside a
/// `;` list is replaced in place.
fn effective_main(value: Option<&str>, defaults: &VhostDefaults) -> String {
    match value.map(str::trim) {
        None | Some("") | Some(SENTINEL) => defaults.main.clone(),
        Some(v) => v
            .split(';')
            .map(|h| {
                if h.trim() == SENTINEL {
                    defaults.main.as_str()
                } else {
                    h
                }
            })
            .collect::<Vec<_>>()
            .join(";"),
    }
}

/// The sandbox vhost string in effect.
fn effective_sandbox(value: Option<&str>, defaults: &VhostDefaults) -> String {
    match value.map(str::trim) {
        None | Some("") | Some(SENTINEL) => defaults.sandbox.clone(),
        Some(v) => v.to_string(),
    }
}

fn has_sandbox(spec: &Spec) -> bool {
    spec.upstream.as_ref().is_some_and(|u| u.sandbox.is_some())
}

/// Writes the effective vhost strings back into the document (see [`super::fill_vhosts`]).
pub(super) fn fill(doc: &mut RestApiDoc, defaults: &VhostDefaults) {
    let sandbox_upstream = has_sandbox(&doc.spec);
    let vhosts = doc.spec.vhosts.get_or_insert_with(Vhosts::default);
    vhosts.main = Some(effective_main(vhosts.main.as_deref(), defaults));
    if sandbox_upstream {
        vhosts.sandbox = Some(effective_sandbox(vhosts.sandbox.as_deref(), defaults));
    }
}

/// Checks the vhosts; returns the main list and, when the API has a sandbox upstream, the sandbox vhost.
pub(super) fn resolve(
    spec: &Spec,
    defaults: &VhostDefaults,
    errs: &mut Errors,
) -> Option<(Vec<String>, Option<String>)> {
    const MAIN: &str = "spec.vhosts.main";
    let given = spec.vhosts.as_ref();
    let main_str = effective_main(given.and_then(|v| v.main.as_deref()), defaults);
    // Empty entries (`a;;b`, a trailing `;`) are tolerated and dropped. Domains are case-insensitive,
    // and Envoy refuses two that differ only in case, so they are compared (and kept) in lower case.
    let main: Vec<String> = main_str
        .split(';')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let before = errs.0.len();
    if main.is_empty() {
        errs.add(MAIN, "At least one virtual host is required");
    }
    for (i, host) in main.iter().enumerate() {
        if !valid_host(host) {
            errs.add(MAIN, format!("Invalid virtual host '{host}'"));
        } else if main[..i].contains(host) {
            // Envoy refuses a route configuration that lists a domain twice.
            errs.add(MAIN, format!("Duplicate virtual host '{host}'"));
        }
    }
    let sandbox = if has_sandbox(spec) {
        sandbox(given, defaults, &main, errs)
    } else {
        None
    };
    (errs.0.len() == before).then_some((main, sandbox))
}

fn sandbox(given: Option<&Vhosts>, defaults: &VhostDefaults, main: &[String], errs: &mut Errors) -> Option<String> {
    const FIELD: &str = "spec.vhosts.sandbox";
    let host = effective_sandbox(given.and_then(|v| v.sandbox.as_deref()), defaults).to_ascii_lowercase();
    if host.contains(';') {
        errs.add(FIELD, "Sandbox virtual host must be a single hostname");
    } else if !valid_host(&host) {
        errs.add(FIELD, format!("Invalid virtual host '{host}'"));
    } else if main.contains(&host) {
        errs.add(
            FIELD,
            format!("Sandbox virtual host '{host}' must differ from the main virtual hosts"),
        );
    } else {
        return Some(host);
    }
    None
}

/// An Envoy domain: hostname characters, an optional `:port`, and at most one `*` at either end
/// (`*.example.com`, `sandbox-*`, or `*` alone).
fn valid_host(host: &str) -> bool {
    let chars_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '*'));
    let stars = host.matches('*').count();
    let star_ok = stars == 0 || (stars == 1 && (host.starts_with('*') || host.ends_with('*')));
    !host.is_empty() && chars_ok && star_ok
}
