//! Publishing one changed route into a large store: how long encoding and hashing the resource
//! takes, how long `Store::publish` takes, how long from building it until a connected delta ADS
//! stream receives it, and how many bytes that stream is sent.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin xds-publish [ROUTES] [CLUSTERS] [CHANGES]`
//! (defaults 10000 1000 300). Also runs a store a tenth the size, to show the cost per change
//! does not grow with the total.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tollgate_bench::{micros, percentile};
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use tollgate_proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use tollgate_xds::fixtures::{PrefixRoute, cluster, endpoints, route_config};
use tollgate_xds::{DEFAULT_GROUP, StatusRegistry, Store, TypeKind, Update, XdsServer};

struct Figures {
    routes: usize,
    clusters: usize,
    build: Vec<Duration>,
    publish: Vec<Duration>,
    received: Vec<Duration>,
    bytes: Vec<usize>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let routes = args.first().copied().unwrap_or(10_000);
    let clusters = args.get(1).copied().unwrap_or(1_000);
    let changes = args.get(2).copied().unwrap_or(300);
    let small = run(routes / 10, clusters / 10, changes).await?;
    let large = run(routes, clusters, changes).await?;
    println!(
        "| store | encode+hash p50 | publish p50 | publish p99 | build→received p50 | p99 | bytes per change (median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for f in [&small, &large] {
        let mut bytes = f.bytes.clone();
        bytes.sort_unstable();
        println!(
            "| {} routes, {} clusters | {} | {} | {} | {} | {} | {} |",
            f.routes,
            f.clusters,
            micros(percentile(&f.build, 50.0)),
            micros(percentile(&f.publish, 50.0)),
            micros(percentile(&f.publish, 99.0)),
            micros(percentile(&f.received, 50.0)),
            micros(percentile(&f.received, 99.0)),
            bytes.get(bytes.len() / 2).copied().unwrap_or(0)
        );
    }
    Ok(())
}

fn route(i: usize, clusters: usize, variant: usize) -> Arc<tollgate_xds::Resource> {
    let r = PrefixRoute {
        prefix: format!("/api-{i}/v{variant}"),
        cluster: format!("c{}", i % clusters),
        regex: None,
    };
    route_config(&format!("r{i}"), &[r])
}

async fn run(routes: usize, clusters: usize, changes: usize) -> anyhow::Result<Figures> {
    let store = Arc::new(Store::new());
    let mut u = Update::new();
    for c in 0..clusters {
        u.upsert(cluster(&format!("c{c}")))
            .upsert(endpoints(&format!("c{c}"), &[10_000 + (c % 50_000) as u16]));
    }
    for i in 0..routes {
        u.upsert(route(i, clusters, 0));
    }
    store.publish(DEFAULT_GROUP, u);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = XdsServer::new(store.clone(), Arc::new(StatusRegistry::default())).serve(listener)?;

    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .context("connecting")?
        .max_decoding_message_size(1 << 30);
    let (tx, rx) = mpsc::channel::<DeltaDiscoveryRequest>(64);
    let node = Node {
        id: "bench".into(),
        cluster: DEFAULT_GROUP.into(),
        ..Default::default()
    };
    // Envoy's types; the custom (key-set) type is not registered in this program, so it has no URL.
    let kinds = TypeKind::ALL.iter().filter(|k| !k.type_url().is_empty());
    for (i, k) in kinds.enumerate() {
        tx.send(DeltaDiscoveryRequest {
            node: (i == 0).then(|| node.clone()),
            type_url: k.type_url().into(),
            resource_names_subscribe: vec!["*".into()],
            ..Default::default()
        })
        .await?;
    }
    let mut inbound = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    // Initial sync: every resource once, each response ACKed.
    let total = routes + 2 * clusters;
    let mut seen = 0;
    while seen < total {
        let resp = inbound.next().await.context("stream ended")??;
        seen += resp.resources.len();
        ack(&tx, &resp).await?;
    }
    let mut f = Figures {
        routes,
        clusters,
        build: vec![],
        publish: vec![],
        received: vec![],
        bytes: vec![],
    };
    for n in 0..changes {
        let t0 = Instant::now();
        let r = route(n % routes, clusters, n + 1);
        f.build.push(t0.elapsed());
        let mut u = Update::new();
        u.upsert(r);
        let t1 = Instant::now();
        store.publish(DEFAULT_GROUP, u);
        f.publish.push(t1.elapsed());
        let resp = inbound.next().await.context("stream ended")??;
        f.received.push(t0.elapsed());
        f.bytes.push(resp.encoded_len());
        anyhow::ensure!(
            resp.resources.len() == 1,
            "one change, one resource: got {}",
            resp.resources.len()
        );
        ack(&tx, &resp).await?;
    }
    f.build.sort_unstable();
    f.publish.sort_unstable();
    f.received.sort_unstable();
    drop(tx);
    server.shutdown(Duration::from_secs(2)).await?;
    Ok(f)
}

async fn ack(tx: &mpsc::Sender<DeltaDiscoveryRequest>, resp: &DeltaDiscoveryResponse) -> anyhow::Result<()> {
    tx.send(DeltaDiscoveryRequest {
        type_url: resp.type_url.clone(),
        response_nonce: resp.nonce.clone(),
        ..Default::default()
    })
    .await?;
    Ok(())
}
