//! Subscription plan bodies (reference §1.7): a new plan, a partial update, the JSON answer, and
//! the control plane's plan payloads.

use serde_json::{Value, json};
use tollgate_model::FieldError;

use super::rules::{Fields, Unit};
use crate::db::PlanRow;
use crate::origin::Origin;

const STATUSES: &[&str] = &["ACTIVE", "INACTIVE"];

/// A plan from a `POST /subscription-plans` body.
pub fn new_plan(body: &Value, id: String, now: &str) -> Result<PlanRow, Vec<FieldError>> {
    let mut row = PlanRow {
        id,
        name: String::new(),
        handle: None,
        billing_plan: None,
        stop_on_quota_reach: true,
        limit_count: None,
        limit_unit: None,
        expiry_time: None,
        status: "ACTIVE".into(),
        origin: Origin::GatewayApi,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    };
    let mut f = Fields::of(body);
    if !f.has("planName") && f.errors.is_empty() {
        f.fail("planName", "is required");
    }
    apply(&mut row, &mut f);
    f.finish(row)
}

/// `old` with the fields a `PUT /subscription-plans/{id}` body names changed.
pub fn updated_plan(old: &PlanRow, body: &Value, now: &str) -> Result<PlanRow, Vec<FieldError>> {
    let mut row = old.clone();
    row.updated_at = now.to_string();
    let mut f = Fields::of(body);
    apply(&mut row, &mut f);
    f.finish(row)
}

/// Applies the fields `f` names to `row`, then checks the rules that join fields.
fn apply(row: &mut PlanRow, f: &mut Fields<'_>) {
    if f.has("planName") {
        match f.short("planName") {
            Some(n) => row.name = n,
            None if f.errors.iter().all(|e| e.field != "planName") => f.fail("planName", "is required"),
            None => {}
        }
    }
    if f.has("billingPlan") {
        row.billing_plan = f.short("billingPlan");
    }
    if let Some(stop) = f.boolean("stopOnQuotaReach") {
        row.stop_on_quota_reach = stop;
    }
    if f.has("throttleLimitCount") {
        row.limit_count = f.positive("throttleLimitCount");
    }
    if f.has("throttleLimitUnit") {
        row.limit_unit = match f.short("throttleLimitUnit") {
            Some(u) => match Unit::parse(&u) {
                Some(u) => Some(u.as_str().to_string()),
                None => {
                    f.fail(
                        "throttleLimitUnit",
                        "must be one of Min, Hour, Day, Month (or MINUTE, HOUR, DAY, MONTH)",
                    );
                    None
                }
            },
            None => None,
        };
    }
    if f.has("expiryTime") {
        row.expiry_time = f.instant("expiryTime");
    }
    if let Some(s) = f.one_of("status", STATUSES) {
        row.status = s.to_string();
    }
    let limit_fields_fine = f
        .errors
        .iter()
        .all(|e| e.field != "throttleLimitCount" && e.field != "throttleLimitUnit");
    if limit_fields_fine && row.limit_count.is_some() != row.limit_unit.is_some() {
        let missing = if row.limit_count.is_some() {
            "throttleLimitUnit"
        } else {
            "throttleLimitCount"
        };
        f.fail(
            missing,
            "throttleLimitCount and throttleLimitUnit must be given together",
        );
    }
}

/// A plan as the management API answers it.
pub fn plan_json(p: &PlanRow, gateway_id: Option<&str>) -> Value {
    json!({
        "id": p.id,
        "planName": p.name,
        "billingPlan": p.billing_plan,
        "stopOnQuotaReach": p.stop_on_quota_reach,
        "throttleLimitCount": p.limit_count,
        "throttleLimitUnit": p.limit_unit,
        "expiryTime": p.expiry_time,
        "gatewayId": gateway_id,
        "status": p.status,
        "origin": p.origin.as_str(),
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
    })
}

/// A plan from a control-plane `subscriptionPlan.*` event or sync listing: `planId` (or `id`),
/// `handle`, `planName`, … Unknown units and malformed fields are problems, so the event is
/// refused rather than stored half-read.
pub fn pushed_plan(p: &Value, now: &str) -> Result<PlanRow, Vec<FieldError>> {
    let id = ["planId", "id"]
        .iter()
        .find_map(|k| p.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_string());
    let Some(id) = id else {
        return Err(vec![FieldError {
            field: "planId".into(),
            message: "is required".into(),
        }]);
    };
    // The platform always sends `planName`; without one, the handle names the plan.
    let mut v = p.clone();
    if v.get("planName").is_none_or(Value::is_null)
        && let Some(h) = p.get("handle").and_then(Value::as_str).filter(|h| !h.is_empty())
    {
        v["planName"] = json!(h);
    }
    let mut row = new_plan(&v, id, now)?;
    row.handle = p.get("handle").and_then(Value::as_str).map(str::to_string);
    row.origin = Origin::ControlPlane;
    Ok(row)
}
