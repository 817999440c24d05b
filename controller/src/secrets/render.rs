//! Rendering the templates in an API document's `spec` at deploy time: every string value holding
//! `{{` is parsed and rendered; every problem is reported with the field it is in
//! (`spec.upstream.main.url`). The stored document stays the source; only the rendered copy is
//! validated and translated.

use serde_json::Value;
use tollgate_model::{Api, FieldError, RestApiDoc, VhostDefaults};
use tollgate_policies::Catalogue;

use super::template::{Lookup, Template, Used, has_action};
use crate::secret::Secret;

/// A rendered document and the secret values in it (to redact wherever it might be shown).
#[derive(Debug)]
pub struct Rendered {
    pub doc: RestApiDoc,
    pub secret_values: Vec<Secret<String>>,
}

/// Renders the templates in `doc.spec`; a document with none comes back as it was.
pub fn render(doc: &RestApiDoc, lookup: &dyn Lookup) -> Result<Rendered, Vec<FieldError>> {
    let mut spec = serde_json::to_value(&doc.spec).map_err(|e| encode_error(&e))?;
    let mut used = Used::default();
    let mut errors = Vec::new();
    let mut touched = false;
    walk(&mut spec, "spec", &mut |path, s| {
        if !has_action(s) {
            return None;
        }
        touched = true;
        match Template::parse(s).and_then(|t| t.render(lookup, &mut used)) {
            Ok(out) => Some(out),
            Err(e) => {
                errors.push(FieldError {
                    field: path.to_string(),
                    message: e.to_string(),
                });
                None
            }
        }
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    if !touched {
        return Ok(Rendered {
            doc: doc.clone(),
            secret_values: Vec::new(),
        });
    }
    let spec = serde_json::from_value(spec).map_err(|e| encode_error(&e))?;
    Ok(Rendered {
        doc: RestApiDoc { spec, ..doc.clone() },
        secret_values: used.secret_values,
    })
}

/// Renders the templates of `doc` and resolves the result (the document the translator works
/// from); the messages of a rendering that does not validate never hold a secret value.
pub fn resolve(
    doc: &RestApiDoc,
    (vhosts, catalogue): (&VhostDefaults, &Catalogue),
    lookup: &dyn Lookup,
) -> Result<Api, Vec<FieldError>> {
    let rendered = render(doc, lookup)?;
    tollgate_model::resolve(&rendered.doc, vhosts, catalogue).map_err(|mut errors| {
        for e in &mut errors {
            e.message = redact(&e.message, &rendered.secret_values);
        }
        errors
    })
}

/// The ids of the secrets a stored document's `spec` names (`{{ secret "id" }}`).
pub fn secret_refs(spec: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    let mut spec = spec.clone();
    walk(&mut spec, "spec", &mut |_, s| {
        if has_action(s)
            && let Ok(t) = Template::parse(s)
        {
            ids.extend(t.secret_ids());
        }
        None
    });
    ids.sort();
    ids.dedup();
    ids
}

/// Replaces every occurrence of a value in `values` in `text` with `[redacted]`.
pub fn redact(text: &str, values: &[Secret<String>]) -> String {
    let mut out = text.to_string();
    // Longest first, so a value that contains another is replaced whole.
    let mut values: Vec<&str> = values
        .iter()
        .map(|v| v.expose().as_str())
        .filter(|v| !v.is_empty())
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        out = out.replace(v, "[redacted]");
    }
    out
}

fn encode_error(e: &serde_json::Error) -> Vec<FieldError> {
    vec![FieldError {
        field: "spec".into(),
        message: format!("rendered document does not fit the schema: {e}"),
    }]
}

/// Calls `f` on every string in `v` with its field path; a `Some` replaces the string.
fn walk(v: &mut Value, path: &str, f: &mut dyn FnMut(&str, &str) -> Option<String>) {
    match v {
        Value::String(s) => {
            if let Some(new) = f(path, s) {
                *s = new;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), f);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                walk(item, &format!("{path}.{k}"), f);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
