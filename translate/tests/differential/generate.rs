//! Proptest strategies for `RestApi` documents: plausible shapes, with random values in every field a
//! user controls that reaches an Envoy resource (paths, methods, header matchers and regexes, vhosts,
//! upstream URLs, timeouts, policy parameters). Most documents are valid; the rest probe the validator.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};
use tollgate_model::document::{
    HeaderMatchDoc, Metadata, Operation, OperationMatch, PathMatch, Policy, Resilience, RestApiDoc, Spec,
    UpstreamDefinition, UpstreamTarget, UpstreamTimeout, Upstreams, Vhosts, WeightedUrl,
};

/// Characters a path segment may hold: the usual, plus percent, sub-delims, dots and non-ASCII.
const SEGMENT_CHARS: &[&str] = &[
    "a",
    "b",
    "z",
    "Z",
    "0",
    "9",
    "-",
    "_",
    ".",
    "~",
    "%",
    "%20",
    "%2F",
    ";",
    ":",
    "@",
    "!",
    "$",
    "&",
    "'",
    "(",
    ")",
    "+",
    ",",
    "=",
    "é",
    "ü",
    "日",
    "\u{1F600}",
    "\\",
    "|",
    "^",
    "[",
    "]",
    "\"",
    "<",
    "`",
];

/// A path segment: literal characters, sometimes `.`/`..`, a `{param}` or `$version`.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z0-9_.~-]{1,8}",
        4 => vec(select(SEGMENT_CHARS), 1..6).prop_map(|cs| cs.concat()),
        3 => "[a-zA-Z0-9_.-]{1,8}".prop_map(|n| format!("{{{n}}}")),
        1 => select(vec![".", "..", "$version", "_gateway-health", "*"]).prop_map(String::from),
    ]
}

/// `/` or `/seg/seg...`, sometimes ending in `/` or `/*`.
fn path() -> impl Strategy<Value = String> {
    (vec(segment(), 0..4), 0..4u8).prop_map(|(segs, end)| {
        let mut p = format!("/{}", segs.join("/"));
        match end {
            0 if p.len() > 1 => p.push('/'),
            1 if p.len() > 1 => p.push_str("/*"),
            _ => {}
        }
        p
    })
}

/// One regex atom: a literal, escape, class or Unicode character.
fn regex_atom() -> impl Strategy<Value = String> {
    select(vec![
        "a",
        "b",
        "Z",
        "0",
        ".",
        "\\.",
        "\\d",
        "\\w",
        "\\s",
        "\\D",
        "[a-z]",
        "[^/]",
        "[0-9A-F]",
        "[[:alpha:]]",
        "\\pL",
        "\\p{Greek}",
        "é",
        "日",
        "\\x41",
        "\\x{1F600}",
        "\\b",
        "-",
        "/",
        "\\\\",
        "\\Q.*\\E",
        "\\z",
    ])
    .prop_map(String::from)
}

/// A repetition operator, counted ones up to above RE2's 1,000.
fn repetition() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => select(vec!["", "", "", "*", "+", "?", "*?", "+?"]).prop_map(String::from),
        3 => (0..12u32).prop_map(|n| format!("{{{n}}}")),
        1 => (0..1200u32).prop_map(|n| format!("{{{n}}}")),
        1 => (0..40u32, 0..1100u32).prop_map(|(a, b)| format!("{{{a},{b}}}")),
        1 => (0..120u32).prop_map(|n| format!("{{{n},}}")),
    ]
}

/// Regexes from a small grammar: atoms, concatenation, alternation, (named, non-capturing) groups,
/// repetitions and anchors.
pub fn regex() -> impl Strategy<Value = String> {
    let leaf = (regex_atom(), repetition()).prop_map(|(a, r)| format!("{a}{r}"));
    let tree = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
            vec(inner.clone(), 2..4).prop_map(|v| v.join("|")),
            (inner.clone(), select(vec!["(", "(?:", "(?i)(", "(?P<n>"]), repetition())
                .prop_map(|(i, open, r)| format!("{open}{i}){r}")),
        ]
    });
    (any::<bool>(), tree, any::<bool>())
        .prop_map(|(start, t, end)| format!("{}{t}{}", if start { "^" } else { "" }, if end { "$" } else { "" }))
}

/// A header matcher: a token name (sometimes not), an exact value or a regex.
fn header() -> impl Strategy<Value = HeaderMatchDoc> {
    let name = prop_oneof![
        8 => "[a-zA-Z][a-zA-Z0-9!#$%&'*+.^_`|~-]{0,15}",
        1 => select(vec![":authority", "Host", "host", ":path", "x y", "é", "content-length"]).prop_map(String::from),
    ];
    let exact = prop_oneof![
        "[ -~]{0,20}",
        select(vec!["", " lead", "trail ", "é日", "\t", "a\u{7f}b", "a\0b", "\r\n"]).prop_map(String::from),
    ];
    prop_oneof![
        (name.clone(), exact).prop_map(|(n, v)| (n, v, None)),
        (name, regex()).prop_map(|(n, v)| (n, v, Some("RegularExpression"))),
    ]
    .prop_map(|(name, value, kind)| HeaderMatchDoc {
        name: Some(name),
        value: Some(value),
        kind: kind.map(String::from),
    })
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
        1 => select(vec!["get", "CONNECT", "TRACE", ""]),
    ]
    .prop_map(String::from)
}

/// A duration as written in documents, from zero to more than a protobuf `Duration` can hold.
fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0..100_000u64, select(vec!["ms", "s", "m", "h"])).prop_map(|(n, u)| format!("{n}{u}")),
        1 => (0..u64::MAX, select(vec!["ms", "s", "m", "h"])).prop_map(|(n, u)| format!("{n}{u}")),
        2 => (0..100u64, 0..1000u64).prop_map(|(a, b)| format!("{a}.{b:03}s")),
        1 => Just("0.0000000001s".to_string()),
        1 => select(vec!["2562047h", "2562048h", "5124095h"]).prop_map(String::from),
    ]
}

fn resilience() -> impl Strategy<Value = Option<Resilience>> {
    proptest::option::weighted(
        0.3,
        (proptest::option::of(duration()), proptest::option::of(duration()))
            .prop_map(|(timeout, idle_timeout)| Resilience { timeout, idle_timeout }),
    )
}

/// `cors` with origins of every form (regexes Envoy may refuse among them), header names and
/// methods inside and around the schema, and the credentials rule.
fn cors() -> impl Strategy<Value = (&'static str, Value)> {
    let origin = prop_oneof![
        1 => Just("*".to_string()),
        3 => "https?://[a-z0-9.-]{1,12}(:[0-9]{1,5})?",
        2 =>
        select(vec![
            r"https://.*\.example\.com",
            "https://*.example.com",
            "(?=x)",
            "a{1001}",
            "[z-a]",
            r"\C",
            "é+",
            ""
        ])
        .prop_map(String::from),
    ];
    let header = prop_oneof![
        6 => "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}",
        1 => select(vec!["*", "x y", "a\nb"]).prop_map(String::from)
    ];
    let method = select(vec!["GET", "POST", "OPTIONS", "*", "GET", "POST", "PUT", "TRACE"]);
    (
        vec(origin, 1..4),
        proptest::option::of(vec(method, 1..3)),
        vec(header.clone(), 0..3),
        vec(header, 0..3),
        proptest::bool::weighted(0.2),
        proptest::option::of(-1..87000i64),
        any::<bool>(),
    )
        .prop_map(|(origins, methods, headers, exposed, credentials, max_age, forward)| {
            let mut p = json!({"allowedOrigins": origins, "allowedHeaders": headers, "exposedHeaders": exposed,
                "allowCredentials": credentials, "forwardPreflight": forward});
            if let Some(m) = methods {
                p["allowedMethods"] = json!(m);
            }
            if let Some(a) = max_age {
                p["maxAge"] = json!(a);
            }
            ("cors", p)
        })
}

/// `api-key-auth`, `respond`, `cors`, a mediation policy or `advanced-ratelimit`, with parameters
/// inside and around their schemas.
fn policy() -> impl Strategy<Value = Policy> {
    let key_auth = (
        "[A-Za-z0-9_-]{1,20}",
        select(vec!["header", "query"]),
        any::<Option<bool>>(),
    )
        .prop_map(|(key, inn, strip)| {
            let mut p = json!({"key": key, "in": inn});
            if let Some(s) = strip {
                p["stripKey"] = Value::Bool(s);
            }
            ("api-key-auth", p)
        });
    let respond_header = (
        prop_oneof![
            "[a-zA-Z0-9-]{1,12}",
            select(vec!["", ":status", "Host", "x y", "é", "a\nb"]).prop_map(String::from)
        ],
        prop_oneof!["[ -~]{0,16}", select(vec!["a\nb", "\0", "é"]).prop_map(String::from)],
    )
        .prop_map(|(name, value)| json!({"name": name, "value": value}));
    let body = prop_oneof![
        4 => "[ -~]{0,40}",
        1 => (3000..6000usize).prop_map(|n| "x".repeat(n)),
        1 => Just("é\0\u{1F600}".to_string()),
    ];
    let respond =
        (100..600u16, proptest::option::of(body), vec(respond_header, 0..3)).prop_map(|(status, body, headers)| {
            let mut p = json!({"statusCode": status});
            if let Some(b) = body {
                p["body"] = Value::String(b);
            }
            if !headers.is_empty() {
                p["headers"] = Value::Array(headers);
            }
            ("respond", p)
        });
    // Rate limits: header key names (inside and around the token rule) reach Envoy's
    // ext_authz `allowed_headers`, durations and bodies its context extensions.
    let ratelimit = (
        prop_oneof![
            "[A-Za-z0-9!#._~-]{1,12}",
            select(vec!["x y", "é", "a:b", ""]).prop_map(String::from)
        ],
        select(vec!["1s", "90s", "1h30m", "500ms", "24h"]),
        1..5u64,
        "[ -~]{0,20}",
    )
        .prop_map(|(header, duration, limit, body)| {
            let quota = json!({"limits": [{"limit": limit, "duration": duration}],
                               "keyExtraction": [{"type": "header", "key": header}, {"type": "ip"}]});
            (
                "advanced-ratelimit",
                json!({"quotas": [quota], "onRateLimitExceeded": {"body": body}}),
            )
        });
    prop_oneof![key_auth, respond, cors(), crate::mediation::policy(), ratelimit].prop_map(|(name, params)| Policy {
        name: Some(name.into()),
        version: Some("v1".into()),
        execution_condition: None,
        params: Some(params),
    })
}

/// An operation in the simple form or the match form.
fn operation() -> impl Strategy<Value = Operation> {
    let simple = (method(), path()).prop_map(|(m, p)| Operation {
        method: Some(m),
        path: Some(p),
        ..Default::default()
    });
    let matched = (
        method(),
        path(),
        select(vec![None, Some("Exact"), Some("PathPrefix")]),
        vec(header(), 0..3),
    )
        .prop_map(|(m, p, kind, headers)| Operation {
            match_: Some(OperationMatch {
                method: Some(m),
                path: Some(PathMatch {
                    value: Some(p),
                    kind: kind.map(String::from),
                }),
                headers,
            }),
            ..Default::default()
        });
    (prop_oneof![simple, matched], vec(policy(), 0..2), resilience()).prop_map(|(mut op, policies, r)| {
        op.policies = policies;
        op.resilience = r;
        op
    })
}

/// A virtual host: names with odd characters, ports, wildcards and upper case.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]{1,8}(\\.[a-z0-9-]{1,8}){0,2}",
        1 => "[A-Za-z0-9_.:-]{1,12}",
        1 => "\\*\\.[a-z]{1,6}\\.example",
        1 => "[a-z]{1,6}\\.\\*",
        1 => select(vec!["*", "a.example:8080", "[::1]", "-", ".", "_"]).prop_map(String::from),
        // A small pool, so that the documents of a batch share hosts (and differ only in case).
        2 => select(vec!["api.example.com", "API.example.com", "Api.Example.Com", "sandbox-x"]).prop_map(String::from),
    ]
}

fn vhosts() -> impl Strategy<Value = Option<Vhosts>> {
    proptest::option::weighted(
        0.4,
        (vec(host(), 1..3), proptest::option::of(host())).prop_map(|(main, sandbox)| Vhosts {
            main: Some(main.join(";")),
            sandbox,
        }),
    )
}

/// An upstream URL: schemes, IPv4 and IPv6 literals, odd hostnames, ports in and out of range, paths.
fn url() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        3 => "[a-z][a-z0-9-]{0,10}(\\.[a-z0-9-]{1,6}){0,2}",
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| format!("10.{a}.{b}.1")),
        1 => select(vec!["[::1]", "[fe80::1]", "[::ffff:10.0.0.1]", "[::]", "[1::2::3]", "[:::]", "a_b", "-x-",
            "1.2.3.4.5", "999.1.1.1", "0.0.0.0", "localhost", "UPPER.case"]).prop_map(String::from),
    ];
    let port = prop_oneof![
        2 => Just(String::new()),
        3 => (1..65536u32).prop_map(|p| format!(":{p}")),
        1 => select(vec![":0", ":65536", ":", ":080", ":99999999"]).prop_map(String::from),
    ];
    let path = prop_oneof![Just(String::new()), Just("/".to_string()), "(/[a-z0-9%._~-]{1,6}){1,3}"];
    (select(vec!["http", "https", "HTTPS"]), host, port, path).prop_map(|(s, h, p, path)| format!("{s}://{h}{p}{path}"))
}

/// The scheme, host and port of `url` (an upstream definition's URL takes no path).
fn origin(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => url[..after + i].to_string(),
        None => url.to_string(),
    }
}

/// Main upstream by URL or by reference to a definition with a connect timeout; sometimes a sandbox.
fn upstreams() -> impl Strategy<Value = (Upstreams, Vec<UpstreamDefinition>)> {
    let by_ref = (
        url().prop_map(|u| origin(&u)),
        proptest::option::of(duration()),
        "(/[a-z0-9]{1,6}){0,2}",
    )
        .prop_map(|(u, connect, base)| {
            let def = UpstreamDefinition {
                name: Some("primary".into()),
                base_path: (!base.is_empty()).then_some(base),
                timeout: connect.map(|c| UpstreamTimeout { connect: Some(c) }),
                upstreams: vec![WeightedUrl {
                    url: Some(u),
                    weight: None,
                }],
            };
            let target = UpstreamTarget {
                reference: Some("primary".into()),
                ..Default::default()
            };
            (target, vec![def])
        });
    let by_url = url().prop_map(|u| {
        let target = UpstreamTarget {
            url: Some(u),
            ..Default::default()
        };
        (target, vec![])
    });
    let host_rewrite = select(vec![None, Some("auto"), Some("manual")]);
    (
        prop_oneof![by_url, by_ref],
        proptest::option::weighted(0.3, url()),
        host_rewrite,
    )
        .prop_map(|((mut main, defs), sandbox, rewrite)| {
            main.host_rewrite = rewrite.map(String::from);
            let sandbox = sandbox.map(|u| UpstreamTarget {
                url: Some(u),
                ..Default::default()
            });
            (
                Upstreams {
                    main: Some(main),
                    sandbox,
                },
                defs,
            )
        })
}

/// A whole document named `name`.
pub fn document(name: String) -> impl Strategy<Value = RestApiDoc> {
    let context = prop_oneof![
        1 => Just("/".to_string()),
        6 => vec("[a-z0-9_.~-]{1,8}", 1..3).prop_map(|s| format!("/{}", s.join("/"))),
        1 => vec(segment(), 1..3).prop_map(|s| format!("/{}", s.join("/"))),
    ];
    (
        context,
        upstreams(),
        vhosts(),
        vec(policy(), 0..2),
        resilience(),
        vec(operation(), 1..5),
    )
        .prop_map(
            move |(context, (upstream, defs), vhosts, policies, resilience, operations)| RestApiDoc {
                api_version: Some("gateway.api-platform.wso2.com/v1".into()),
                kind: Some("RestApi".into()),
                metadata: Metadata {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                spec: Spec {
                    display_name: Some(name.clone()),
                    version: Some("v1.0".into()),
                    context: Some(context),
                    upstream: Some(upstream),
                    upstream_definitions: defs,
                    vhosts,
                    policies,
                    resilience,
                    operations: Some(operations),
                    ..Default::default()
                },
            },
        )
}

/// One to four documents with distinct names, judged together in one bootstrap.
pub fn batch() -> impl Strategy<Value = Vec<RestApiDoc>> {
    (1..5usize).prop_flat_map(|n| (0..n).map(|i| document(format!("api-{i}"))).collect::<Vec<_>>())
}
