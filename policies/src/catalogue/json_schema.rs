//! The catalogue's parameter schemas as JSON Schema (draft 2020-12), for `GET /policies`.
//!
//! One mapping from [`Schema`] and [`StrRule`], exhaustive so that a new rule cannot be listed
//! without saying what it allows. Where JSON Schema cannot say a rule exactly (an RE2 regex Envoy
//! accepts, byte lengths, rules across parameters) the schema is looser and the rule is named in
//! `description`; the server's validation stays the authority.

use serde_json::{Map, Value, json};

use super::{Param, PolicyDef, Schema, StrRule};

/// An RFC 9110 token, as a JSON Schema (ECMA-262) pattern.
const TOKEN: &str = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";

// === impl PolicyDef ===

impl PolicyDef {
    /// The JSON Schema of the policy's `params`.
    pub fn json_schema(&self) -> Value {
        let mut schema = object(self.params);
        if let (Some(map), Some(rules)) = (schema.as_object_mut(), self.rules_text()) {
            map.insert("description".into(), Value::String(rules.into()));
        }
        schema
    }

    /// The rules across parameters, in words (JSON Schema cannot say them simply).
    fn rules_text(&self) -> Option<&'static str> {
        match (self.name, self.version) {
            ("cors", "v1") => Some(
                "With allowCredentials true, no list may contain \"*\". allowedOrigins and \
                 allowedMethods need at least one item.",
            ),
            ("set-headers" | "remove-headers", "v1") => {
                Some("At least one of requestHeaders and responseHeaders, each with at least one item.")
            }
            ("request-rewrite", "v1") => Some("At least one of pathRewrite, queryRewrite and methodRewrite."),
            _ => None,
        }
    }
}

fn object(params: &[Param]) -> Value {
    let properties: Map<String, Value> = params.iter().map(|p| (p.name.to_string(), schema(&p.schema))).collect();
    let required: Vec<&str> = params.iter().filter(|p| p.required).map(|p| p.name).collect();
    let mut out = json!({"type": "object", "properties": properties, "additionalProperties": false});
    if !required.is_empty() {
        out["required"] = json!(required);
    }
    out
}

fn schema(s: &Schema) -> Value {
    match s {
        Schema::Str(rule) => string(rule),
        Schema::Bool => json!({"type": "boolean"}),
        Schema::Int { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Schema::Array(item) => json!({"type": "array", "items": schema(item)}),
        Schema::Object(params) => object(params),
        Schema::Map(item) => json!({"type": "object", "additionalProperties": schema(item)}),
        Schema::Custom(_) => json!({"description": "Checked on deploy by rules of the policy's own."}),
        Schema::Checked(inner, _) => {
            let mut out = schema(inner);
            out["description"] = json!("Further rules across its fields are checked on deploy.");
            out
        }
    }
}

fn string(rule: &StrRule) -> Value {
    match rule {
        StrRule::Token => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}),
        StrRule::OneOf(values) => json!({"type": "string", "enum": values}),
        StrRule::ResponseHeaderName => json!({
            "type": "string",
            "pattern": TOKEN,
            "not": {"pattern": "^[Hh][Oo][Ss][Tt]$"},
        }),
        StrRule::HeaderValue => json!({"type": "string", "pattern": "^[^\\u0000\\r\\n]*$"}),
        StrRule::MaxBytes(max) => json!({
            "type": "string",
            "maxLength": max,
            "description": format!("At most {max} bytes of UTF-8."),
        }),
        StrRule::CookieName => json!({"type": "string", "pattern": "^([A-Za-z0-9!#$%&'*+.^_`|~-]+)?$"}),
        StrRule::Custom(_) => {
            json!({"type": "string", "description": "A rule of the policy's own, checked on deploy."})
        }
        StrRule::Re2(max) => json!({
            "type": "string",
            "minLength": 1,
            "maxLength": max,
            "format": "regex",
            "description": "An RE2 regular expression within Envoy's limits.",
        }),
        StrRule::CorsOrigin => json!({
            "type": "string",
            "minLength": 1,
            "maxLength": 2048,
            "description": "\"*\", an exact origin (scheme://host[:port]), or an RE2 regex matched \
                            against the whole Origin header.",
        }),
        StrRule::CorsHeader => json!({
            "type": "string",
            "maxLength": 256,
            "anyOf": [{"const": "*"}, {"pattern": TOKEN}],
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Catalogue;

    fn schema_of(name: &str) -> serde_json::Value {
        Catalogue::builtin().lookup(name, "v1").unwrap().json_schema()
    }

    #[test]
    fn objects_list_properties_required_and_nothing_else() {
        let s = schema_of("api-key-auth");
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["key", "in"]));
        assert_eq!(s["properties"]["in"]["enum"], json!(["header", "query"]));
        assert_eq!(s["properties"]["stripKey"], json!({"type": "boolean"}));
    }

    #[test]
    fn nested_arrays_objects_and_ranges_are_mapped() {
        let s = schema_of("respond");
        assert_eq!(
            s["properties"]["statusCode"],
            json!({"type": "integer", "minimum": 200, "maximum": 599})
        );
        let header = &s["properties"]["headers"]["items"];
        assert_eq!(header["required"], json!(["name", "value"]));
        assert_eq!(header["properties"]["name"]["not"]["pattern"], "^[Hh][Oo][Ss][Tt]$");
        assert_eq!(s["properties"]["body"]["maxLength"], 4096);
    }

    #[test]
    fn cors_says_its_wso2_limits() {
        let s = schema_of("cors");
        assert_eq!(s["required"], json!(["allowedOrigins"]));
        assert_eq!(
            s["properties"]["maxAge"],
            json!({"type": "integer", "minimum": 0, "maximum": 86400})
        );
        assert_eq!(s["properties"]["allowedOrigins"]["items"]["maxLength"], 2048);
        assert!(s["description"].as_str().unwrap().contains("allowCredentials"));
        let methods = &s["properties"]["allowedMethods"]["items"]["enum"];
        assert_eq!(methods.as_array().unwrap().len(), 8);
    }
}
