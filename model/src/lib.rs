//! The API model: the WSO2-compatible `RestApi` document as posted (`document`), and the resolved,
//! validated form the translator works from ([`Api`]).
//!
//! No I/O and no protobuf: the crate cannot depend on prost or Envoy's types, so the wire form never
//! leaks into the domain model. Translation to Envoy resources lives in `tollgate-translate`.

pub mod document;
pub mod overlap;
pub mod parse;
pub mod path;
pub mod validate;

use std::time::Duration;

pub use document::RestApiDoc;
pub use validate::{FieldError, Limits, UpstreamGuard, VhostDefaults, resolve};

/// An HTTP method an operation may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
}

/// A validated, resolved API: what translation needs and nothing else.
#[derive(Clone, Debug, PartialEq)]
pub struct Api {
    /// `metadata.name`.
    pub handle: String,
    pub display_name: String,
    pub version: String,
    /// The context with `$version` substituted.
    pub context: String,
    /// Whether the API is served (`spec.deploymentState` is not `undeployed`).
    pub deployed: bool,
    /// Main virtual hosts (first is primary), after default/sentinel resolution.
    pub main_vhosts: Vec<String>,
    /// The sandbox virtual host, when the API has a sandbox upstream.
    pub sandbox_vhost: Option<String>,
    pub main: Upstream,
    pub sandbox: Option<Upstream>,
    /// API-level policies, applied to every operation before its own.
    pub policies: Vec<PolicyRef>,
    pub resilience: Resilience,
    pub operations: Vec<Operation>,
}

/// Where an API's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// `http` or `https`.
    pub tls: bool,
    /// Hostname or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Prepended to the operation path; empty for `/`.
    pub base_path: String,
    /// `hostRewrite: manual` passes the client's Host through.
    pub host_rewrite: bool,
    /// Connect timeout from `upstreamDefinitions[].timeout.connect`, if any.
    pub connect_timeout: Option<Duration>,
}

/// Route timeouts; `None` means the gateway default, `Some(ZERO)` disables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resilience {
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
}

/// A policy attached to an API or an operation.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyRef {
    pub name: String,
    /// Major version, e.g. `v1`.
    pub version: String,
    pub params: serde_json::Value,
}

/// How an operation's path is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// Simple form: literal (optional trailing slash), `{param}`, `/*` or `/`.
    Template,
    /// Match form with `type: Exact`: exactly this path.
    Exact,
}

/// A header condition of a match-form operation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeaderMatch {
    /// Lower-cased.
    pub name: String,
    pub value: String,
    pub regex: bool,
}

/// One operation of an API.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub method: Method,
    /// The operation path as written (starts with `/`).
    pub path: String,
    pub kind: PathKind,
    pub headers: Vec<HeaderMatch>,
    /// Operation-level values override API-level ones per field.
    pub resilience: Resilience,
    pub policies: Vec<PolicyRef>,
}

// === impl Method ===

impl Method {
    /// Parses an upper-case method name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

// === impl Api ===

impl Api {
    /// Policies in effect for operation `i`: API-level first, then the operation's own.
    pub fn policies_of(&self, i: usize) -> impl Iterator<Item = &PolicyRef> {
        self.policies
            .iter()
            .chain(self.operations.get(i).into_iter().flat_map(|o| o.policies.iter()))
    }
}
