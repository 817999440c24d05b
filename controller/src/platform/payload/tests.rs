//! Reading what the platform API sends.

use serde_json::json;

use super::*;

#[test]
fn key_hashes_come_as_a_json_string_or_an_object() {
    let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert_eq!(
        sha256_of(&json!(format!("{{\"sha256\": \"{hex}\"}}"))).as_deref(),
        Some(hex)
    );
    assert_eq!(sha256_of(&json!({"sha256": hex.to_uppercase()})).as_deref(), Some(hex));
    assert_eq!(sha256_of(&json!("{\"sha256\": \"short\"}")), None);
    assert_eq!(sha256_of(&json!("not json")), None);
    assert_eq!(sha256_of(&json!({"md5": hex})), None);
}

#[test]
fn ids_that_could_escape_a_url_path_are_refused() {
    assert!(is_id("23826f9e-8daf-4638-b295-14898312759f"));
    for bad in ["", "../x", "a/b", "a?b", "a b", &"x".repeat(129)] {
        assert!(!is_id(bad), "{bad}");
    }
}

#[test]
fn subscription_tokens_are_stored_as_digests() {
    let v = redact_tokens(&json!({"subscriptionId": "s", "subscriptionToken": "secret-token"}));
    assert!(v.get("subscriptionToken").is_none());
    assert_eq!(v["subscriptionTokenSha256"].as_str().unwrap().len(), 64);
    assert!(!v.to_string().contains("secret-token"));
}

#[test]
fn artifacts_must_be_rest_apis_in_a_known_version() {
    let ok =
        "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata:\n  name: a\nspec:\n  context: /a\n";
    assert_eq!(artifact_document(ok).unwrap().metadata.name.as_deref(), Some("a"));
    let legacy = ok.replace("/v1\n", "/v1alpha1\n");
    assert_eq!(artifact_document(&legacy).unwrap().spec.context.as_deref(), Some("/a"));
    assert!(
        artifact_document("apiVersion: gateway.api-platform.wso2.com/v1\nkind: Mcp\n")
            .unwrap_err()
            .to_string()
            .contains("Mcp")
    );
    assert!(
        artifact_document("apiVersion: x/v9\nkind: RestApi\n")
            .unwrap_err()
            .to_string()
            .contains("x/v9")
    );
    assert!(artifact_document("- a list").is_err());
    assert!(artifact_document(": : :").is_err());
}

const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn payload(v: serde_json::Value) -> KeyPayload {
    KeyPayload::deserialize(&v).unwrap()
}

#[test]
fn pushed_keys_are_read_alike_from_events_and_lists() {
    let strict = KeyDefaults {
        created_by: "alice",
        stamp: "t0",
        strict_expiry: true,
    };
    let k = payload(json!({"uuid": "u1", "keyName": "k", "apiKeyHashes": {"sha256": HEX},
                           "expiresAt": "2026-03-04T10:30:00Z"}))
    .into_pushed("weather", strict)
    .unwrap();
    assert_eq!(
        (k.api.as_str(), k.name.as_str(), k.digest.as_str()),
        ("weather", "k", HEX)
    );
    assert_eq!((k.created_at.as_str(), k.created_by.as_str()), ("t0", "alice"));
    assert_eq!(k.expires_at, Some(1_772_620_200));
    // A nameless key is named by its UUID; without either it is refused.
    let k = payload(json!({"uuid": "u2", "apiKeyHashes": {"sha256": HEX}}));
    assert_eq!(k.into_pushed("a", strict).unwrap().name, "u2");
    let k = payload(json!({"apiKeyHashes": {"sha256": HEX}}));
    assert_eq!(k.into_pushed("a", strict).unwrap_err(), BadKey::Unnamed);
    let k = payload(json!({"uuid": "u3", "apiKeyHashes": {"md5": HEX}}));
    assert_eq!(k.into_pushed("a", strict).unwrap_err(), BadKey::Digest);
    // A bad expiry refuses an event's key, and means no expiry in the bulk list.
    let bad = json!({"uuid": "u4", "apiKeyHashes": {"sha256": HEX}, "expiresAt": "soon"});
    assert_eq!(
        payload(bad.clone()).into_pushed("a", strict).unwrap_err(),
        BadKey::Expiry("soon".into())
    );
    let lenient = KeyDefaults {
        strict_expiry: false,
        ..strict
    };
    assert_eq!(payload(bad).into_pushed("a", lenient).unwrap().expires_at, None);
}

#[test]
fn objects_need_an_id() {
    let p = json!({"planId": "p1", "name": "gold"});
    let o = cp_object(CpKind::Plan, &p, "planId", None).unwrap();
    assert_eq!((o.kind, o.id.as_str()), (CpKind::Plan, "p1"));
    assert!(cp_object(CpKind::Plan, &json!({"planId": ""}), "planId", None).is_none());
    assert!(cp_object(CpKind::Plan, &p, "id", None).is_none());
}
