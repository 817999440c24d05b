//! The Authorization service over real gRPC (a tonic client on loopback): the answers Envoy gets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tollgate_policies::AuthzServer;
use tollgate_policies::authz::{
    APPLICATION_HEADER, AuthzService, DENY_BODY, KEY_NAME_HEADER, KeyIndex, KeyRecord, PlanLimit, QuotaUnit,
    SharedIndex, SharedSubscriptions, SubscriptionRecord, SubscriptionWriter, ctx, digest_of,
};
use tollgate_proto::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context, check_response};

fn request(api: &str, key: Option<&str>) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            context_extensions: [(ctx::API, api), (ctx::KEY_IN, "header"), (ctx::KEY_NAME, "x-api-key")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    path: "/orders/1".into(),
                    headers: key
                        .map(|k| ("x-api-key".to_string(), k.to_string()))
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

async fn serve(index: Arc<SharedIndex>) -> String {
    serve_service(AuthzServer::new(index)).await
}

async fn serve_service(server: AuthzServer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn check_over_grpc_allows_the_right_key_and_refuses_everything_else_alike() {
    let index = Arc::new(SharedIndex::default());
    index.store(KeyIndex::new([(
        digest_of(b"apip_good"),
        KeyRecord {
            api: "orders".into(),
            name: "ci".into(),
            application: Some("shop".into()),
            expires_at: None,
        },
    )]));
    let mut client = AuthorizationClient::connect(serve(index.clone()).await).await.unwrap();

    let ok = client
        .check(request("orders", Some("apip_good")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.status.unwrap().code, 0);
    let Some(check_response::HttpResponse::OkResponse(ok)) = ok.http_response else {
        panic!("an OK response")
    };
    let named: Vec<(String, String)> = ok
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref().map(|h| (h.key.clone(), h.value.clone())))
        .collect();
    assert!(named.contains(&(KEY_NAME_HEADER.to_string(), "ci".to_string())));
    assert!(named.contains(&(APPLICATION_HEADER.to_string(), "shop".to_string())));

    let refusals = [
        request("orders", None),
        request("orders", Some("apip_wrong")),
        request("billing", Some("apip_good")),
        CheckRequest::default(),
    ];
    let mut answers = Vec::new();
    for r in refusals {
        answers.push(client.check(r).await.unwrap().into_inner());
    }
    for a in &answers {
        assert_eq!(a, &answers[0], "every refusal is the same answer");
    }
    assert_eq!(answers[0].status.as_ref().unwrap().code, 16, "UNAUTHENTICATED");
    let Some(check_response::HttpResponse::DeniedResponse(d)) = &answers[0].http_response else {
        panic!("a denied response")
    };
    assert_eq!(d.status.as_ref().unwrap().code, 401);
    assert_eq!(d.body, DENY_BODY);
    let ct: Vec<_> = d.headers.iter().filter_map(|h| h.header.as_ref()).collect();
    assert_eq!(
        (ct[0].key.as_str(), ct[0].value.as_str()),
        ("content-type", "application/json")
    );

    // A new index is seen by the next check.
    index.store(KeyIndex::default());
    let after = client
        .check(request("orders", Some("apip_good")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, answers[0]);
}

#[tokio::test]
async fn subscriptions_over_grpc_are_403_then_200_then_429() {
    let subs = Arc::new(SharedSubscriptions::default());
    let mut writer = SubscriptionWriter::new(subs.clone());
    let service = AuthzService::with_subscriptions(Arc::new(SharedIndex::default()), subs);
    let mut client = AuthorizationClient::connect(serve_service(AuthzServer::from_service(service)).await)
        .await
        .unwrap();
    let mut req = request("orders", None);
    let attrs = req.attributes.as_mut().unwrap();
    attrs.context_extensions = [
        (ctx::API, "orders"),
        (ctx::SUB, "true"),
        (ctx::SUB_HEADER, "subscription-key"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let http = attrs.request.as_mut().unwrap().http.as_mut().unwrap();
    http.headers
        .insert("subscription-key".into(), "mock-subscription-token".into());
    let status = |r: &tollgate_proto::pb::envoy::service::auth::v3::CheckResponse| {
        let http = match &r.http_response {
            Some(check_response::HttpResponse::DeniedResponse(d)) => d.status.as_ref().unwrap().code,
            _ => 200,
        };
        (r.status.as_ref().unwrap().code, http)
    };
    let before = client.check(req.clone()).await.unwrap().into_inner();
    assert_eq!(status(&before), (7, 403), "before the subscription exists");
    writer.upsert(
        Some(digest_of(b"mock-subscription-token")),
        SubscriptionRecord {
            id: "sub-1".into(),
            api: "orders".into(),
            application: None,
            plan_expires_at: None,
            limit: Some(PlanLimit {
                count: 3,
                unit: QuotaUnit::Month,
                stop_on_reach: true,
            }),
        },
    );
    for _ in 0..3 {
        let ok = client.check(req.clone()).await.unwrap().into_inner();
        assert_eq!(status(&ok), (0, 200));
    }
    let over = client.check(req).await.unwrap().into_inner();
    assert_eq!(status(&over), (8, 429));
}

#[tokio::test]
async fn other_methods_are_unimplemented() {
    let url = serve(Arc::new(SharedIndex::default())).await;
    let mut grpc = tonic::client::Grpc::new(
        tonic::transport::Channel::from_shared(url)
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/envoy.service.auth.v3.Authorization/Other");
    let codec = tonic_prost::ProstCodec::<CheckRequest, CheckRequest>::default();
    let err = grpc
        .unary(tonic::Request::new(CheckRequest::default()), path, codec)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}
