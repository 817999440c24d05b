//! Schemas of the API key, subscription plan and subscription bodies (documentation only: the
//! handlers read these fields from `serde_json::Value`, in `api/api_keys.rs` and `subs/*.rs`).
//! Enumerated strings are compared without case by the server; the schemas list the spellings
//! it answers with.

#![allow(dead_code)]

use utoipa::ToSchema;

use super::schemas::Invocation;

// === API keys ===

/// A key's lifetime from now.
#[derive(Debug, ToSchema)]
pub struct ExpiresIn {
    /// Default `days`.
    pub unit: Option<ExpiryUnit>,
    /// At most ten years in all.
    #[schema(minimum = 1)]
    pub duration: u64,
}

/// The unit of [`ExpiresIn::duration`].
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExpiryUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
}

/// `POST /rest-apis/{handle}/api-keys`; an empty body is `{}` (a generated key with a generated
/// name).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyCreate {
    /// Unique per API; generated when absent.
    #[schema(example = "my-key")]
    pub name: Option<String>,
    /// Register this value instead of generating one.
    pub api_key: Option<String>,
    pub expires_in: Option<ExpiresIn>,
    /// RFC 3339; wins over `expiresIn`.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub application_id: Option<String>,
    pub application_name: Option<String>,
    pub subscription_plan: Option<String>,
}

/// `POST /rest-apis/{handle}/api-keys/{name}/regenerate`; the body is optional.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRegenerate {
    pub expires_in: Option<ExpiresIn>,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// How long the old value keeps working, e.g. `1h`; at most 30 days.
    #[schema(example = "1h")]
    pub grace_period: Option<String>,
}

/// `PUT /rest-apis/{handle}/api-keys/{name}`: a new value for an existing key.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyReplace {
    pub api_key: String,
}

/// A key as the API answers it: masked, except in the one answer that issues it.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub name: String,
    /// The plaintext in the answer that issues it; the masked value otherwise.
    pub api_key: String,
    pub masked_api_key: String,
    pub api_id: String,
    pub status: String,
    pub created_at: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub source: String,
    pub origin: String,
    pub application_id: Option<String>,
    pub application_name: Option<String>,
    pub subscription_plan: Option<String>,
}

/// A key created or regenerated: its value, shown this once, and how to call the API with it.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyIssued {
    #[schema(example = "success")]
    pub status: String,
    pub message: String,
    pub remaining_api_key_quota: Option<i64>,
    pub api_key: ApiKey,
    pub invocation: Invocation,
}

/// A key whose value was replaced.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyUpdated {
    #[schema(example = "success")]
    pub status: String,
    pub message: String,
    pub api_key: ApiKey,
}

/// `GET /rest-apis/{handle}/api-keys`: an admin sees every key, others their own.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyList {
    #[schema(example = "success")]
    pub status: String,
    pub total_count: usize,
    pub api_keys: Vec<ApiKey>,
}

// === subscription plans ===

/// A plan's quota window.
#[derive(Debug, ToSchema)]
pub enum LimitUnit {
    Min,
    Hour,
    Day,
    Month,
    #[schema(rename = "MINUTE")]
    Minute,
    #[schema(rename = "HOUR")]
    HourUpper,
    #[schema(rename = "DAY")]
    DayUpper,
    #[schema(rename = "MONTH")]
    MonthUpper,
}

/// A plan's state.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "UPPERCASE")]
pub enum PlanStatus {
    Active,
    Inactive,
}

/// `POST /subscription-plans`. `throttleLimitCount` and `throttleLimitUnit` go together.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanCreate {
    /// Unique without case (`409`).
    #[schema(example = "Business", max_length = 256)]
    pub plan_name: String,
    #[schema(max_length = 256)]
    pub billing_plan: Option<String>,
    /// Refuse (`429`) past the limit; default `true`.
    pub stop_on_quota_reach: Option<bool>,
    #[schema(minimum = 1, maximum = 4294967295_u64, example = 3)]
    pub throttle_limit_count: Option<i64>,
    pub throttle_limit_unit: Option<LimitUnit>,
    /// RFC 3339; past it the plan admits nothing.
    #[schema(format = DateTime)]
    pub expiry_time: Option<String>,
    /// Default `ACTIVE`.
    pub status: Option<PlanStatus>,
}

/// `PUT /subscription-plans/{id}`: partial; only the fields named change.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanUpdate {
    #[schema(max_length = 256)]
    pub plan_name: Option<String>,
    pub billing_plan: Option<String>,
    pub stop_on_quota_reach: Option<bool>,
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    pub throttle_limit_count: Option<i64>,
    pub throttle_limit_unit: Option<LimitUnit>,
    #[schema(format = DateTime)]
    pub expiry_time: Option<String>,
    pub status: Option<PlanStatus>,
}

/// A plan as the API answers it.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub id: String,
    pub plan_name: String,
    pub billing_plan: Option<String>,
    pub stop_on_quota_reach: bool,
    pub throttle_limit_count: Option<i64>,
    pub throttle_limit_unit: Option<String>,
    pub expiry_time: Option<String>,
    pub gateway_id: Option<String>,
    pub status: String,
    pub origin: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /subscription-plans`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanList {
    #[schema(example = "success")]
    pub status: String,
    pub count: usize,
    pub subscription_plans: Vec<Plan>,
}

// === subscriptions ===

/// A subscription's state.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "UPPERCASE")]
pub enum SubscriptionStatus {
    Active,
    Inactive,
    Revoked,
}

/// `POST /subscriptions`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionCreate {
    /// The API's handle or UUID.
    #[schema(example = "files-v1", max_length = 256)]
    pub api_id: String,
    /// Printable ASCII; generated (`tgsub_` and 64 hex digits) when absent. Only its SHA-256 is
    /// stored.
    #[schema(max_length = 512)]
    pub subscription_token: Option<String>,
    #[schema(max_length = 256)]
    pub application_id: Option<String>,
    #[schema(max_length = 256)]
    pub subscription_plan_id: Option<String>,
    #[schema(max_length = 256)]
    pub billing_customer_id: Option<String>,
    #[schema(max_length = 256)]
    pub billing_subscription_id: Option<String>,
    /// Default `ACTIVE`.
    pub status: Option<SubscriptionStatus>,
}

/// `PUT /subscriptions/{id}`: `status`, `subscriptionPlanId` (`null` removes the plan), or both.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionUpdate {
    pub status: Option<SubscriptionStatus>,
    pub subscription_plan_id: Option<String>,
}

/// `POST /subscriptions/{id}/regenerate-token`; the body is optional.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRegenerate {
    /// How long the old token keeps working, e.g. `1h`; at most 30 days. Without it the old token
    /// is refused from the next request on.
    #[schema(example = "1h")]
    pub grace_period: Option<String>,
}

/// A subscription as the API answers it; `subscriptionToken` and `invocation` only in the answers
/// that issue a token.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    /// The API's UUID.
    pub api_id: String,
    pub application_id: Option<String>,
    pub subscription_plan_id: Option<String>,
    pub billing_customer_id: Option<String>,
    pub billing_subscription_id: Option<String>,
    pub gateway_id: Option<String>,
    pub status: String,
    pub origin: String,
    pub created_at: String,
    pub updated_at: String,
    pub subscription_token: Option<String>,
    pub invocation: Option<Invocation>,
}

/// `GET /subscriptions`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionList {
    #[schema(example = "success")]
    pub status: String,
    pub count: usize,
    pub subscriptions: Vec<Subscription>,
}
