//! Conformance suite: tollgate-xds against the real pinned Envoy, in delta-ADS and SotW-ADS modes.
//! Every scenario asserts through real HTTP traffic and Envoy's admin API.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed set-up step should panic

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod access;
mod limits;

use tollgate_testkit::{Echo, Envoy, envoy, get, wait_for};
use tollgate_xds::fixtures::{PrefixRoute, cluster, endpoints, listener, route_config};
use tollgate_xds::{
    DEFAULT_GROUP, Flavour, NodeStatus, ServerHandle, StatusRegistry, Store, TypeKind, Update, XdsServer,
};

const LIMIT: Duration = Duration::from_secs(30);

/// The xDS server under test.
struct Rig {
    store: Arc<Store>,
    status: Arc<StatusRegistry>,
    server: Option<ServerHandle>,
    addr: SocketAddr,
}

impl Rig {
    async fn start() -> Rig {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let store = Arc::new(Store::new());
        let status = Arc::new(StatusRegistry::default());
        let server = XdsServer::new(store.clone(), status.clone())
            .serve(listener)
            .expect("serve");
        Rig {
            store,
            status,
            server: Some(server),
            addr,
        }
    }

    /// Stops the server and starts a fresh one (empty store and status) on the same address.
    async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(Duration::from_secs(5)).await.expect("shutdown");
        }
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("rebind");
        self.store = Arc::new(Store::new());
        self.status = Arc::new(StatusRegistry::default());
        self.server = Some(
            XdsServer::new(self.store.clone(), self.status.clone())
                .serve(listener)
                .expect("serve"),
        );
    }

    fn publish(&self, group: &str, update: Update) {
        self.store.publish(group, update);
    }

    /// The ADS stream of node `id` (panics if there is not exactly one).
    fn node(&self, id: &str) -> Option<NodeStatus> {
        let mut s = self.status.node(id);
        assert!(s.len() <= 1, "one stream per node expected");
        s.pop()
    }

    /// Waits until node `id` has ACKed its group's latest generation for every type.
    async fn converged(&self, id: &str) {
        wait_for("node to converge", LIMIT, || async {
            self.node(id).is_some_and(|n| {
                let generation = self.store.group(&n.group).generation();
                envoy_types(&n).all(|t| t.active && !t.pending && t.acked_generation == generation)
            })
        })
        .await;
    }
}

fn route(prefix: &str, cluster: &str) -> PrefixRoute {
    PrefixRoute {
        prefix: prefix.into(),
        cluster: cluster.into(),
        regex: None,
    }
}

/// Listener on `port` → route config "rc" → `/` to cluster "a" → `upstream`.
fn base(port: u16, upstream: u16) -> Update {
    let mut u = Update::new();
    u.upsert(cluster("a"))
        .upsert(endpoints("a", &[upstream]))
        .upsert(listener("http", port, "rc"))
        .upsert(route_config("rc", &[route("/", "a")]));
    u
}

/// Waits until `path` is answered 200 by the upstream named `upstream`.
async fn wait_body(port: u16, path: &str, upstream: &str) {
    let want = format!("\"upstream\":\"{upstream}\"");
    wait_for(&format!("GET {path} to reach {upstream}"), LIMIT, || async {
        let (status, body) = get(port, path).await;
        status == 200 && body.contains(&want)
    })
    .await;
}

macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod delta {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name("delta").await } )*
        }
        mod sotw {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name("sotw").await } )*
        }
    };
}

both_modes!(
    serves_initial_config_then_a_changed_route,
    adds_and_removes_a_cluster_under_traffic_without_errors,
    a_rejected_config_keeps_the_old_one_and_is_not_resent,
    reconnect_after_restart_resends_nothing_unchanged,
    envoys_in_different_groups_get_different_config,
);

async fn serves_initial_config_then_a_changed_route(mode: &str) {
    let (a, b) = (Echo::start("a").await, Echo::start("b").await);
    let rig = Rig::start().await;
    let port = envoy::free_port();
    rig.publish(DEFAULT_GROUP, base(port, a.port));
    let envoy = Envoy::start(mode, "n1", "default", rig.addr).await;

    wait_body(port, "/hello", "a").await;
    rig.converged("n1").await;
    assert_eq!(envoy.active_clusters().await, vec!["a".to_string()]);
    let dump = envoy.config_dump().await.to_string();
    assert!(dump.contains("\"name\":\"http\""), "listener in config_dump");

    // Retarget the route to a new cluster, published in the same update.
    let mut u = Update::new();
    u.upsert(cluster("b"))
        .upsert(endpoints("b", &[b.port]))
        .upsert(route_config("rc", &[route("/", "b")]));
    rig.publish(DEFAULT_GROUP, u);
    wait_body(port, "/hello", "b").await;
    rig.converged("n1").await;
    let generation = rig.store.generation();
    let node = rig.node("n1").expect("node status");
    for t in envoy_types(&node) {
        assert_eq!(t.acked_generation, generation, "every type ACKed the latest generation");
        assert!(t.last_nack.is_none());
    }

    // The exported counters moved: pushes and bytes per type, one client, the change's convergence
    // timed (the first sync at connection is not a change, so exactly one observation).
    let m = rig.status.metrics();
    for kind in [
        TypeKind::Cluster,
        TypeKind::Endpoint,
        TypeKind::Listener,
        TypeKind::Route,
    ] {
        assert!(m.pushes(kind) >= 1 && m.bytes(kind) > 0, "{kind:?} pushes counted");
        assert_eq!(m.nacks(kind), 0);
    }
    assert_eq!(
        m.pushes(TypeKind::Listener),
        1,
        "the listener did not change: pushed once"
    );
    assert_eq!(m.convergence().snapshot().count, 1, "one change converged");
    let flavour = if mode == "delta" { Flavour::Delta } else { Flavour::Sotw };
    assert_eq!(rig.status.clients().get(&("default".to_string(), flavour)), Some(&1));
}

async fn adds_and_removes_a_cluster_under_traffic_without_errors(mode: &str) {
    let (a, b) = (Echo::start("a").await, Echo::start("b").await);
    let rig = Rig::start().await;
    let port = envoy::free_port();
    rig.publish(DEFAULT_GROUP, base(port, a.port));
    let _envoy = Envoy::start(mode, "n1", "default", rig.addr).await;
    wait_body(port, "/b", "a").await;

    // Traffic on /b for the whole change: it must always be answered 200.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = get(port, "/b").await;
                seen.push((status, body));
            }
            seen
        })
    };
    // Add cluster b with its endpoints and a route to it, in one update.
    let mut u = Update::new();
    u.upsert(cluster("b"))
        .upsert(endpoints("b", &[b.port]))
        .upsert(route_config("rc", &[route("/b", "b"), route("/", "a")]));
    rig.publish(DEFAULT_GROUP, u);
    wait_body(port, "/b", "b").await;
    rig.converged("n1").await;
    // Remove the route and the cluster in one update: the route must go first.
    let mut u = Update::new();
    u.upsert(route_config("rc", &[route("/", "a")]))
        .remove(TypeKind::Cluster, "b")
        .remove(TypeKind::Endpoint, "b");
    rig.publish(DEFAULT_GROUP, u);
    wait_body(port, "/b", "a").await;
    rig.converged("n1").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.expect("traffic task");

    let errors: Vec<&(u16, String)> = seen.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        errors.is_empty(),
        "{} of {} requests failed, first: {:?}",
        errors.len(),
        seen.len(),
        errors.first()
    );
    assert!(
        seen.iter().any(|(_, b)| b.contains("\"upstream\":\"b\"")),
        "traffic saw cluster b"
    );
    assert!(seen.len() > 20, "enough traffic to mean something: {}", seen.len());
    assert_eq!(
        _envoy.active_clusters().await,
        vec!["a".to_string()],
        "cluster b removed"
    );
}

async fn a_rejected_config_keeps_the_old_one_and_is_not_resent(mode: &str) {
    let a = Echo::start("a").await;
    let a2 = Echo::start("a").await;
    let rig = Rig::start().await;
    let port = envoy::free_port();
    rig.publish(DEFAULT_GROUP, base(port, a.port));
    let envoy = Envoy::start(mode, "n1", "default", rig.addr).await;
    wait_body(port, "/", "a").await;
    rig.converged("n1").await;

    // An invalid regular expression: Envoy rejects the route configuration.
    let bad = PrefixRoute {
        prefix: "/".into(),
        cluster: "a".into(),
        regex: Some("((".into()),
    };
    let mut u = Update::new();
    u.upsert(route_config("rc", &[bad]));
    rig.publish(DEFAULT_GROUP, u);
    wait_for("the NACK to be reported", LIMIT, || async {
        rig.node("n1")
            .is_some_and(|n| n.types[TypeKind::Route.index()].last_nack.is_some())
    })
    .await;
    let node = rig.node("n1").expect("node");
    let rds = &node.types[TypeKind::Route.index()];
    let nack = rds.last_nack.clone().expect("nack");
    assert!(!nack.message.is_empty(), "Envoy's error text is reported");
    // Envoy's RE2 error for "((" is "missing ): ((".
    assert!(
        nack.message.contains("missing )"),
        "Envoy's error text is passed through: {}",
        nack.message
    );
    let responses_after_nack = rds.responses;
    // The previous configuration keeps serving.
    assert_eq!(get(port, "/").await.0, 200);

    // Unrelated changes flow; the rejected version is not sent again.
    let mut u = Update::new();
    u.upsert(endpoints("a", &[a.port, a2.port]));
    rig.publish(DEFAULT_GROUP, u);
    wait_for("the endpoint change to be ACKed", LIMIT, || async {
        rig.node("n1").is_some_and(|n| {
            let eds = &n.types[TypeKind::Endpoint.index()];
            eds.acked_generation == rig.store.generation() && !eds.pending
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let node = rig.node("n1").expect("node");
    assert_eq!(
        node.types[TypeKind::Route.index()].responses,
        responses_after_nack,
        "NACKed version resent"
    );
    assert!(
        envoy.stat("http.http.rds.rc.update_rejected").await >= 1,
        "Envoy counted the rejection"
    );
    assert_eq!(get(port, "/").await.0, 200);

    // A corrected configuration is sent and accepted.
    let mut u = Update::new();
    u.upsert(route_config("rc", &[route("/", "a"), route("/fixed", "a")]));
    rig.publish(DEFAULT_GROUP, u);
    rig.converged("n1").await;
    let node = rig.node("n1").expect("node");
    assert_eq!(node.types[TypeKind::Route.index()].responses, responses_after_nack + 1);
    assert_eq!(rig.status.metrics().nacks(TypeKind::Route), 1, "one NACK counted");
    assert_eq!(rig.status.metrics().nacks(TypeKind::Endpoint), 0);
    assert_eq!(
        node.types[TypeKind::Route.index()].acked_generation,
        rig.store.generation()
    );
}

async fn reconnect_after_restart_resends_nothing_unchanged(mode: &str) {
    let a = Echo::start("a").await;
    let mut rig = Rig::start().await;
    let port = envoy::free_port();
    rig.publish(DEFAULT_GROUP, base(port, a.port));
    let envoy = Envoy::start(mode, "n1", "default", rig.addr).await;
    wait_body(port, "/", "a").await;
    rig.converged("n1").await;

    rig.restart().await;
    // The new server holds the same content, built anew: same versions.
    rig.publish(DEFAULT_GROUP, base(port, a.port));
    wait_for("Envoy to reconnect", LIMIT, || async {
        rig.node("n1")
            .is_some_and(|n| n.types.iter().filter(|t| t.active).count() == 4)
    })
    .await;
    rig.converged("n1").await;
    assert_eq!(get(port, "/").await.0, 200);
    let node = rig.node("n1").expect("node");
    let sent: Vec<u64> = envoy_types(&node).map(|t| t.resources_sent).collect();
    if mode == "delta" {
        assert_eq!(sent, vec![0, 0, 0, 0], "delta reconnect resent unchanged resources");
    } else {
        // SotW: wildcard CDS and LDS report their version, which the new server recognises.
        assert_eq!(
            (sent[0], sent[2]),
            (0, 0),
            "SotW reconnect resent unchanged clusters or listeners"
        );
    }
    assert_eq!(envoy.active_clusters().await, vec!["a".to_string()]);
}

async fn envoys_in_different_groups_get_different_config(mode: &str) {
    let (blue, green) = (Echo::start("blue").await, Echo::start("green").await);
    let rig = Rig::start().await;
    let (pb, pg) = (envoy::free_port(), envoy::free_port());
    rig.publish("blue", base(pb, blue.port));
    rig.publish("green", base(pg, green.port));
    let eb = Envoy::start(mode, "nb", "blue", rig.addr).await;
    let eg = Envoy::start(mode, "ng", "green", rig.addr).await;
    wait_body(pb, "/", "blue").await;
    wait_body(pg, "/", "green").await;
    assert_eq!(rig.node("nb").expect("nb").group, "blue");
    assert_eq!(rig.node("ng").expect("ng").group, "green");
    // Each Envoy has only its own group's listener.
    let (db, dg) = (eb.config_dump().await.to_string(), eg.config_dump().await.to_string());
    assert!(db.contains(&format!("\"port_value\":{pb}")) && !db.contains(&format!("\"port_value\":{pg}")));
    assert!(dg.contains(&format!("\"port_value\":{pg}")) && !dg.contains(&format!("\"port_value\":{pb}")));
    // A change to one group reaches only that group.
    let mut u = Update::new();
    u.upsert(route_config("rc", &[route("/", "a"), route("/only-blue", "a")]));
    rig.publish("blue", u);
    rig.converged("nb").await;
    let ng = rig.node("ng").expect("ng");
    assert_eq!(
        ng.types[TypeKind::Route.index()].responses,
        1,
        "green received no route update"
    );
}

/// The per-type services (here CDS, SotW and delta) serve the same store as ADS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_type_services_serve_the_store() {
    use tokio_stream::StreamExt;
    use tollgate_proto::pb::envoy::config::core::v3::Node;
    use tollgate_proto::pb::envoy::service::cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient;
    use tollgate_proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};

    let rig = Rig::start().await;
    let mut u = Update::new();
    u.upsert(cluster("a")).upsert(cluster("b"));
    rig.publish(DEFAULT_GROUP, u);
    let mut client = ClusterDiscoveryServiceClient::connect(format!("http://{}", rig.addr))
        .await
        .expect("connect");
    let node = Some(Node {
        id: "per-type".into(),
        cluster: DEFAULT_GROUP.into(),
        ..Default::default()
    });

    // SotW: the wildcard request gets every cluster; after the ACK, a change gets the full set again.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(DiscoveryRequest {
        node: node.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut sotw = client
        .stream_clusters(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = sotw.next().await.unwrap().unwrap();
    assert_eq!(first.resources.len(), 2);
    assert_eq!(
        first.version_info,
        rig.store.group(DEFAULT_GROUP).type_version(TypeKind::Cluster)
    );
    tx.send(DiscoveryRequest {
        version_info: first.version_info.clone(),
        response_nonce: first.nonce.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut u = Update::new();
    u.upsert(cluster("c"));
    rig.publish(DEFAULT_GROUP, u);
    let second = sotw.next().await.unwrap().unwrap();
    assert_eq!(second.resources.len(), 3, "CDS over SotW carries the full set");

    // Delta: only what the client lacks.
    let (dtx, drx) = tokio::sync::mpsc::channel(4);
    let mut initial = std::collections::HashMap::new();
    let held = rig.store.group(DEFAULT_GROUP).get(TypeKind::Cluster, "a").unwrap();
    initial.insert("a".to_string(), held.version().to_string());
    dtx.send(DeltaDiscoveryRequest {
        node,
        initial_resource_versions: initial,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut delta = client
        .delta_clusters(tokio_stream::wrappers::ReceiverStream::new(drx))
        .await
        .unwrap()
        .into_inner();
    let resp = delta.next().await.unwrap().unwrap();
    let mut names: Vec<String> = resp.resources.iter().map(|r| r.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["b".to_string(), "c".to_string()],
        "the held cluster is not resent"
    );
}

/// The node's reports for the types Envoy subscribes to (every kind but the custom ones).
fn envoy_types(n: &NodeStatus) -> impl Iterator<Item = &tollgate_xds::TypeReport> {
    TypeKind::ALL
        .iter()
        .zip(n.types.iter())
        .filter(|(k, _)| !matches!(**k, TypeKind::Custom | TypeKind::Custom2))
        .map(|(_, t)| t)
}
