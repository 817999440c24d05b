//! Schemas of the secret bodies (documentation only: the handlers read these fields from
//! `serde_json::Value`, in `secrets/doc.rs`).

#![allow(dead_code)]

use utoipa::ToSchema;

/// `metadata` of a secret: its id.
#[derive(Debug, ToSchema)]
pub struct SecretMetadata {
    /// The id `{{ secret "id" }}` names.
    #[schema(
        example = "backend-token",
        pattern = "^[a-zA-Z0-9._-]+$",
        min_length = 1,
        max_length = 255
    )]
    pub name: String,
}

/// `spec` of a secret in a request.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpecIn {
    #[schema(
        example = "Backend token",
        pattern = "^[a-zA-Z0-9\\-_. ]+$",
        min_length = 1,
        max_length = 253
    )]
    pub display_name: String,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// Stored encrypted; never answered except by `GET /secrets/{id}`. At most 10 KiB.
    #[schema(min_length = 1, max_length = 10240)]
    pub value: String,
}

/// `POST /secrets`, `PUT /secrets/{id}`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretIn {
    #[schema(example = "gateway.api-platform.wso2.com/v1")]
    pub api_version: String,
    #[schema(example = "Secret")]
    pub kind: String,
    pub metadata: SecretMetadata,
    pub spec: SecretSpecIn,
}

/// `spec` of a secret as answered (the value only from `GET /secrets/{id}`).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpecOut {
    pub display_name: String,
    pub description: Option<String>,
    pub value: Option<String>,
}

/// `status` of a secret.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStatus {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    /// `PUT` only: the deployed APIs redeployed with the new value.
    pub redeployed: Option<Vec<String>>,
}

/// A secret as answered.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretOut {
    pub api_version: String,
    pub kind: String,
    pub metadata: SecretMetadata,
    pub spec: SecretSpecOut,
    pub status: SecretStatus,
}

/// `GET /secrets`: metadata only.
#[derive(Debug, ToSchema)]
pub struct SecretList {
    #[schema(example = "success")]
    pub status: String,
    pub count: usize,
    pub secrets: Vec<SecretOut>,
}
