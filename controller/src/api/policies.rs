//! `/policies`: the policy catalogue documents may name, each policy with its major version and
//! the JSON Schema of its `params`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tollgate_policies::Catalogue;

use super::AppState;

/// The catalogue as JSON: `[{name, version, parameters}]`, sorted by name and version.
pub fn catalogue_json(catalogue: &Catalogue) -> Vec<Value> {
    catalogue
        .policies()
        .map(|p| json!({"name": p.name(), "version": p.version(), "parameters": p.json_schema()}))
        .collect()
}

/// Every policy in the catalogue.
#[utoipa::path(get, path = "/policies", operation_id = "listPolicies", tag = "policies", summary = "List the policy catalogue",
    description = "Roles: admin, developer. Each policy a RestApi may name (`spec.policies[i]` or an operation's \
                   `policies`) with its major version and its `params` as JSON Schema (draft 2020-12). \
                   The server's validation is the authority where the schema is looser (RE2 regexes, byte lengths).",
    responses((status = 200, description = "The catalogue", body = crate::openapi::schemas::PolicyList)))]
pub async fn list(State(s): State<AppState>) -> Response {
    let policies = catalogue_json(s.app.catalogue());
    Json(json!({"status": "success", "count": policies.len(), "policies": policies})).into_response()
}
