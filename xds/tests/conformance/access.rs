//! The custom type and access rules: a gRPC client stands in for the application's own reader.

use std::sync::Arc;

use tokio_stream::StreamExt;
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use tollgate_proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tollgate_xds::fixtures::{CUSTOM, cluster, custom};
use tollgate_xds::{AccessRule, DEFAULT_GROUP, StatusRegistry, Store, TypeKind, Update, XdsServer};

/// Lets through streams whose `x-test-pass` is `yes`.
#[derive(Debug)]
struct Pass;

impl AccessRule for Pass {
    fn check(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), tonic::Status> {
        match metadata.get("x-test-pass") {
            Some(v) if v == "yes" => Ok(()),
            _ => Err(tonic::Status::permission_denied("pass needed")),
        }
    }
}

/// Opens a delta ADS stream for `type_url` (with the pass when `pass`) and returns its first
/// answer.
async fn first_answer(
    addr: std::net::SocketAddr,
    type_url: &str,
    pass: bool,
) -> Result<tollgate_proto::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse, tonic::Status> {
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(DeltaDiscoveryRequest {
        node: Some(Node {
            id: format!("reader-{pass}"),
            cluster: DEFAULT_GROUP.into(),
            ..Default::default()
        }),
        type_url: type_url.into(),
        resource_names_subscribe: vec!["*".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if pass {
        request.metadata_mut().insert("x-test-pass", "yes".parse().unwrap());
    }
    let mut stream = client.delta_aggregated_resources(request).await?.into_inner();
    let answer = stream.next().await.expect("an answer");
    drop(tx);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_type_goes_only_to_streams_its_rule_lets_through() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let store = Arc::new(Store::new());
    let mut u = Update::new();
    u.upsert(cluster("a")).upsert(custom("x", "hello").unwrap());
    store.publish(DEFAULT_GROUP, u);
    let server = XdsServer::new(store, Arc::new(StatusRegistry::default()))
        .with_access_rule(TypeKind::Custom, Arc::new(Pass))
        .serve(listener)
        .expect("serve");

    let got = first_answer(addr, CUSTOM.type_url, true).await.unwrap();
    assert_eq!(got.type_url, CUSTOM.type_url);
    let names: Vec<&str> = got.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["x"]);

    let refused = first_answer(addr, CUSTOM.type_url, false).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(refused.message(), "pass needed");

    // Types without a rule are not affected by another type's rule.
    let clusters = first_answer(addr, TypeKind::Cluster.type_url(), false).await.unwrap();
    assert_eq!(clusters.resources.len(), 1);
    server.shutdown(std::time::Duration::from_secs(5)).await.unwrap();
}

#[test]
fn only_the_registered_custom_type_makes_custom_resources() {
    custom("x", "v").unwrap();
    let err = tollgate_xds::Resource::custom("y", &7u64, Vec::new()).unwrap_err();
    assert!(matches!(err, tollgate_xds::Error::NotCustom(_)), "{err}");
}
