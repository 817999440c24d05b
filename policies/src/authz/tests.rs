use std::collections::HashMap;

use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context, check_response};

use super::*;

/// What the service answers to `req`, decoded.
fn answer(s: &AuthzService, req: &CheckRequest, now: u64) -> CheckResponse {
    CheckResponse::decode(s.respond(&req.encode_to_vec(), now)).unwrap()
}

fn request(ext: &[(&str, &str)], headers: &[(&str, &str)], path: &str) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            context_extensions: ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    path: path.into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<HashMap<_, _>>(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn service() -> AuthzService {
    let index = Arc::new(SharedIndex::default());
    index.store(KeyIndex::new([
        (
            digest_of(b"apip_good"),
            KeyRecord {
                api: "orders".into(),
                name: "ci-key".into(),
                application: Some("shop".into()),
                expires_at: None,
            },
        ),
        (
            digest_of(b"apip_old"),
            KeyRecord {
                api: "orders".into(),
                name: "old".into(),
                application: None,
                expires_at: Some(10),
            },
        ),
    ]));
    AuthzService::new(index)
}

const HEADER_ROUTE: &[(&str, &str)] = &[
    (ctx::API, "orders"),
    (ctx::KEY_IN, "header"),
    (ctx::KEY_NAME, "x-api-key"),
];
const QUERY_ROUTE: &[(&str, &str)] = &[(ctx::API, "orders"), (ctx::KEY_IN, "query"), (ctx::KEY_NAME, "key")];

fn allowed(r: &CheckResponse) -> bool {
    r.status.as_ref().map(|s| s.code) == Some(0)
}

#[test]
fn a_valid_key_in_the_header_or_query_is_allowed_and_named() {
    let s = service();
    let r = answer(
        &s,
        &request(HEADER_ROUTE, &[("x-api-key", "apip_good")], "/orders"),
        100,
    );
    assert!(allowed(&r));
    let Some(check_response::HttpResponse::OkResponse(ok)) = r.http_response else {
        panic!("ok response")
    };
    let headers: Vec<(String, String)> = ok
        .headers
        .iter()
        .map(|h| h.header.as_ref().map(|h| (h.key.clone(), h.value.clone())).unwrap())
        .collect();
    assert!(headers.contains(&(KEY_NAME_HEADER.into(), "ci-key".into())));
    assert!(headers.contains(&(APPLICATION_HEADER.into(), "shop".into())));
    assert!(
        !format!("{headers:?}").contains("apip_good"),
        "the key never goes upstream in our headers"
    );
    let r = answer(&s, &request(QUERY_ROUTE, &[], "/orders?a=1&key=apip_good"), 100);
    assert!(allowed(&r));
}

#[test]
fn every_refusal_is_the_same_401() {
    let s = service();
    let cases = [
        request(HEADER_ROUTE, &[], "/orders"),
        request(HEADER_ROUTE, &[("x-api-key", "wrong")], "/orders"),
        request(HEADER_ROUTE, &[("x-api-key", "apip_old")], "/orders"),
        request(
            &[
                (ctx::API, "billing"),
                (ctx::KEY_IN, "header"),
                (ctx::KEY_NAME, "x-api-key"),
            ],
            &[("x-api-key", "apip_good")],
            "/",
        ),
        request(QUERY_ROUTE, &[], "/orders?key="),
        request(QUERY_ROUTE, &[], "/orders?other=apip_good"),
        request(&[], &[("x-api-key", "apip_good")], "/orders"),
        CheckRequest::default(),
    ];
    // Not a CheckRequest at all, or cut short.
    let whole = request(HEADER_ROUTE, &[("x-api-key", "apip_good")], "/orders").encode_to_vec();
    assert_eq!(&s.respond(&whole[..whole.len() - 3], 100), s.deny());
    assert_eq!(&s.respond(b"\xff\xff\xff", 100), s.deny());
    for (i, c) in cases.iter().enumerate() {
        let r = s.respond(&c.encode_to_vec(), 100);
        assert_eq!(r, s.deny(), "case {i}");
        assert_eq!(CheckResponse::decode(r).unwrap(), answer::unauthorized(), "case {i}");
    }
    let Some(check_response::HttpResponse::DeniedResponse(d)) = answer::unauthorized().http_response else {
        panic!()
    };
    assert_eq!(d.status.unwrap().code, 401);
    assert_eq!(d.body, DENY_BODY);
}

#[test]
fn strip_removes_the_key_before_the_upstream() {
    let s = service();
    let mut ext = HEADER_ROUTE.to_vec();
    ext.push((ctx::STRIP, "true"));
    let r = answer(&s, &request(&ext, &[("x-api-key", "apip_good")], "/"), 0);
    let Some(check_response::HttpResponse::OkResponse(ok)) = r.http_response else {
        panic!("ok")
    };
    assert_eq!(ok.headers_to_remove, vec!["x-api-key".to_string()]);
    let mut ext = QUERY_ROUTE.to_vec();
    ext.push((ctx::STRIP, "true"));
    let r = answer(&s, &request(&ext, &[], "/?key=apip_good"), 0);
    let Some(check_response::HttpResponse::OkResponse(ok)) = r.http_response else {
        panic!("ok")
    };
    assert_eq!(ok.query_parameters_to_remove, vec!["key".to_string()]);
}

#[test]
fn query_parameters_are_found_exactly() {
    assert_eq!(query_param("/p?a=1&key=v&b=2", "key"), Some("v"));
    assert_eq!(query_param("/p?keyx=v", "key"), None);
    assert_eq!(query_param("/p", "key"), None);
    assert_eq!(query_param("/p?key=v#frag", "key"), Some("v"));
}

#[test]
fn identity_headers_are_in_the_namespace_the_listeners_strip() {
    for h in [KEY_NAME_HEADER, APPLICATION_HEADER] {
        assert!(h.starts_with(crate::IDENTITY_HEADER_PREFIX), "{h}");
    }
    assert!(SUBSCRIPTION_HEADER.starts_with(crate::IDENTITY_HEADER_PREFIX));
}

mod subs_checks;
