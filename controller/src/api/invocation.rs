//! How to call an API with a credential: the `invocation` object of the answers that hand out a
//! key or a subscription token (shown once), so a developer can call the API straight away.

use serde_json::{Value, json};

use super::AppState;
use crate::app::ApiEntry;

/// Which credential an answer hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An API key (`api-key-auth`).
    ApiKey,
    /// A subscription token (`subscription-validation`).
    Subscription,
}

/// The `subscription-validation` header when a document names none (WSO2's default).
pub const DEFAULT_SUBSCRIPTION_HEADER: &str = "Subscription-Key";

/// The parameters of the first policy named `name` on the API or any of its operations.
fn policy<'a>(api: &'a ApiEntry, name: &str) -> Option<&'a Value> {
    api.api
        .policies
        .iter()
        .chain(api.api.operations.iter().flat_map(|o| o.policies.iter()))
        .find(|p| p.name == name)
        .map(|p| &p.params)
}

/// Where the credential goes: `(header, query parameter)`.
fn placement(api: &ApiEntry, credential: Credential) -> (Option<String>, Option<String>) {
    match credential {
        Credential::ApiKey => {
            let params = policy(api, "api-key-auth");
            let name = params
                .and_then(|p| p.get("key"))
                .and_then(Value::as_str)
                .unwrap_or("api-key")
                .to_string();
            match params.and_then(|p| p.get("in")).and_then(Value::as_str) {
                Some("query") => (None, Some(name)),
                _ => (Some(name), None),
            }
        }
        Credential::Subscription => {
            let header = policy(api, "subscription-validation")
                .and_then(|p| p.get("subscriptionKeyHeader"))
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_SUBSCRIPTION_HEADER);
            (Some(header.to_string()), None)
        }
    }
}

/// The `invocation` object: gateway, API, where the credential goes, its value when `plain` is
/// given (only in the answer that creates it), the URLs and a `curl` line.
pub fn invocation(s: &AppState, api: &ApiEntry, credential: Credential, plain: Option<&str>) -> Value {
    let (header, query) = placement(api, credential);
    let vhost = api.api.main_vhosts.first().map(String::as_str).unwrap_or("*");
    let concrete = !vhost.contains('*');
    let base_url = match &s.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None if concrete => format!("http://{vhost}:{}", s.http_port),
        None => format!("http://localhost:{}", s.http_port),
    };
    let base_path = api.api.context.trim_end_matches('/').to_string();
    let full_url = format!("{base_url}{base_path}");
    let value = plain.unwrap_or("<credential>");
    let mut curl = String::from("curl");
    if concrete && !base_url.contains(vhost) {
        curl.push_str(&format!(" -H 'Host: {vhost}'"));
    }
    match (&header, &query) {
        (Some(h), _) => curl.push_str(&format!(" -H '{h}: {value}' '{full_url}/'")),
        (None, Some(q)) => curl.push_str(&format!(" '{full_url}/?{q}={value}'")),
        (None, None) => curl.push_str(&format!(" '{full_url}/'")),
    }
    let needed = match credential {
        Credential::ApiKey => policy(api, "api-key-auth").is_some(),
        Credential::Subscription => policy(api, "subscription-validation").is_some(),
    };
    let mut v = json!({
        "gatewayType": "envoy",
        "apiName": api.api.display_name,
        "apiVersion": api.api.version,
        // A subscription token is presented like a key (WSO2's consumer model calls both API keys).
        "credentialType": "api-key",
        "credentialHeaderName": header,
        "baseUrl": base_url,
        "basePath": base_path,
        "fullUrl": full_url,
        "environment": "production",
        "curlExample": curl,
    });
    if let Some(q) = query {
        v["credentialQueryParam"] = json!(q);
    }
    if let Some(p) = plain {
        v["credentialValue"] = json!(p);
    }
    if !needed {
        v["note"] = json!("this API's routes do not check this credential yet (no policy asks for it)");
    }
    v
}
