use std::time::Instant;

use super::*;

const DOC: &str = "apiVersion: gateway.api-platform.wso2.com/v1
kind: RestApi
metadata: {name: files-v1}
spec:
  displayName: Files
  version: v1
  context: /files
  upstream: {main: {url: 'http://127.0.0.1:9000'}}
  operations: [{method: GET, path: /*}]
";

#[test]
fn a_document_reads_from_yaml_and_json() {
    let doc = document(DOC.as_bytes(), Syntax::Yaml).unwrap();
    assert_eq!(doc.metadata.name.as_deref(), Some("files-v1"));
    let json = serde_json::to_vec(&value(DOC.as_bytes(), Syntax::Yaml).unwrap()).unwrap();
    let again = document(&json, Syntax::Json).unwrap();
    assert_eq!(again.metadata.name.as_deref(), Some("files-v1"));
    // JSON is YAML too.
    assert_eq!(
        document(&json, Syntax::Yaml).unwrap().metadata.name.as_deref(),
        Some("files-v1")
    );
}

#[test]
fn the_content_type_picks_the_syntax() {
    assert_eq!(Syntax::of_content_type("application/json"), Syntax::Json);
    assert_eq!(Syntax::of_content_type("Application/JSON; charset=utf-8"), Syntax::Json);
    assert_eq!(Syntax::of_content_type("application/yaml"), Syntax::Yaml);
    assert_eq!(Syntax::of_content_type(""), Syntax::Yaml);
}

#[test]
fn a_document_that_is_no_mapping_is_refused() {
    for body in ["", "  \n", "- a\n- b\n", "just text"] {
        let e = document(body.as_bytes(), Syntax::Yaml).unwrap_err();
        assert!(matches!(e, ParseError::NotMapping), "{body:?}: {e}");
    }
    assert!(matches!(document(b"[1]", Syntax::Json), Err(ParseError::NotMapping)));
    assert!(matches!(
        document(b"{\"spec\": 3}", Syntax::Json),
        Err(ParseError::Schema(_))
    ));
}

#[test]
fn malformed_input_names_its_syntax() {
    let e = document(b"{\"a\":", Syntax::Json).unwrap_err();
    assert!(e.to_string().starts_with("failed to parse JSON"), "{e}");
    let e = document(b"a: [b\n", Syntax::Yaml).unwrap_err();
    assert!(e.to_string().starts_with("failed to parse YAML"), "{e}");
}

#[test]
fn deep_nesting_is_refused_at_the_bound_without_building_the_tree() {
    let n = 100_000;
    let flow = format!("a: {}{}", "{a: ".repeat(n), "}".repeat(n));
    // Block nesting costs a line per level, so a body under 1 MiB holds about 1,400 levels.
    let block: String = (0..1_400).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    let json = format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    let lists = format!("{}{}", "[".repeat(n), "]".repeat(n));
    for (what, body, syntax) in [
        ("flow maps", flow.as_str(), Syntax::Yaml),
        ("block maps", block.as_str(), Syntax::Yaml),
        ("flow lists", lists.as_str(), Syntax::Yaml),
        ("JSON objects", json.as_str(), Syntax::Json),
        ("JSON arrays", lists.as_str(), Syntax::Json),
    ] {
        let started = Instant::now();
        let e = value(body.as_bytes(), syntax).unwrap_err();
        // Not a timing assertion: printed so a regression is easy to see in the test log.
        println!("{what}: refused in {:?}: {e}", started.elapsed());
    }
}

#[test]
fn nesting_up_to_the_bound_is_accepted() {
    let n = MAX_DEPTH - 2;
    let flow = format!("{}1{}", "{a: ".repeat(n), "}".repeat(n));
    assert!(value(flow.as_bytes(), Syntax::Yaml).is_ok());
}

#[test]
fn an_alias_bomb_is_refused() {
    // Nine levels of ten aliases each would expand to a billion scalars.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    assert!(bomb.len() < 1024);
    let e = value(bomb.as_bytes(), Syntax::Yaml).unwrap_err();
    assert!(matches!(e, ParseError::Yaml(_)), "{e}");
}

#[test]
fn a_few_aliases_still_work() {
    let v = value(b"base: &b {x: 1}\nother: *b\n", Syntax::Yaml).unwrap();
    assert_eq!(v["other"]["x"], 1);
}

#[test]
fn too_many_events_are_refused() {
    let wide: String = (0..MAX_EVENTS).map(|i| format!("k{i}: v\n")).collect();
    assert!(matches!(value(wide.as_bytes(), Syntax::Yaml), Err(ParseError::Yaml(_))));
}

#[test]
fn numbers_out_of_range_are_refused_in_json() {
    assert!(matches!(
        value(b"{\"a\": 1e999}", Syntax::Json),
        Err(ParseError::Json(_))
    ));
}
