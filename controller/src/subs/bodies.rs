//! Subscription bodies (reference §1.8): a new subscription, a status change, the JSON answer, and
//! the control plane's subscription payloads.

use serde_json::{Value, json};
use tollgate_model::FieldError;

use super::rules::Fields;
use crate::db::SubscriptionRow;

/// A subscription's states.
pub const STATUSES: &[&str] = &["ACTIVE", "INACTIVE", "REVOKED"];

/// What a `POST /subscriptions` body asks for; the API, plan and token are checked by the
/// application layer.
#[derive(Clone, Debug, Default)]
pub struct NewSubscription {
    /// A handle or a UUID.
    pub api: String,
    /// Supplied by the caller; generated when absent.
    pub token: Option<String>,
    pub application_id: Option<String>,
    pub plan_id: Option<String>,
    pub billing_customer_id: Option<String>,
    pub billing_subscription_id: Option<String>,
    pub status: String,
}

/// What a `PUT /subscriptions/{id}` body changes.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionChange {
    pub status: Option<String>,
    /// `Some(None)` removes the plan.
    pub plan_id: Option<Option<String>>,
}

/// Reads a `POST /subscriptions` body.
pub fn new_subscription(body: &Value) -> Result<NewSubscription, Vec<FieldError>> {
    let mut f = Fields::of(body);
    let api = f.short("apiId");
    if api.is_none() && f.errors.iter().all(|e| e.field != "apiId") && f.errors.is_empty() {
        f.fail("apiId", "is required");
    }
    let new = NewSubscription {
        api: api.unwrap_or_default(),
        token: f.token("subscriptionToken"),
        application_id: f.short("applicationId"),
        plan_id: f.short("subscriptionPlanId"),
        billing_customer_id: f.short("billingCustomerId"),
        billing_subscription_id: f.short("billingSubscriptionId"),
        status: f.one_of("status", STATUSES).unwrap_or("ACTIVE").to_string(),
    };
    f.finish(new)
}

/// Reads a `PUT /subscriptions/{id}` body: `status`, and optionally `subscriptionPlanId`.
pub fn subscription_change(body: &Value) -> Result<SubscriptionChange, Vec<FieldError>> {
    let mut f = Fields::of(body);
    let status = f.one_of("status", STATUSES).map(str::to_string);
    let plan_id = f.has("subscriptionPlanId").then(|| f.short("subscriptionPlanId"));
    if status.is_none() && plan_id.is_none() && f.errors.is_empty() {
        f.fail("status", "is required (ACTIVE, INACTIVE or REVOKED)");
    }
    f.finish(SubscriptionChange { status, plan_id })
}

/// A subscription as the management API answers it; `token` only in the answers that create it.
pub fn subscription_json(s: &SubscriptionRow, token: Option<&str>, gateway_id: Option<&str>) -> Value {
    let mut v = json!({
        "id": s.id,
        "apiId": s.api_uuid,
        "applicationId": s.application_id,
        "subscriptionPlanId": s.plan_id,
        "billingCustomerId": s.billing_customer_id,
        "billingSubscriptionId": s.billing_subscription_id,
        "gatewayId": gateway_id,
        "status": s.status,
        "origin": s.origin.as_str(),
        "createdAt": s.created_at,
        "updatedAt": s.updated_at,
    });
    if let Some(t) = token {
        v["subscriptionToken"] = json!(t);
    }
    v
}

/// A subscription from a control-plane `subscription.*` event or sync listing: `subscriptionId`
/// (or `id`), `apiId` (the artifact UUID), the plaintext `subscriptionToken` (hashed here and
/// dropped), `applicationId`, `subscriptionPlanId`, `status`.
pub fn pushed_subscription(p: &Value, now: &str) -> Result<SubscriptionRow, Vec<FieldError>> {
    let mut f = Fields::of(p);
    let id = if f.has("subscriptionId") {
        f.short("subscriptionId")
    } else {
        f.short("id")
    };
    if id.is_none() && f.errors.is_empty() {
        f.fail("subscriptionId", "is required");
    }
    let api = f.short("apiId");
    if api.is_none() && f.errors.iter().all(|e| e.field != "apiId") {
        f.fail("apiId", "is required");
    }
    let token = f.token("subscriptionToken");
    let row = SubscriptionRow {
        id: id.unwrap_or_default(),
        api_uuid: api.unwrap_or_default(),
        application_id: f.short("applicationId"),
        token_hash: token.as_deref().map(super::rules::token_hash),
        previous_token_hash: None,
        previous_expires_at: None,
        plan_id: f.short("subscriptionPlanId"),
        billing_customer_id: f.short("billingCustomerId"),
        billing_subscription_id: f.short("billingSubscriptionId"),
        status: f.one_of("status", STATUSES).unwrap_or("ACTIVE").to_string(),
        origin: crate::origin::Origin::ControlPlane,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    };
    f.finish(row)
}
