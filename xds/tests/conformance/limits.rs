//! The bounds an unauthenticated client meets (issue #13, item 7): message size, streams per
//! connection and in all, the first-message timeout, resource names, and the NACK text kept.
//! A plain gRPC client stands in for a hostile one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tollgate_proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest,
};
use tollgate_proto::pb::google::rpc::Status as RpcStatus;
use tollgate_testkit::wait_for;
use tollgate_xds::fixtures::cluster;
use tollgate_xds::{DEFAULT_GROUP, Limits, ServerHandle, StatusRegistry, Store, TypeKind, Update, XdsServer};
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use super::LIMIT;

type Client = AggregatedDiscoveryServiceClient<Channel>;

/// A server within `limits`, its store holding cluster "a".
struct Bounded {
    addr: SocketAddr,
    status: Arc<StatusRegistry>,
    server: ServerHandle,
}

impl Bounded {
    async fn start(limits: Limits) -> Bounded {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let store = Arc::new(Store::new());
        let mut u = Update::new();
        u.upsert(cluster("a"));
        store.publish(DEFAULT_GROUP, u);
        let status = Arc::new(StatusRegistry::default());
        let server = XdsServer::new(store, status.clone())
            .with_limits(limits)
            .serve(listener)
            .expect("serve");
        Bounded { addr, status, server }
    }

    /// A new client on its own connection.
    async fn client(&self) -> Client {
        AggregatedDiscoveryServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect")
    }

    async fn stop(self) {
        self.server.shutdown(Duration::from_secs(5)).await.expect("shutdown");
    }
}

/// A delta ADS stream on `client`; `first` is sent when given.
struct Open {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    answers: Result<Streaming<DeltaDiscoveryResponse>, Status>,
}

impl Open {
    async fn new(client: &mut Client, first: Option<DeltaDiscoveryRequest>) -> Open {
        let (tx, rx) = mpsc::channel(4);
        if let Some(first) = first {
            tx.send(first).await.expect("queue the first request");
        }
        let answers = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await
            .map(tonic::Response::into_inner);
        Open { tx, answers }
    }

    /// The next answer, or the status that ended (or refused) the stream.
    async fn next(&mut self) -> Result<DeltaDiscoveryResponse, Status> {
        let answers = self.answers.as_mut().map_err(|s| s.clone())?;
        tokio::time::timeout(LIMIT, answers.message())
            .await
            .expect("an answer or an end within the limit")?
            .ok_or_else(|| Status::cancelled("the stream ended without a status"))
    }
}

fn clusters(node: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: Some(Node {
            id: node.into(),
            cluster: DEFAULT_GROUP.into(),
            ..Default::default()
        }),
        type_url: TypeKind::Cluster.type_url().into(),
        resource_names_subscribe: vec!["*".into()],
        ..Default::default()
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("r{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_a_few_mib_is_refused_by_default() {
    let rig = Bounded::start(Limits::default()).await;
    let mut client = rig.client().await;
    let mut big = clusters("big");
    big.node.as_mut().expect("node").id = "x".repeat(5 * 1024 * 1024);
    let err = Open::new(&mut client, Some(big)).await.next().await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err}");
    // The server keeps serving.
    let mut ok = Open::new(&mut client, Some(clusters("small"))).await;
    assert_eq!(ok.next().await.expect("an answer").resources.len(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_per_connection_limit_are_refused_until_one_closes() {
    let rig = Bounded::start(Limits {
        max_streams_per_connection: 2,
        ..Limits::default()
    })
    .await;
    let mut client = rig.client().await;
    let mut first = Open::new(&mut client, Some(clusters("n1"))).await;
    first.next().await.expect("first stream answered");
    let mut second = Open::new(&mut client, Some(clusters("n2"))).await;
    second.next().await.expect("second stream answered");
    let err = Open::new(&mut client, Some(clusters("n3")))
        .await
        .next()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // Another connection has its own allowance.
    let mut other = rig.client().await;
    Open::new(&mut other, Some(clusters("n4")))
        .await
        .next()
        .await
        .expect("another connection is served");
    // Closing a stream gives its place back.
    drop(first);
    wait_for("the closed stream to be forgotten", LIMIT, || async {
        rig.status.node("n1").is_empty()
    })
    .await;
    Open::new(&mut client, Some(clusters("n5")))
        .await
        .next()
        .await
        .expect("a freed place is used");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_server_limit_are_refused_whatever_the_connection() {
    let rig = Bounded::start(Limits {
        max_streams: 2,
        ..Limits::default()
    })
    .await;
    let (mut a, mut b, mut c) = (rig.client().await, rig.client().await, rig.client().await);
    let mut s1 = Open::new(&mut a, Some(clusters("n1"))).await;
    s1.next().await.expect("answered");
    let mut s2 = Open::new(&mut b, Some(clusters("n2"))).await;
    s2.next().await.expect("answered");
    let err = Open::new(&mut c, Some(clusters("n3"))).await.next().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_says_nothing_is_ended_after_the_first_message_timeout() {
    let rig = Bounded::start(Limits {
        first_message_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut client = rig.client().await;
    let mut silent = Open::new(&mut client, None).await;
    let err = silent.next().await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    drop(silent.tx);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_resource_names_end_the_stream() {
    let rig = Bounded::start(Limits {
        max_resource_names: 10,
        ..Limits::default()
    })
    .await;
    let mut client = rig.client().await;

    // In one request: initial_resource_versions of a reconnect.
    let mut reconnect = clusters("reconnect");
    reconnect.initial_resource_versions = names(11).into_iter().map(|n| (n, "v".into())).collect();
    let err = Open::new(&mut client, Some(reconnect)).await.next().await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    // Over the stream: subscriptions that add up, each request within the limit.
    let mut first = clusters("growing");
    first.resource_names_subscribe = names(6);
    let mut growing = Open::new(&mut client, Some(first)).await;
    growing.next().await.expect("the first six names are served");
    let more = DeltaDiscoveryRequest {
        type_url: TypeKind::Cluster.type_url().into(),
        resource_names_subscribe: (6..12).map(|i| format!("r{i}")).collect(),
        ..Default::default()
    };
    growing.tx.send(more).await.expect("send");
    let err = loop {
        match growing.next().await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");

    // SotW names count too.
    let (tx, rx) = mpsc::channel(1);
    tx.send(DiscoveryRequest {
        node: Some(Node {
            id: "sotw".into(),
            cluster: DEFAULT_GROUP.into(),
            ..Default::default()
        }),
        type_url: TypeKind::Route.type_url().into(),
        resource_names: names(11),
        ..Default::default()
    })
    .await
    .expect("send");
    let refused = async {
        let mut answers = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await?
            .into_inner();
        answers.message().await
    }
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_nack_text_is_cut_before_it_is_kept() {
    let rig = Bounded::start(Limits::default()).await;
    let mut client = rig.client().await;
    let mut stream = Open::new(&mut client, Some(clusters("nacker"))).await;
    let answer = stream.next().await.expect("clusters");
    // Two-byte characters, so a cut at a byte count can fall inside one.
    let text = "é".repeat(512 * 1024);
    let nack = DeltaDiscoveryRequest {
        type_url: TypeKind::Cluster.type_url().into(),
        response_nonce: answer.nonce,
        error_detail: Some(RpcStatus {
            code: 3,
            message: format!("x{text}"),
            ..Default::default()
        }),
        ..Default::default()
    };
    stream.tx.send(nack).await.expect("send the NACK");
    let kept = wait_for_nack(&rig, "nacker").await;
    assert!(kept.len() <= 4096, "kept {} bytes of NACK text", kept.len());
    assert!(kept.len() > 4000, "most of the allowance is kept");
    assert!(format!("x{text}").starts_with(&kept), "a prefix of what Envoy said");
    rig.stop().await;
}

async fn wait_for_nack(rig: &Bounded, node: &str) -> String {
    let kept = std::sync::Mutex::new(String::new());
    wait_for("the NACK to be recorded", LIMIT, || async {
        let nack = rig.status.node(node).into_iter().find_map(|s| {
            s.types[TypeKind::Cluster.index()]
                .last_nack
                .as_ref()
                .map(|n| n.message.clone())
        });
        match nack {
            Some(m) => {
                *kept.lock().unwrap() = m;
                true
            }
            None => false,
        }
    })
    .await;
    kept.into_inner().unwrap()
}
