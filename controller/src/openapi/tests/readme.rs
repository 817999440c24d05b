//! The README's request bodies (each `curl -d '...'` to the management API, and each RestApi
//! document written with a `<<'YAML'` here-document) validate against the request schema the
//! document gives their operation, with a JSON Schema 2020-12 validator (OpenAPI 3.1's dialect),
//! and name no field the schema does not declare (the server ignores unknown fields, so a typo in
//! the README would otherwise go unnoticed).

use serde_json::{Value, json};

use super::{MANAGEMENT, doc};

const README: &str = include_str!("../../../../README.md");

/// One body the README sends: the operation it goes to and the body.
#[derive(Debug)]
struct Example {
    method: String,
    path: String,
    body: Value,
}

/// The README's lines with shell continuations (`\` at the end) joined.
fn commands() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in README.lines() {
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// `curl ... -d '<json>' <url>` commands to the management API.
fn curl_examples() -> Vec<Example> {
    let mut out = Vec::new();
    for cmd in commands().iter().filter(|c| c.contains("curl ")) {
        let Some(at) = cmd.find("-d '") else { continue };
        let rest = &cmd[at + 4..];
        let body: Value = serde_json::from_str(&rest[..rest.find('\'').unwrap()])
            .unwrap_or_else(|e| panic!("README body is not JSON ({e}): {cmd}"));
        let url = cmd
            .split_whitespace()
            .map(|t| t.replace("$M", MANAGEMENT))
            .find_map(|t| t.find(MANAGEMENT).map(|i| t[i..].trim_matches('\'').to_string()))
            .unwrap_or_else(|| panic!("no management URL in: {cmd}"));
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let method = words.windows(2).find(|w| w[0] == "-X").map_or("POST", |w| w[1]);
        out.push(Example {
            method: method.to_string(),
            path: url,
            body,
        });
    }
    out
}

/// RestApi documents the README writes with `cat > file <<'YAML'`; they go to `POST /rest-apis`.
fn yaml_examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = README.lines();
    while let Some(line) = lines.next() {
        if !line.contains("<<'YAML'") {
            continue;
        }
        let text: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "YAML").collect();
        let body: Value = serde_yaml::from_str(&text.join("\n")).unwrap();
        if body["kind"] == "RestApi" {
            out.push(Example {
                method: "POST".into(),
                path: format!("{MANAGEMENT}/rest-apis"),
                body,
            });
        }
    }
    out
}

/// The documented path template `path` falls under.
fn template<'d>(doc: &'d Value, path: &str) -> &'d str {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .find(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            ts.len() == segments.len()
                && ts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
        })
        .unwrap_or_else(|| panic!("README calls {path}, which the document does not describe"))
}

/// The JSON request schema of an operation.
fn request_schema(doc: &Value, method: &str, template: &str) -> Value {
    let op = &doc["paths"][template][method.to_lowercase()];
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {template} documents no JSON request body");
    schema.clone()
}

/// What the validator says about `body` against `schema` (whose `$ref`s point into the document).
fn violations(doc: &Value, schema: &Value, body: &Value) -> Vec<String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).unwrap();
    validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Fields of `body` that `schema` does not declare, looked for through `$ref`s, nullable
/// alternatives and arrays.
fn undeclared(doc: &Value, schema: &Value, body: &Value, at: &str, found: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return undeclared(doc, &doc["components"]["schemas"][name], body, at, found);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for alt in schema[key].as_array().into_iter().flatten() {
            if alt["type"] != "null" {
                undeclared(doc, alt, body, at, found);
            }
        }
    }
    match body {
        Value::Object(fields) => {
            let Some(props) = schema["properties"].as_object() else {
                return;
            };
            for (k, v) in fields {
                match props.get(k) {
                    Some(s) => undeclared(doc, s, v, &format!("{at}.{k}"), found),
                    None => found.push(format!("{at}.{k}")),
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, v) in items.iter().enumerate() {
                undeclared(doc, &schema["items"], v, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn the_readme_request_bodies_match_the_documented_schemas() {
    let doc = doc();
    let examples: Vec<Example> = curl_examples().into_iter().chain(yaml_examples()).collect();
    let mut covered = Vec::new();
    for ex in &examples {
        let template = template(&doc, &ex.path);
        let schema = request_schema(&doc, &ex.method, template);
        let errors = violations(&doc, &schema, &ex.body);
        assert!(
            errors.is_empty(),
            "{} {}: {} refused: {errors:?}",
            ex.method,
            ex.path,
            ex.body
        );
        let mut extra = Vec::new();
        undeclared(&doc, &schema, &ex.body, "", &mut extra);
        assert!(
            extra.is_empty(),
            "{} {}: undocumented fields {extra:?}",
            ex.method,
            ex.path
        );
        covered.push(format!("{} {template}", ex.method));
    }
    // The README's examples were found: plan, subscription, key and API creation at least.
    for op in [
        "POST /api/management/v1/subscription-plans",
        "POST /api/management/v1/subscriptions",
        "POST /api/management/v1/rest-apis/{handle}/api-keys",
        "POST /api/management/v1/rest-apis",
    ] {
        assert!(
            covered.iter().any(|c| c == op),
            "no README example for {op}: {covered:?}"
        );
    }
}

#[test]
fn the_schemas_refuse_what_the_server_refuses() {
    let doc = doc();
    let plan = request_schema(&doc, "POST", "/api/management/v1/subscription-plans");
    for bad in [
        json!({"throttleLimitCount": 3, "throttleLimitUnit": "Min"}),
        json!({"planName": "Gold", "throttleLimitCount": "three"}),
        json!({"planName": "Gold", "throttleLimitCount": 0}),
        json!({"planName": "Gold", "throttleLimitUnit": "Fortnight"}),
        json!(["planName"]),
    ] {
        assert!(!violations(&doc, &plan, &bad).is_empty(), "accepted {bad}");
    }
    let sub = request_schema(&doc, "POST", "/api/management/v1/subscriptions");
    assert!(
        !violations(&doc, &sub, &json!({"applicationId": "app-1"})).is_empty(),
        "apiId is required"
    );
    let key = request_schema(&doc, "POST", "/api/management/v1/rest-apis/{handle}/api-keys");
    let bad_unit = json!({"expiresIn": {"unit": "years", "duration": 1}});
    assert!(!violations(&doc, &key, &bad_unit).is_empty());
    let api = request_schema(&doc, "POST", "/api/management/v1/rest-apis");
    assert!(
        !violations(&doc, &api, &json!({"kind": "RestApi"})).is_empty(),
        "metadata and spec"
    );
    let mut typo = Vec::new();
    undeclared(
        &doc,
        &plan,
        &json!({"planName": "Gold", "throttleLimit": 3}),
        "",
        &mut typo,
    );
    assert_eq!(typo, [".throttleLimit"]);
}
