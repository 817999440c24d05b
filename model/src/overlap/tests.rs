use super::*;
use crate::{Resilience, Upstream};

fn op(method: Method, path: &str) -> Operation {
    Operation {
        method,
        path: path.into(),
        kind: PathKind::Template,
        headers: vec![],
        resilience: Resilience::default(),
        policies: vec![],
    }
}

fn get(path: &str) -> Operation {
    op(Method::Get, path)
}

fn exact(path: &str) -> Operation {
    Operation {
        kind: PathKind::Exact,
        ..get(path)
    }
}

fn with_header(mut o: Operation, name: &str, value: &str, regex: bool) -> Operation {
    o.headers.push(HeaderMatch {
        name: name.into(),
        value: value.into(),
        regex,
    });
    o
}

fn api(handle: &str, context: &str, operations: Vec<Operation>) -> Api {
    Api {
        handle: handle.into(),
        display_name: handle.into(),
        version: "v1".into(),
        context: context.into(),
        deployed: true,
        main_vhosts: vec!["*".into()],
        sandbox_vhost: None,
        main: Upstream {
            tls: false,
            host: "backend".into(),
            port: 80,
            base_path: String::new(),
            host_rewrite: true,
            connect_timeout: None,
        },
        sandbox: None,
        policies: vec![],
        resilience: Resilience::default(),
        operations,
    }
}

/// Whether the two single-operation APIs overlap, checked both ways round (the relation is
/// symmetric).
fn overlaps(ctx_a: &str, a: Operation, ctx_b: &str, b: Operation) -> bool {
    let (x, y) = (api("a", ctx_a, vec![a]), api("b", ctx_b, vec![b]));
    let there = first_overlap(&x, &y).is_some();
    assert_eq!(
        there,
        first_overlap(&y, &x).is_some(),
        "asymmetric for {ctx_a} vs {ctx_b}"
    );
    there
}

#[test]
fn the_same_method_and_full_path_on_a_shared_vhost_overlap() {
    assert!(overlaps("/shop", get("/items"), "/shop", get("/items")));
    assert!(overlaps("/shop", get("/items"), "/", get("/shop/items")));
    assert!(!overlaps("/shop", get("/items"), "/shop", op(Method::Post, "/items")));
    assert!(!overlaps("/shop", get("/items"), "/shop", get("/orders")));
    assert!(!overlaps("/shop", get("/items"), "/shopping", get("/items")));
}

#[test]
fn wildcards_capture_what_is_below_them() {
    // A context that is a prefix of the other's paths, with a wildcard: it captures them.
    assert!(overlaps("/shop", get("/*"), "/shop/admin", get("/users")));
    assert!(overlaps("/shop", get("/admin/*"), "/shop/admin", get("/")));
    assert!(overlaps("/", get("/*"), "/anything", get("/x/{id}")));
    // The bare prefix is matched too.
    assert!(overlaps("/shop", get("/a/*"), "/shop", get("/a")));
    // A segment prefix only: `/shop/a*` is not below `/shop/a/*`.
    assert!(!overlaps("/shop", get("/a/*"), "/shop", get("/ab")));
    assert!(!overlaps("/shop", get("/*"), "/shopping", get("/*")));
    // Literal paths of a prefix context do not reach below it.
    assert!(!overlaps("/shop", get("/admin"), "/shop/admin", get("/users")));
}

#[test]
fn parameters_match_one_segment_or_part_of_one() {
    assert!(overlaps("/c", get("/u/{id}"), "/c", get("/u/42")));
    assert!(overlaps("/c", get("/u/{id}"), "/c/u", get("/{other}")));
    assert!(!overlaps("/c", get("/u/{id}"), "/c", get("/u/42/x")));
    assert!(!overlaps("/c", get("/u/{id}"), "/c", get("/u")));
    assert!(overlaps("/c", get("/v{n}/x"), "/c", get("/v1/x")));
    assert!(!overlaps("/c", get("/v{n}/x"), "/c", get("/w1/x")));
    assert!(
        !overlaps("/c", get("/v{n}"), "/c", get("/v")),
        "a parameter is never empty"
    );
    assert!(overlaps("/c", get("/{a}.json"), "/c", get("/v{b}")));
    assert!(!overlaps("/c", get("/{a}.json"), "/c", get("/{b}.xml")));
}

#[test]
fn trailing_slashes_and_exact_paths_as_the_routes_match_them() {
    // A literal matches with and without its slash; `type: Exact` only as written.
    assert!(overlaps("/c", get("/a"), "/c", exact("/a/")));
    assert!(!overlaps("/c", exact("/a"), "/c", exact("/a/")));
    assert!(overlaps("/c", exact("/a"), "/c", get("/a")));
    // `/` is the context with or without its slash.
    assert!(overlaps("/c", get("/"), "/", get("/c")));
    assert!(overlaps("/c", get("/"), "/", exact("/c/")));
    assert!(!overlaps("/c", get("/"), "/", get("/c/x")));
    assert!(overlaps("/", get("/"), "/", get("/*")));
}

#[test]
fn only_apis_sharing_a_virtual_host_compete() {
    let a = api("a", "/shop", vec![get("/items")]);
    let mut b = api("b", "/shop", vec![get("/items")]);
    b.main_vhosts = vec!["api.example.com".into()];
    assert_eq!(first_overlap(&a, &b), None);
    b.main_vhosts = vec!["other.example".into(), "*".into()];
    assert!(first_overlap(&a, &b).is_some());
    // Hosts compare without regard to case; a sandbox vhost counts when there is a sandbox.
    let mut c = a.clone();
    c.main_vhosts = vec!["API.Example.com".into()];
    b.main_vhosts = vec!["x".into()];
    b.sandbox_vhost = Some("api.example.com".into());
    assert_eq!(first_overlap(&c, &b), None, "no sandbox upstream, no sandbox routes");
    b.sandbox = Some(b.main.clone());
    assert!(first_overlap(&c, &b).is_some());
}

#[test]
fn exact_header_values_that_differ_keep_operations_apart() {
    let v = |value: &str| with_header(get("/items"), "x-version", value, false);
    assert!(!overlaps("/shop", v("1"), "/shop", v("2")));
    assert!(overlaps("/shop", v("1"), "/shop", v("1")));
    assert!(
        overlaps("/shop", v("1"), "/shop", get("/items")),
        "the header route takes the other's requests"
    );
    assert!(overlaps(
        "/shop",
        v("1"),
        "/shop",
        with_header(get("/items"), "x-version", "^2$", true)
    ));
    assert!(overlaps(
        "/shop",
        v("1"),
        "/shop",
        with_header(get("/items"), "x-tenant", "2", false)
    ));
}

#[test]
fn undeployed_apis_have_no_routes() {
    let a = api("a", "/shop", vec![get("/items")]);
    let mut b = a.clone();
    b.deployed = false;
    assert_eq!(first_overlap(&a, &b), None);
}

#[test]
fn the_first_overlapping_pair_is_reported_with_full_templates() {
    let a = api("a", "/shop", vec![get("/free"), get("/admin/{id}"), get("/*")]);
    let b = api("b", "/shop/admin", vec![op(Method::Post, "/x"), get("/7")]);
    assert_eq!(
        first_overlap(&a, &b),
        Some(Overlap {
            vhost: "*".into(),
            method: Method::Get,
            path: "/shop/admin/{id}".into(),
            other_path: "/shop/admin/7".into(),
        })
    );
}
