//! `jwt-auth` v1: WSO2's user parameters, and the checks its schema cannot express (issuers that
//! name configured key managers, claim and header names Envoy can use).
//!
//! The system parameters (key managers, cache, header, failure status, error body) come from the
//! configuration file's `[jwt]` section, not from documents.

use serde_json::Value;

use super::{GatewayFacts, Param, ParamError, Schema, StrRule, error, optional};

/// The policy's name.
pub const JWT_AUTH: &str = "jwt-auth";

/// A claim value or audience: any string up to this many bytes.
const VALUE_MAX: usize = 4096;

/// WSO2's `jwt-auth` user parameters (`policies/jwt-auth/policy-definition.yaml`).
pub(super) const PARAMS_V1: &[Param] = &[
    optional("issuers", Schema::Array(&Schema::Str(StrRule::MaxBytes(VALUE_MAX)))),
    optional("audiences", Schema::Array(&Schema::Str(StrRule::MaxBytes(VALUE_MAX)))),
    optional(
        "requiredScopes",
        Schema::Array(&Schema::Str(StrRule::MaxBytes(VALUE_MAX))),
    ),
    optional(
        "requiredClaims",
        Schema::Map(&Schema::Str(StrRule::MaxBytes(VALUE_MAX))),
    ),
    optional("claimMappings", Schema::Map(&Schema::Str(StrRule::Token))),
    optional("authHeaderPrefix", Schema::Str(StrRule::Token)),
    optional("userIdClaim", Schema::Str(StrRule::MaxBytes(VALUE_MAX))),
];

/// The checks past the schema: `params` already has the schema's shape.
pub(super) fn check(params: &Value, facts: &GatewayFacts, out: &mut Vec<ParamError>) {
    let strings = |name: &str| -> Vec<(String, String)> {
        match params.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((format!("{name}[{i}]"), v.as_str()?.to_string())))
                .collect(),
            _ => vec![],
        }
    };
    if facts.key_managers.is_empty() {
        let msg = "No JWT key manager is configured on this gateway (jwt.key_managers in its configuration)";
        out.push(error("issuers", msg.to_string()));
    }
    for (at, name) in strings("issuers") {
        if !facts.key_managers.contains(&name) {
            let known = facts.key_managers.join(", ");
            out.push(error(
                &at,
                format!("Unknown key manager '{}' (configured: {known})", name.escape_debug()),
            ));
        }
    }
    // The token's header and scheme are read by every route's `jwt_authn` alike (the listener's
    // configuration): a route cannot take another scheme without changing every listener.
    if let Some(prefix) = params.get("authHeaderPrefix").and_then(Value::as_str)
        && prefix != facts.auth_header_scheme
    {
        let msg = format!(
            "authHeaderPrefix '{prefix}' differs from this gateway's scheme '{}' (jwt.auth_header_scheme)",
            facts.auth_header_scheme
        );
        out.push(error("authHeaderPrefix", msg));
    }
    for (at, aud) in strings("audiences") {
        if aud.is_empty() {
            out.push(error(&at, "Value must not be empty".to_string()));
        }
    }
    for (at, scope) in strings("requiredScopes") {
        if scope.is_empty() || scope.contains(char::is_whitespace) {
            out.push(error(
                &at,
                "A scope must be non-empty and contain no whitespace".to_string(),
            ));
        }
    }
    check_claim_names(params.get("requiredClaims"), "requiredClaims", &[], out);
    // A mapped claim is read by Envoy's `%DYNAMIC_METADATA(ns:key)%` formatter, where `:`, `(`,
    // `)` and `%` are syntax.
    check_claim_names(params.get("claimMappings"), "claimMappings", &[':', '%', '(', ')'], out);
    if let Some(Value::Object(map)) = params.get("claimMappings") {
        for (claim, header) in map {
            let header = header.as_str().unwrap_or_default().to_ascii_lowercase();
            if header == "host" || header.starts_with("x-envoy-") || header.starts_with(crate::IDENTITY_HEADER_PREFIX) {
                let msg = format!("Header '{header}' cannot carry a claim (reserved)");
                out.push(error(&format!("claimMappings.{claim}"), msg));
            }
        }
    }
}

/// Claim names are keys of Envoy's metadata paths: non-empty, no control characters, none of
/// `forbidden`.
fn check_claim_names(map: Option<&Value>, name: &str, forbidden: &[char], out: &mut Vec<ParamError>) {
    let Some(Value::Object(map)) = map else { return };
    for claim in map.keys() {
        if claim.is_empty() || claim.contains(forbidden) || claim.chars().any(char::is_control) {
            let also: String = forbidden.iter().map(|c| format!("'{c}', ")).collect();
            let msg = format!(
                "Invalid claim name '{}' (must be non-empty, without {also}or control characters)",
                claim.escape_debug()
            );
            out.push(error(&format!("{name}.{claim}"), msg));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{Catalogue, GatewayFacts};

    fn errors(km: &[&str], params: serde_json::Value) -> Vec<(String, String)> {
        let facts = GatewayFacts {
            key_managers: km.iter().map(|s| s.to_string()).collect(),
            auth_header_scheme: "Bearer".into(),
        };
        let cat = Catalogue::for_gateway(facts);
        let def = cat.lookup("jwt-auth", "v1").expect("jwt-auth v1");
        def.validate_params(Some(&params))
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    }

    #[test]
    fn accepts_wso2_parameters() {
        let params = json!({
            "issuers": ["idp"],
            "audiences": ["orders", "https://api.example/"],
            "requiredScopes": ["orders:read", "admin"],
            "requiredClaims": {"tenant": "acme"},
            "claimMappings": {"sub": "X-User-Id", "email": "x-email"},
            "authHeaderPrefix": "Bearer",
            "userIdClaim": "sub",
        });
        assert_eq!(errors(&["idp", "other"], params), vec![]);
        assert_eq!(errors(&["idp"], json!({})), vec![]);
    }

    #[test]
    fn issuers_must_name_configured_key_managers() {
        let e = errors(&["idp"], json!({"issuers": ["idp", "nope"]}));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "issuers[1]");
        assert!(e[0].1.contains("Unknown key manager 'nope'"), "{e:?}");
        // Without any key manager configured, the policy cannot be used at all.
        let e = errors(&[], json!({}));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "issuers");
    }

    #[test]
    fn refuses_what_envoy_cannot_use() {
        let e = errors(
            &["idp"],
            json!({
                "requiredScopes": ["a b", ""],
                "audiences": [""],
                "requiredClaims": {"https://example.com/role": "x", "": "y"},
                "claimMappings": {"sub": "host", "iss": "x-envoy-original-path", "email": "x-tollgate-app", "a:b": "x-ab"},
            }),
        );
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "audiences[0]",
                "requiredScopes[0]",
                "requiredScopes[1]",
                "requiredClaims.",
                "claimMappings.a:b",
                "claimMappings.email",
                "claimMappings.iss",
                "claimMappings.sub",
            ],
            "{e:?}"
        );
    }

    #[test]
    fn schema_shapes_are_checked() {
        let e = errors(
            &["idp"],
            json!({"claimMappings": {"sub": "bad header"}, "requiredClaims": []}),
        );
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["requiredClaims", "claimMappings.sub"], "{e:?}");
        let e = errors(&["idp"], json!({"authHeaderPrefix": "JWT"}));
        assert_eq!(e[0].0, "authHeaderPrefix", "{e:?}");
        let e = errors(&["idp"], json!({"issuer": "idp"}));
        assert_eq!(e[0].1, "Unknown parameter 'issuer'");
    }
}
