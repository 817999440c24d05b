//! Schemas of the admin API's answers (documentation only: the handlers build them with `json!`).
//! The views of the store and of each Envoy are described by their main fields.

#![allow(dead_code)]

use serde_json::Value;
use utoipa::ToSchema;

/// `GET /health`.
#[derive(Debug, ToSchema)]
pub struct Health {
    #[schema(example = "healthy")]
    pub status: String,
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// `GET /ready`: `ready` (200), or `not ready` (503) with each reason.
#[derive(Debug, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: String,
    /// Present when not ready, e.g. `database: not answering`.
    pub reasons: Option<Vec<String>>,
}

/// `GET /config_dump`: the stored APIs and policies, and the xDS resources per type (no secrets).
#[derive(Debug, ToSchema)]
pub struct ConfigDump {
    #[schema(example = "success")]
    pub status: String,
    pub timestamp: String,
    /// `{id, configuration, metadata: {status, message, origin, createdAt, updatedAt, deployedAt}}`.
    pub apis: Vec<Value>,
    /// The loaded catalogue: `{name, version, parameters}` of every policy, `parameters` the JSON
    /// Schema of its `params` (as `GET /policies`).
    pub policies: Vec<crate::openapi::schemas::PolicyEntry>,
    pub certificates: Vec<Value>,
    /// `totalApis`, `totalPolicies`, `totalCertificates`, `totalCertificateBytes`.
    pub statistics: Value,
    /// `{generation, resources: {<type>: count}}`.
    pub xds: Value,
}

/// `GET /xds_sync_status`: per connected Envoy and resource type, the ACKed version and generation,
/// what is pending and the last NACK.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct XdsSyncStatus {
    #[schema(example = "tollgate")]
    pub component: String,
    pub timestamp: String,
    /// The store generation; an Envoy is in sync when every type has ACKed it.
    pub generation: u64,
    /// `{streamId, nodeId, cluster, group, flavour, connectedAt, types: {<type>: {active,
    /// ackedVersion, ackedGeneration, pending, lastNack, resources}}}`.
    pub nodes: Vec<Value>,
    /// `{id, message}` of each API an Envoy refused.
    pub failed_apis: Vec<Value>,
}

/// `GET /control_plane`: the platform link and what it stored.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlane {
    #[schema(example = "success")]
    pub status: String,
    /// State, gateway id, why it stopped (if it did), event counters, last sync.
    pub control_plane: Value,
    /// Counts: `subscriptions`, `subscriptionPlans`, `applications`, `revokedKeys`.
    pub stored: Value,
}
