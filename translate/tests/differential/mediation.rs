//! Proptest strategies for the mediation policies' parameters: mostly valid, with the values around
//! their limits (Envoy's refusals) mixed in.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_-]{1,12}",
        2 => select(vec!["Host", "host", ":path", "x y", "", "X-Tollgate-Key-Name", "content-length"]).prop_map(String::from),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[ -~]{0,16}",
        1 => select(vec!["%", "50%", "%REQ(x)%", "a\nb", "\0", "é", " lead", "trail "]).prop_map(String::from),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "(/[a-z0-9._~%-]{0,6}){1,3}",
        1 => select(vec!["", "/", "//", "/a?b", "/a#b", "/a b", "/é", "no-slash", "/\\"]).prop_map(String::from),
    ]
}

fn pair_list(with_value: bool) -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(vec((name(), value()), 1..3).prop_map(move |items| {
        let items = items.into_iter().map(|(n, v)| {
            if with_value {
                json!({"name": n, "value": v})
            } else {
                json!({"name": n})
            }
        });
        Value::Array(items.collect())
    }))
}

fn headers(policy: &'static str, with_value: bool) -> impl Strategy<Value = (&'static str, Value)> {
    (pair_list(with_value), pair_list(with_value)).prop_map(move |(req, resp)| {
        let mut p = json!({});
        if let Some(r) = req {
            p["requestHeaders"] = r;
        }
        if let Some(r) = resp {
            p["responseHeaders"] = r;
        }
        (policy, p)
    })
}

fn condition() -> impl Strategy<Value = Value> {
    (
        name(),
        select(vec!["Exact", "Regex", "Present"]),
        super::generate::regex(),
    )
        .prop_map(|(n, t, v)| {
            if t == "Present" {
                json!({"name": n, "type": t})
            } else {
                json!({"name": n, "type": t, "value": v})
            }
        })
}

fn path_rewrite() -> impl Strategy<Value = Value> {
    prop_oneof![
        path().prop_map(|p| json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": p})),
        path().prop_map(|p| json!({"type": "ReplaceFullPath", "replaceFullPath": p})),
        (
            prop_oneof![super::generate::regex(), path().prop_map(|p| format!("^{p}(.*)$"))],
            select(vec!["/x", "/\\1", "\\0/y", "\\2", "a\\\\b", "%"])
        )
            .prop_map(|(re, sub)| json!({"type": "ReplaceRegexMatch", "replaceRegexMatch": {"pattern": re, "substitution": sub}})),
    ]
}

fn rewrite() -> impl Strategy<Value = (&'static str, Value)> {
    let rule = prop_oneof![
        (select(vec!["Replace", "Remove", "Add", "Append"]), name(), value())
            .prop_map(|(a, n, v)| json!({"action": a, "name": n, "value": v, "separator": ","})),
        (name(), super::generate::regex()).prop_map(
            |(n, re)| json!({"action": "ReplaceRegexMatch", "name": n, "pattern": re, "substitution": "\\1"})
        ),
    ];
    (
        proptest::option::of(vec(condition(), 1..3)),
        proptest::option::of(path_rewrite()),
        proptest::option::of(vec(rule, 1..3)),
        proptest::option::of(select(vec!["POST", "PUT", "OPTIONS"])),
    )
        .prop_map(|(m, p, q, method)| {
            let mut out = json!({});
            if let Some(m) = m {
                out["match"] = json!({"headers": m.clone(), "queryParams": m});
            }
            if let Some(p) = p {
                out["pathRewrite"] = p;
            }
            if let Some(q) = q {
                out["queryRewrite"] = json!({"rules": q});
            }
            if let Some(method) = method {
                out["methodRewrite"] = json!(method);
            }
            ("request-rewrite", out)
        })
}

fn redirect() -> impl Strategy<Value = (&'static str, Value)> {
    let url = prop_oneof![
        path(),
        (
            "(http|https|HTTPS)",
            "[a-z0-9.-]{1,12}",
            proptest::option::of(0..70000u32),
            path()
        )
            .prop_map(|(s, h, port, p)| match port {
                Some(port) => format!("{s}://{h}:{port}{p}"),
                None => format!("{s}://{h}{p}"),
            }),
    ];
    (url, proptest::option::of(select(vec![301, 302, 303, 304, 307, 308]))).prop_map(|(url, code)| {
        let mut p = json!({"url": url});
        if let Some(c) = code {
            p["statusCode"] = json!(c);
        }
        ("redirect", p)
    })
}

/// One mediation policy with its parameters.
pub fn policy() -> impl Strategy<Value = (&'static str, Value)> {
    prop_oneof![
        headers("set-headers", true),
        headers("remove-headers", false),
        "[a-zA-Z0-9.:-]{0,20}".prop_map(|h| ("host-rewrite", json!({"host": h}))),
        rewrite(),
        redirect(),
    ]
}
