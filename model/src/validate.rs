//! Validation of a `RestApi` document and its resolution into an [`Api`](super::Api).
//!
//! Every rule runs even after an earlier one failed, so a client sees all of its mistakes at once; each
//! problem carries the document path of the field at fault (`spec.operations[2].match.path.value`) and,
//! where the reference implementation has one, its exact message.
//!
//! Virtual hosts: [`Api::main_vhosts`](super::Api::main_vhosts) holds the vhost strings of the document
//! (after default/sentinel resolution), never the expanded `domains` lists of the gateway defaults; the
//! translator expands a vhost equal to a default into that default's domains.

mod duration;
mod guard;
mod operation;
mod policy;
pub use tollgate_policies::regex;
mod upstream;
mod url;
mod vhost;

use serde::Serialize;
use tollgate_policies::Catalogue;

use super::document::{Metadata, Spec};
use super::{Api, RestApiDoc};

pub use guard::UpstreamGuard;

/// One problem in a document, with the path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// e.g. `spec.operations[2].match.path.value`.
    pub field: String,
    /// What is wrong, in the reference implementation's words where it has them.
    pub message: String,
}

/// The gateway's virtual-host defaults (config `[router.vhosts]`), and the upstream targets it
/// refuses (carried here because every validation receives these defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VhostDefaults {
    /// Replaces an absent or `_gateway_default_` main vhost.
    pub main: String,
    /// The domains a vhost equal to `main` expands to at translation (empty: just `main`).
    pub main_domains: Vec<String>,
    /// Replaces an absent or `_gateway_default_` sandbox vhost.
    pub sandbox: String,
    /// The domains a vhost equal to `sandbox` expands to at translation (empty: just `sandbox`).
    pub sandbox_domains: Vec<String>,
    /// Upstreams refused as the gateway itself or the host's internal services.
    pub upstreams: UpstreamGuard,
}

/// The configuration file's defaults: `*` for main, `sandbox-*` for sandbox, no expansion, the default
/// ports guarded.
impl Default for VhostDefaults {
    fn default() -> Self {
        VhostDefaults {
            main: "*".into(),
            main_domains: Vec::new(),
            sandbox: "sandbox-*".into(),
            sandbox_domains: Vec::new(),
            upstreams: UpstreamGuard::default(),
        }
    }
}

/// Size limits on documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most operations one API may declare; more is a validation error on `spec.operations`.
    pub max_operations: usize,
}

impl Limits {
    /// The limits [`resolve`] applies: 1000 operations.
    pub const DEFAULT: Limits = Limits { max_operations: 1000 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Validates `doc` and resolves it; every problem is reported with its field path.
pub fn resolve(doc: &RestApiDoc, defaults: &VhostDefaults, catalogue: &Catalogue) -> Result<Api, Vec<FieldError>> {
    resolve_with(doc, defaults, catalogue, Limits::DEFAULT)
}

/// [`resolve`] with explicit size limits.
pub fn resolve_with(
    doc: &RestApiDoc,
    defaults: &VhostDefaults,
    catalogue: &Catalogue,
    limits: Limits,
) -> Result<Api, Vec<FieldError>> {
    let mut errs = Errors::default();
    if doc.kind.as_deref().is_some_and(|k| k != "RestApi") {
        errs.add("kind", "Unsupported kind (must be 'RestApi')");
    }
    let handle = metadata_name(&doc.metadata, &mut errs);
    check_labels(&doc.metadata, &mut errs);
    let spec = &doc.spec;
    let display_name = display_name(spec, &mut errs);
    let version = api_version(spec, &mut errs);
    let context = context(spec, version.as_deref(), &mut errs);
    let (main, sandbox) = upstream::resolve(spec, &defaults.upstreams, &mut errs);
    let vhosts = vhost::resolve(spec, defaults, &mut errs);
    let policies = policy::check_all(&spec.policies, "spec.policies", catalogue, &mut errs);
    let resilience = duration::resilience(spec.resilience.as_ref(), "spec.resilience", &mut errs);
    let scope = operation::Scope {
        context: context.as_deref(),
        resilience,
        catalogue,
        limits,
    };
    let operations = operation::check_all(spec.operations.as_deref(), &scope, &mut errs);
    let deployed = deployment_state(spec, &mut errs);
    check_plans(spec, &mut errs);
    if !errs.0.is_empty() {
        return Err(errs.0);
    }
    // With no error recorded every part resolved; the let-else only guards against a rule that failed
    // without saying why.
    let (
        Some(handle),
        Some(display_name),
        Some(version),
        Some(context),
        Some(main),
        Some((main_vhosts, sandbox_vhost)),
    ) = (handle, display_name, version, context, main, vhosts)
    else {
        return Err(vec![FieldError {
            field: "spec".into(),
            message: "Document could not be resolved".into(),
        }]);
    };
    let sandbox_vhost = sandbox.as_ref().and(sandbox_vhost);
    Ok(Api {
        handle,
        display_name,
        version,
        context,
        deployed,
        main_vhosts,
        sandbox_vhost,
        main,
        sandbox,
        policies,
        resilience,
        operations,
    })
}

/// Writes the resolved vhost strings into `doc`, as they are persisted: an absent or `_gateway_default_`
/// main vhost becomes `defaults.main`; the sandbox vhost likewise becomes `defaults.sandbox`, but only when
/// the API has a sandbox upstream (otherwise it is left as written).
pub fn fill_vhosts(doc: &mut RestApiDoc, defaults: &VhostDefaults) {
    vhost::fill(doc, defaults);
}

/// Collects field errors while validation goes on.
#[derive(Debug, Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
}

/// A required string: absent, empty and all-whitespace are the same "missing".
fn present(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str).filter(|s| !s.trim().is_empty())
}

fn metadata_name(meta: &Metadata, errs: &mut Errors) -> Option<String> {
    let Some(name) = present(meta.name.as_ref()) else {
        errs.add("metadata.name", "Metadata name is required");
        return None;
    };
    // The handle is a URL path segment of the management API, hence no `/`; `}` and controls would break
    // the routing templates that embed it.
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '}')
    {
        errs.add(
            "metadata.name",
            "Metadata name must not contain whitespace, '/', '}' or control characters",
        );
        return None;
    }
    Some(name.to_string())
}

fn check_labels(meta: &Metadata, errs: &mut Errors) {
    for key in meta.labels.keys() {
        if key.is_empty() {
            errs.add("metadata.labels", "Label key must not be empty");
        } else if key.chars().any(char::is_whitespace) {
            let msg =
                format!("Label key '{key}' contains whitespace characters. Label keys must not contain whitespace");
            errs.add("metadata.labels", msg);
        }
    }
}

const DISPLAY_NAME_CHARS: &str = concat!(
    "API display name must be URL-friendly ",
    "(only letters, numbers, spaces, hyphens, underscores, and dots are allowed)"
);

fn display_name(spec: &Spec, errs: &mut Errors) -> Option<String> {
    const FIELD: &str = "spec.displayName";
    let Some(name) = present(spec.display_name.as_ref()) else {
        errs.add(FIELD, "API display name is required");
        return None;
    };
    if name.chars().count() > 100 {
        errs.add(FIELD, "API display name must be 1-100 characters");
        return None;
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
    {
        errs.add(FIELD, DISPLAY_NAME_CHARS);
        return None;
    }
    Some(name.to_string())
}

fn api_version(spec: &Spec, errs: &mut Errors) -> Option<String> {
    let Some(version) = present(spec.version.as_ref()) else {
        errs.add("spec.version", "API version is required");
        return None;
    };
    if !is_api_version(version) {
        errs.add(
            "spec.version",
            "API version must follow semantic versioning pattern (e.g., v1.0, v2.1.3)",
        );
        return None;
    }
    Some(version.to_string())
}

/// `^v?\d+(\.\d+)?(\.\d+)?$`.
fn is_api_version(v: &str) -> bool {
    let digits = v.strip_prefix('v').unwrap_or(v);
    let parts: Vec<&str> = digits.split('.').collect();
    parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks `spec.context` and returns it with `$version` substituted (when the version is valid).
fn context(spec: &Spec, version: Option<&str>, errs: &mut Errors) -> Option<String> {
    const FIELD: &str = "spec.context";
    let Some(ctx) = present(spec.context.as_ref()) else {
        errs.add(FIELD, "Context is required");
        return None;
    };
    let before = errs.0.len();
    if !ctx.starts_with('/') {
        errs.add(FIELD, "Context must start with /");
    }
    if ctx.len() > 1 && ctx.ends_with('/') {
        errs.add(FIELD, "Context cannot end with / (except for root context)");
    }
    if ctx.chars().count() > 200 {
        errs.add(FIELD, "Context must be 1-200 characters");
    }
    // Not in the reference's rules, but such a context could never be matched by a route: Envoy matches the
    // path without query or fragment, and braces would be read as path parameters.
    if ctx
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '{' | '}'))
    {
        errs.add(FIELD, "Context must not contain whitespace, '?', '#', '{' or '}'");
    }
    if errs.0.len() > before {
        return None;
    }
    version.map(|v| ctx.replace("$version", v))
}

fn deployment_state(spec: &Spec, errs: &mut Errors) -> bool {
    match spec.deployment_state.as_deref() {
        None | Some("deployed") => true,
        Some("undeployed") => false,
        Some(other) => {
            let msg = format!("Invalid deployment state '{other}' (must be 'deployed' or 'undeployed')");
            errs.add("spec.deploymentState", msg);
            true
        }
    }
}

fn check_plans(spec: &Spec, errs: &mut Errors) {
    for (i, plan) in spec.subscription_plans.iter().enumerate() {
        if plan.trim().is_empty() {
            errs.add(
                format!("spec.subscriptionPlans[{i}]"),
                "Subscription plan name must not be empty",
            );
        }
    }
}

#[cfg(test)]
mod tests;
