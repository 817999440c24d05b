//! `spec.upstream` (main and sandbox targets) and the `spec.upstreamDefinitions` they may refer to.

use std::collections::BTreeMap;
use std::time::Duration;

use super::url::{self, Url};
use super::{Errors, UpstreamGuard, duration, present};
use crate::Upstream;
use crate::document::{Spec, UpstreamDefinition, UpstreamTarget, WeightedUrl};

/// What a `ref` to a definition resolves to: its first upstream, base path and connect timeout.
#[derive(Clone, Debug)]
struct Target {
    url: Url,
    base_path: String,
    connect_timeout: Option<Duration>,
}

/// Definitions by name; `None` for a definition that is itself invalid (already reported), so that a
/// `ref` to it is neither resolved nor reported a second time as "not found".
type Definitions = BTreeMap<String, Option<Target>>;

/// Checks the definitions and both targets; returns the resolved (main, sandbox) upstreams.
pub(super) fn resolve(spec: &Spec, guard: &UpstreamGuard, errs: &mut Errors) -> (Option<Upstream>, Option<Upstream>) {
    let defs = definitions(&spec.upstream_definitions, guard, errs);
    let (main, sandbox) = match &spec.upstream {
        Some(u) => (u.main.as_ref(), u.sandbox.as_ref()),
        None => (None, None),
    };
    let main = match main {
        Some(t) => target(t, "spec.upstream.main", &defs, guard, errs),
        None => {
            errs.add("spec.upstream.main", "Main upstream is required");
            None
        }
    };
    let sandbox = sandbox.and_then(|t| target(t, "spec.upstream.sandbox", &defs, guard, errs));
    (main, sandbox)
}

fn target(
    t: &UpstreamTarget,
    at: &str,
    defs: &Definitions,
    guard: &UpstreamGuard,
    errs: &mut Errors,
) -> Option<Upstream> {
    let host_rewrite = match t.host_rewrite.as_deref() {
        None | Some("auto") => Some(true),
        Some("manual") => Some(false),
        Some(other) => {
            errs.add(
                format!("{at}.hostRewrite"),
                format!("Invalid hostRewrite '{other}' (must be 'auto' or 'manual')"),
            );
            None
        }
    };
    let resolved = match (present(t.url.as_ref()), present(t.reference.as_ref())) {
        (Some(_), Some(_)) => {
            errs.add(at, "Specify exactly one of 'url' or 'ref'");
            None
        }
        (None, None) => {
            errs.add(at, "Must specify either 'url' or 'ref'");
            None
        }
        (Some(u), None) => direct(u, &format!("{at}.url"), guard, errs),
        (None, Some(name)) => match defs.get(name) {
            Some(target) => target.clone(),
            None => {
                let msg = format!("Referenced upstream definition '{name}' not found in spec.upstreamDefinitions");
                errs.add(format!("{at}.ref"), msg);
                None
            }
        },
    }?;
    let Target {
        url,
        base_path,
        connect_timeout,
    } = resolved;
    Some(Upstream {
        tls: url.tls,
        host: url.host,
        port: url.port,
        base_path,
        host_rewrite: host_rewrite?,
        connect_timeout,
    })
}

/// A direct `url`: its path is the base path (trailing slashes trimmed, so `/` becomes empty).
fn direct(raw: &str, field: &str, guard: &UpstreamGuard, errs: &mut Errors) -> Option<Target> {
    let url = match url::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            errs.add(field, e.message());
            return None;
        }
    };
    if let Some(why) = guard.refusal(&url.host, url.port) {
        errs.add(field, why);
        return None;
    }
    if url.query {
        errs.add(
            field,
            "Upstream URL must not include a query string; only scheme, host[:port] and path are used",
        );
    }
    if url.fragment {
        errs.add(
            field,
            "Upstream URL must not include a fragment; only scheme, host[:port] and path are used",
        );
    }
    if url.query || url.fragment {
        return None;
    }
    let base_path = url.path.trim_end_matches('/').to_string();
    Some(Target {
        url,
        base_path,
        connect_timeout: None,
    })
}

fn definitions(list: &[UpstreamDefinition], guard: &UpstreamGuard, errs: &mut Errors) -> Definitions {
    let mut defs = Definitions::new();
    for (i, d) in list.iter().enumerate() {
        let at = format!("spec.upstreamDefinitions[{i}]");
        let name = definition_name(d.name.as_ref(), &at, errs);
        let target = definition(d, &at, guard, errs);
        match name {
            Some(n) if defs.contains_key(&n) => {
                errs.add(
                    format!("{at}.name"),
                    format!("Duplicate upstream definition name '{n}'"),
                );
            }
            Some(n) => {
                defs.insert(n, target);
            }
            None => {}
        }
    }
    defs
}

fn definition_name(name: Option<&String>, at: &str, errs: &mut Errors) -> Option<String> {
    let field = format!("{at}.name");
    let Some(name) = present(name) else {
        errs.add(field, "Upstream definition name is required");
        return None;
    };
    if name.chars().count() > 100 {
        errs.add(field, "Upstream definition name must be 1-100 characters");
        return None;
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        errs.add(
            field,
            "Upstream definition name must contain only letters, numbers, hyphens and underscores",
        );
        return None;
    }
    Some(name.to_string())
}

/// Checks one definition; its resolved target when it is entirely valid.
fn definition(d: &UpstreamDefinition, at: &str, guard: &UpstreamGuard, errs: &mut Errors) -> Option<Target> {
    let before = errs.0.len();
    // An empty basePath is read as "omitted", i.e. the root.
    let base_path = d.base_path.as_deref().unwrap_or_default();
    let base_ok =
        base_path.is_empty() || (base_path.len() > 1 && base_path.starts_with('/') && !base_path.ends_with('/'));
    if !base_ok {
        errs.add(
            format!("{at}.basePath"),
            "Base path must start with / and must not end with / (omit it for the root)",
        );
    }
    let connect = d.timeout.as_ref().and_then(|t| t.connect.as_ref());
    let connect_timeout = connect.and_then(|c| {
        let parsed = duration::parse(c).filter(|d| !d.is_zero());
        if parsed.is_none() {
            let msg = format!(
                "Invalid connect timeout '{c}' (must be a positive duration with one unit of ms, s, m or h, e.g. 5s)"
            );
            errs.add(format!("{at}.timeout.connect"), msg);
        }
        parsed
    });
    if d.upstreams.is_empty() {
        errs.add(format!("{at}.upstreams"), "At least one upstream is required");
    }
    let urls: Vec<Option<Url>> = d
        .upstreams
        .iter()
        .enumerate()
        .map(|(j, u)| weighted(u, &format!("{at}.upstreams[{j}]"), guard, errs))
        .collect();
    if errs.0.len() > before {
        return None;
    }
    let url = urls.into_iter().next().flatten()?;
    Some(Target {
        url,
        base_path: base_path.to_string(),
        connect_timeout,
    })
}

/// One `upstreams[]` entry of a definition: host[:port] only, and a weight of 0-100.
fn weighted(u: &WeightedUrl, at: &str, guard: &UpstreamGuard, errs: &mut Errors) -> Option<Url> {
    if u.weight.is_some_and(|w| !(0..=100).contains(&w)) {
        errs.add(format!("{at}.weight"), "Weight must be between 0 and 100");
    }
    let field = format!("{at}.url");
    let Some(raw) = present(u.url.as_ref()) else {
        errs.add(field, "Upstream URL is required");
        return None;
    };
    let url = match url::parse(raw) {
        Ok(url) => url,
        Err(e) => {
            errs.add(field, e.message());
            return None;
        }
    };
    if let Some(why) = guard.refusal(&url.host, url.port) {
        errs.add(&field, why);
    }
    // `http://host/` carries no real path; anything longer must move to basePath.
    if !url.path.is_empty() && url.path != "/" {
        errs.add(
            &field,
            "URL must not include a path; set the base path in upstreamDefinitions[].basePath instead",
        );
    }
    if url.query {
        errs.add(&field, "URL must not include a query string; only host[:port] is used");
    }
    if url.fragment {
        errs.add(&field, "URL must not include a fragment; only host[:port] is used");
    }
    Some(url)
}
