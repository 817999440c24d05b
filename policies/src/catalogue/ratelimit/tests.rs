use serde_json::json;

use super::*;
use crate::Catalogue;

fn errors(name: &str, params: Value) -> Vec<(String, String)> {
    let cat = Catalogue::builtin();
    let def = cat.lookup(name, "v1").expect("builtin policy");
    def.validate_params(Some(&params))
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn paths(name: &str, params: Value) -> Vec<String> {
    errors(name, params).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn go_durations_become_whole_seconds() {
    for (s, secs) in [("1s", 1), ("1m", 60), ("24h", 86_400), ("1000ms", 1), ("90s", 90)] {
        assert_eq!(window_secs(s, true), Ok(secs), "{s}");
    }
    for (s, secs) in [
        ("1h30m", 5_400),
        ("1.5h", 5_400),
        (".5m", 30),
        ("+2s", 2),
        ("1m0.5s500ms", 61),
    ] {
        assert_eq!(window_secs(s, false), Ok(secs), "{s}");
    }
    for s in ["", "1", "h", "1d", "1.5h", "1h30m", "-1s", "1 s", "1..2s"] {
        assert_eq!(window_secs(s, true), Err(DurationError::Syntax), "{s}");
    }
    for s in ["500ms", "0s", "-1s", "1.5s", "99999999999h"] {
        assert_eq!(window_secs(s, false), Err(DurationError::Range), "{s}");
    }
}

#[test]
fn basic_ratelimit_is_checked_with_field_paths() {
    assert!(
        errors(
            "basic-ratelimit",
            json!({"limits": [{"requests": 10, "duration": "1m"}]})
        )
        .is_empty()
    );
    assert_eq!(
        paths(
            "basic-ratelimit",
            json!({"limits": [{"requests": 10, "duration": "1m"}, {"requests": 0, "duration": "1 day"}]})
        ),
        ["limits[1].requests", "limits[1].duration"]
    );
    assert_eq!(
        errors("basic-ratelimit", json!({}))[0],
        ("limits".into(), "Required parameter 'limits' is missing".into())
    );
    let eleven: Vec<Value> = (0..11).map(|_| json!({"requests": 1, "duration": "1s"})).collect();
    assert_eq!(
        errors("basic-ratelimit", json!({"limits": eleven})),
        [(
            "limits".into(),
            "Array has 11 items (must have between 1 and 10)".into()
        )]
    );
    assert_eq!(paths("basic-ratelimit", json!({"limits": []})), ["limits"]);
    assert_eq!(
        paths(
            "basic-ratelimit",
            json!({"limits": [{"requests": 1, "duration": "1h30m", "burst": 2}], "algorithm": "gcra"})
        ),
        ["limits[0].duration", "limits[0].burst", "algorithm"]
    );
}

#[test]
fn advanced_ratelimit_is_checked_and_says_what_is_not_supported() {
    let ok = json!({
        "quotas": [{"name": "per-user", "limits": [{"limit": 10, "duration": "1h30m", "burst": 20}],
                    "keyExtraction": [{"type": "header", "key": "X-User-ID"}, {"type": "ip"}],
                    "costExtraction": {"enabled": false}}],
        "keyExtraction": [{"type": "apiname"}, {"type": "constant", "key": "gold tier"}],
        "onRateLimitExceeded": {"statusCode": 429, "body": "{}", "bodyFormat": "json"}
    });
    assert!(errors("advanced-ratelimit", ok).is_empty());
    let bad = json!({
        "quotas": [{"limits": [{"limit": 1, "duration": "1h"}, {"limit": 1, "duration": "500ms"}],
                    "keyExtraction": [{"type": "header"}, {"type": "cel", "expression": "x"},
                                      {"type": "header", "key": "a b"}, {"type": "user"}],
                    "costExtraction": {"enabled": true}}],
        "onRateLimitExceeded": {"statusCode": 200, "bodyFormat": "xml"}
    });
    let mut got = paths("advanced-ratelimit", bad);
    got.sort();
    assert_eq!(
        got,
        [
            "onRateLimitExceeded.bodyFormat",
            "onRateLimitExceeded.statusCode",
            "quotas[0].costExtraction.enabled",
            "quotas[0].keyExtraction[0].key",
            "quotas[0].keyExtraction[1].type",
            "quotas[0].keyExtraction[2].key",
            "quotas[0].keyExtraction[3].type",
            "quotas[0].limits[1].duration",
        ]
    );
    assert_eq!(paths("advanced-ratelimit", json!({"quotas": []})), ["quotas"]);
}

#[test]
fn lines_round_trip_with_any_text() {
    let at = Scope {
        api: "a b%20c",
        api_name: "n",
        api_version: "v",
        route: "GET /x y",
        operation: true,
    };
    let q = lower(
        "advanced-ratelimit",
        &json!({"quotas": [{"name": "100% of\nit", "limits": [{"limit": 5, "duration": "1h"}, {"limit": 2, "duration": "1s"}],
                            "keyExtraction": [{"type": "header", "key": "X-U"}, {"type": "ip"}]}],
                "onRateLimitExceeded": {"body": "a b\r\n%25"}}),
        &at,
    );
    let text = q[0].encode();
    assert!(!text.contains('\n'));
    let raw = RawLine::parse(&text).unwrap();
    assert_eq!(unescape(raw.name), "100% of\nit");
    assert_eq!(unescape(raw.body), "a b\r\n%25");
    assert_eq!(unescape(raw.scope), q[0].scope);
    assert_eq!(raw.limits().collect::<Vec<_>>(), [Some((2, 1)), Some((5, 3_600))]);
    assert_eq!(raw.parts().collect::<Vec<_>>(), ["h:x-u", "ip"]);
    assert_eq!((raw.status, raw.json), (429, true));
}
