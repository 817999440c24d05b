//! The part of `request-rewrite` that Envoy's route configuration cannot express and the ext_authz
//! service does instead: `methodRewrite` (neither a route nor the header mutation filter may change
//! `:method`) and the query rules that edit a value in place (`Append`, `ReplaceRegexMatch`; Envoy's
//! query mutations only set, add or remove whole parameters).
//!
//! A route that needs it carries one context extension, [`crate::ctx::REWRITE`], whose value is
//! the JSON object `{"method": "POST", "query": [<rule>, ...]}` (either key may be absent) with the
//! policy's own, already validated rule objects. When any query rule needs the service, all of
//! them go there, so that they still apply in the order written.

use serde_json::{Map, Value};

/// The query actions only the service can do.
pub const IN_PLACE: &[&str] = &["Append", "ReplaceRegexMatch"];

/// The query rules of `params` (a `request-rewrite`'s).
fn rules(params: &Value) -> &[Value] {
    params
        .pointer("/queryRewrite/rules")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Whether the query rules of `params` go to the service (one of them edits a value in place).
pub fn query_needs_service(params: &Value) -> bool {
    rules(params).iter().any(|r| {
        r.get("action")
            .and_then(Value::as_str)
            .is_some_and(|a| IN_PLACE.contains(&a))
    })
}

/// The route's [`crate::ctx::REWRITE`] line for a `request-rewrite`'s `params`, or `None` when
/// Envoy does all of it.
pub fn line(params: &Value) -> Option<String> {
    let mut out = Map::new();
    if let Some(m) = params.get("methodRewrite").and_then(Value::as_str) {
        out.insert("method".into(), Value::from(m));
    }
    if query_needs_service(params) {
        out.insert("query".into(), Value::Array(rules(params).to_vec()));
    }
    (!out.is_empty()).then(|| Value::Object(out).to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_what_envoy_cannot_do_makes_a_line() {
        let native = json!({"queryRewrite": {"rules": [{"action": "Add", "name": "a", "value": "1"}]},
                            "pathRewrite": {"type": "ReplaceFullPath", "replaceFullPath": "/x"}});
        assert_eq!(line(&native), None);
        assert!(!query_needs_service(&native));
        assert_eq!(
            line(&json!({"methodRewrite": "POST"})).as_deref(),
            Some(r#"{"method":"POST"}"#)
        );
        let mixed = json!({"methodRewrite": "PUT", "queryRewrite": {"rules": [
            {"action": "Remove", "name": "a"}, {"action": "Append", "name": "b", "value": "x", "separator": ","}]}});
        assert!(query_needs_service(&mixed));
        let parsed: Value = serde_json::from_str(&line(&mixed).unwrap()).unwrap();
        assert_eq!(parsed["method"], "PUT");
        assert_eq!(parsed["query"], mixed["queryRewrite"]["rules"]);
    }
}
