//! The ext_authz wire walker against the protobuf encoder: a `CheckRequest` is built from the input
//! (context extensions, headers in `headers` or `header_map`, path and unrelated fields), encoded by
//! prost the way Envoy's encoder would, and the walker (`tollgate_policies::authz::wire`) must read
//! back exactly the values that went in: the four `tollgate.*` extensions, the path and the header
//! the route names, compared ASCII case-insensitively.
//!
//! Input: any bytes, read as a description of the request (`arbitrary`).

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tollgate_policies::authz::wire;
use tollgate_proto::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};

/// Context-extension and header names: the ones the walker looks for, case variants, and others.
const NAMES: &[&str] = &[
    "tollgate.api",
    "tollgate.key_in",
    "tollgate.key_name",
    "tollgate.strip",
    "tollgate.apix",
    "x-api-key",
    "X-Api-Key",
    "key",
    "accept",
    "",
];

fn name(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(if u.ratio(3, 4)? {
        u.choose(NAMES)?.to_string()
    } else {
        u.arbitrary()?
    })
}

fn pairs(u: &mut Unstructured<'_>) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for _ in 0..u.int_in_range(0..=6)? {
        out.insert(name(u)?, u.arbitrary()?);
    }
    Ok(out)
}

/// The request, and the header name to look up.
fn request(u: &mut Unstructured<'_>) -> Result<(CheckRequest, String)> {
    let context_extensions = pairs(u)?;
    let headers = pairs(u)?;
    let header_map = if u.arbitrary()? {
        let mut entries = Vec::new();
        for _ in 0..u.int_in_range(0..=4)? {
            entries.push(HeaderValue {
                key: name(u)?,
                value: u.arbitrary()?,
                raw_value: u.arbitrary()?,
            });
        }
        Some(HeaderMap { headers: entries })
    } else {
        None
    };
    let http = attribute_context::HttpRequest {
        id: u.arbitrary()?,
        method: u.arbitrary()?,
        headers,
        header_map,
        path: u.arbitrary()?,
        host: u.arbitrary()?,
        size: u.arbitrary()?,
        body: u.arbitrary()?,
        raw_body: u.arbitrary()?,
        ..Default::default()
    };
    let attributes = AttributeContext {
        source: u.arbitrary::<bool>()?.then(Default::default),
        request: Some(attribute_context::Request {
            http: Some(http),
            ..Default::default()
        }),
        context_extensions,
        ..Default::default()
    };
    Ok((
        CheckRequest {
            attributes: Some(attributes),
        },
        name(u)?,
    ))
}

fuzz_target!(|data: &[u8]| {
    let Ok((req, lookup)) = request(&mut Unstructured::new(data)) else {
        return;
    };
    let encoded = req.encode_to_vec();
    let facts = wire::facts(&encoded).expect("an encoded request is well formed");
    let attributes = req.attributes.as_ref().expect("built with attributes");
    let ext = |k: &str| attributes.context_extensions.get(k).map(String::as_bytes);
    assert_eq!(facts.api, ext("tollgate.api"));
    assert_eq!(facts.key_in, ext("tollgate.key_in"));
    assert_eq!(facts.key_name, ext("tollgate.key_name"));
    assert_eq!(facts.strip, ext("tollgate.strip"));

    let http = attributes
        .request
        .as_ref()
        .and_then(|r| r.http.as_ref())
        .expect("built with http");
    let wire_http = facts.http.expect("the walker finds the HTTP request");
    // An empty string is not on the wire, so it reads as absent.
    let path = Some(http.path.as_bytes()).filter(|p| !p.is_empty());
    assert_eq!(wire::path(wire_http), path);

    let mut candidates: Vec<&[u8]> = http
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(&lookup))
        .map(|(_, v)| v.as_bytes())
        .collect();
    for h in http.header_map.iter().flat_map(|m| &m.headers) {
        if h.key.eq_ignore_ascii_case(&lookup) {
            candidates.push(if h.value.is_empty() {
                &h.raw_value
            } else {
                h.value.as_bytes()
            });
        }
    }
    let found = wire::header(wire_http, lookup.as_bytes());
    match candidates.as_slice() {
        [] => assert_eq!(found, None, "no header is named {lookup:?}"),
        [only] => assert_eq!(found, Some(*only), "header {lookup:?}"),
        // Several names equal but for case (Envoy lower-cases them): any one of them.
        many => assert!(found.is_some_and(|f| many.contains(&f)), "header {lookup:?}"),
    }
});
