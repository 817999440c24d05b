//! Schemas of the bodies the management and admin APIs read and write, for the OpenAPI document
//! only. The handlers read their bodies from `serde_json::Value` field by field (so that every
//! problem is reported with its field); these types describe those fields without being used to
//! parse anything. Unknown fields are ignored by the server, so no schema closes its properties.

#![allow(dead_code)]

use serde_json::Value;
use utoipa::ToSchema;

// === errors ===

/// One problem with one field of a request body.
#[derive(Debug, ToSchema)]
pub struct FieldError {
    /// The field, as a dotted path (`spec.operations[0].path`); empty for the body as a whole.
    pub field: String,
    pub message: String,
}

/// Every refusal except authentication's: `400` (with `errors` when fields are at fault), `404`,
/// `409`, `413`, `500`.
#[derive(Debug, ToSchema)]
pub struct ErrorBody {
    /// Always `error`.
    #[schema(example = "error")]
    pub status: String,
    pub message: String,
    /// Present on validation failures: one entry per field at fault.
    pub errors: Option<Vec<FieldError>>,
}

/// A refusal by authentication or authorization (`401`, `403`, `429`).
#[derive(Debug, ToSchema)]
pub struct DeniedBody {
    #[schema(example = "unauthenticated")]
    pub code: DeniedCode,
    pub message: String,
}

/// Why a call was refused before it reached its handler.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DeniedCode {
    /// No credentials (401).
    Unauthenticated,
    /// Wrong user or password (401).
    AuthenticationFailed,
    /// The user's roles do not include one this route allows (403).
    Forbidden,
    /// Too many failed logins from this address or for this user (429, with `Retry-After`).
    TooManyFailedLogins,
}

/// `{"status": "success", "message": ...}`.
#[derive(Debug, ToSchema)]
pub struct Done {
    #[schema(example = "success")]
    pub status: String,
    pub message: String,
}

// === RestApi documents ===

/// A RestApi document (`gateway.api-platform.wso2.com/v1`), as JSON or YAML. The main fields are
/// described; the translator checks the rest and answers `400` with each problem's field.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestApi {
    #[schema(example = "gateway.api-platform.wso2.com/v1")]
    pub api_version: String,
    #[schema(example = "RestApi")]
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
    /// Server-managed, in answers only (ignored in requests).
    #[schema(read_only)]
    pub status: Option<RestApiStatus>,
}

/// The document's name (its handle in every `{handle}` path).
#[derive(Debug, ToSchema)]
pub struct Metadata {
    #[schema(example = "files-v1")]
    pub name: String,
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// What the API serves and where it sends requests.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub display_name: String,
    pub version: String,
    /// The base path; `$version` is replaced by `version`.
    #[schema(example = "/files/$version")]
    pub context: String,
    pub upstream: Option<Upstreams>,
    /// Named upstream groups (weighted URLs, timeouts) that `upstream.*.ref` names.
    pub upstream_definitions: Option<Vec<Value>>,
    pub vhosts: Option<Vhosts>,
    /// Subscription plan names this API offers.
    pub subscription_plans: Option<Vec<String>>,
    /// API-level policies, applied to every operation.
    pub policies: Option<Vec<PolicyRef>>,
    /// Timeouts and retries.
    pub resilience: Option<Value>,
    pub operations: Vec<Operation>,
    /// `deployed` (default) or `undeployed`.
    pub deployment_state: Option<String>,
}

/// The production (`main`) and `sandbox` upstreams.
#[derive(Debug, ToSchema)]
pub struct Upstreams {
    pub main: Option<Upstream>,
    pub sandbox: Option<Upstream>,
}

/// One upstream: a URL, or a reference to an `upstreamDefinitions` entry.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Upstream {
    #[schema(example = "http://127.0.0.1:9000")]
    pub url: Option<String>,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// `auto` (default) or `manual`.
    pub host_rewrite: Option<String>,
}

/// Virtual hosts for the production and sandbox routes.
#[derive(Debug, ToSchema)]
pub struct Vhosts {
    pub main: Option<String>,
    pub sandbox: Option<String>,
}

/// A policy by name and version, with its parameters.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    #[schema(example = "api-key-auth")]
    pub name: String,
    #[schema(example = "v1")]
    pub version: String,
    pub execution_condition: Option<String>,
    pub params: Option<Value>,
}

/// One operation: a method and a path (or a `match` block), with its own policies.
#[derive(Debug, ToSchema)]
pub struct Operation {
    #[schema(example = "GET")]
    pub method: Option<String>,
    #[schema(example = "/*")]
    pub path: Option<String>,
    /// Method, path (`Exact` or `PathPrefix`) and header matches, instead of `method`/`path`.
    #[serde(rename = "match")]
    pub matches: Option<Value>,
    pub policies: Option<Vec<PolicyRef>>,
    pub resilience: Option<Value>,
}

/// Where the API stands, as the server keeps it.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestApiStatus {
    /// The handle (`metadata.name`).
    pub id: String,
    /// What subscriptions and the control plane name the API by (`apiId`).
    pub uuid: String,
    /// `pending`, `deployed`, `failed` or `undeployed`.
    pub state: String,
    /// Why Envoy refused it, when `failed`.
    pub message: Option<String>,
    /// `gateway_api` or `control_plane`.
    pub origin: String,
    pub created_at: String,
    pub updated_at: String,
    pub deployed_at: Option<String>,
    /// The store generation that carries a write (in write answers; also `x-tollgate-generation`).
    pub generation: Option<u64>,
}

/// `GET /rest-apis`.
#[derive(Debug, ToSchema)]
pub struct RestApiList {
    #[schema(example = "success")]
    pub status: String,
    pub count: usize,
    pub apis: Vec<RestApi>,
}

/// `DELETE /rest-apis/{handle}`.
#[derive(Debug, ToSchema)]
pub struct RestApiDeleted {
    #[schema(example = "success")]
    pub status: String,
    pub message: String,
    pub id: String,
    pub generation: u64,
}

/// How to call an API with the credential just issued (shown once, with the credential).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    pub gateway_type: String,
    pub api_name: String,
    pub api_version: String,
    /// `api-key` or `subscription`.
    pub credential_type: String,
    pub credential_header_name: String,
    pub credential_query_param: Option<String>,
    pub credential_value: Option<String>,
    pub base_url: String,
    pub base_path: String,
    pub full_url: String,
    pub environment: String,
    pub curl_example: String,
    /// Set when no policy of the API checks this credential yet.
    pub note: Option<String>,
}

/// `GET /policies`.
#[derive(Debug, ToSchema)]
pub struct PolicyList {
    #[schema(example = "success")]
    pub status: String,
    pub count: usize,
    pub policies: Vec<PolicyEntry>,
}

/// One policy of the catalogue.
#[derive(Debug, ToSchema)]
pub struct PolicyEntry {
    #[schema(example = "cors")]
    pub name: String,
    /// The major version documents name.
    #[schema(example = "v1")]
    pub version: String,
    /// The JSON Schema (draft 2020-12) of the policy's `params`.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
}
