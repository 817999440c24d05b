//! Plan and subscription rules, and which subscriptions the index holds.

use serde_json::json;

use super::bodies::{new_subscription, subscription_change};
use super::plans::{new_plan, pushed_plan, updated_plan};
use super::rules::{Unit, generate_token, token_hash};

fn fields(errors: &[tollgate_model::FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn plans_need_a_name_and_a_whole_limit() {
    let p = new_plan(
        &json!({"planName": "  Gold ", "throttleLimitCount": 10, "throttleLimitUnit": "MINUTE"}),
        "id".into(),
        "t",
    )
    .unwrap();
    assert_eq!(
        (p.name.as_str(), p.limit_count, p.limit_unit.as_deref()),
        ("Gold", Some(10), Some("Min"))
    );
    assert!(p.stop_on_quota_reach && p.status == "ACTIVE");

    let e = new_plan(&json!({}), "id".into(), "t").unwrap_err();
    assert_eq!(fields(&e), ["planName"]);
    let e = new_plan(&json!({"planName": "x", "throttleLimitCount": 5}), "id".into(), "t").unwrap_err();
    assert_eq!(fields(&e), ["throttleLimitUnit"]);
    let e = new_plan(
        &json!({"planName": "x", "throttleLimitCount": 0, "throttleLimitUnit": "Week", "status": "ON", "expiryTime": "soon", "stopOnQuotaReach": "yes"}),
        "id".into(),
        "t",
    )
    .unwrap_err();
    let mut got = fields(&e);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "expiryTime",
            "status",
            "stopOnQuotaReach",
            "throttleLimitCount",
            "throttleLimitUnit"
        ]
    );
}

#[test]
fn a_plan_update_is_partial() {
    let p = new_plan(
        &json!({"planName": "Gold", "throttleLimitCount": 10, "throttleLimitUnit": "Day"}),
        "id".into(),
        "t",
    )
    .unwrap();
    let q = updated_plan(&p, &json!({"status": "inactive"}), "t2").unwrap();
    assert_eq!(
        (q.name.as_str(), q.status.as_str(), q.limit_count),
        ("Gold", "INACTIVE", Some(10))
    );
    assert_eq!(q.updated_at, "t2");
    // Removing half of the limit is refused.
    let e = updated_plan(&p, &json!({"throttleLimitUnit": null}), "t2").unwrap_err();
    assert_eq!(fields(&e), ["throttleLimitUnit"]);
}

#[test]
fn pushed_plans_take_the_platform_spelling() {
    let p = pushed_plan(
        &json!({"planId": "p1", "handle": "gold", "planName": "Gold", "billingPlan": "free", "stopOnQuotaReach": false,
                "throttleLimitCount": 3, "throttleLimitUnit": "HOUR", "status": "ACTIVE"}),
        "t",
    )
    .unwrap();
    assert_eq!(
        (p.id.as_str(), p.handle.as_deref(), p.limit_unit.as_deref()),
        ("p1", Some("gold"), Some("Hour"))
    );
    assert!(!p.stop_on_quota_reach);
    assert!(pushed_plan(&json!({"planName": "x"}), "t").is_err());
}

#[test]
fn units_accept_both_spellings() {
    for (s, u) in [
        ("Min", Unit::Min),
        ("MINUTE", Unit::Min),
        ("hour", Unit::Hour),
        ("DAY", Unit::Day),
        ("Month", Unit::Month),
    ] {
        assert_eq!(Unit::parse(s), Some(u), "{s}");
    }
    assert_eq!(Unit::parse("Week"), None);
}

#[test]
fn subscription_bodies() {
    let s = new_subscription(&json!({"apiId": "orders", "subscriptionPlanId": "p"})).unwrap();
    assert_eq!((s.api.as_str(), s.token, s.status.as_str()), ("orders", None, "ACTIVE"));
    let e = new_subscription(&json!({"apiId": "orders", "subscriptionToken": "a b", "status": "GONE"})).unwrap_err();
    let mut got = fields(&e);
    got.sort_unstable();
    assert_eq!(got, ["status", "subscriptionToken"]);
    let e = new_subscription(&json!({"subscriptionToken": "abc"})).unwrap_err();
    assert_eq!(fields(&e), ["apiId"]);
    assert_eq!(
        subscription_change(&json!({"status": "revoked"}))
            .unwrap()
            .status
            .as_deref(),
        Some("REVOKED")
    );
    assert_eq!(fields(&subscription_change(&json!({})).unwrap_err()), ["status"]);
}

#[test]
fn tokens_are_long_random_and_hashed_trimmed() {
    let (a, b) = (generate_token().unwrap(), generate_token().unwrap());
    assert!(a.starts_with("tgsub_") && a.len() == 70 && a != b);
    assert_eq!(token_hash(" x "), token_hash("x"));
    assert_eq!(token_hash("x").len(), 64);
}
