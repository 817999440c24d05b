use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use tollgate_proto::pb::envoy::config::cluster::v3::Cluster;
use tollgate_proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use tollgate_proto::pb::envoy::config::listener::v3::Listener;
use tollgate_proto::pb::envoy::config::route::v3::RouteConfiguration;
use tollgate_proto::pb::envoy::service::discovery::v3::Resource as WireResource;
use tollgate_proto::pb::google::protobuf::{Any, Duration};
use tollgate_proto::wire::{DeltaResponse, SotwResponse};

use super::{Flavour, Outgoing, StreamState, TypeReport};
use crate::fixtures::{PrefixRoute, cluster, endpoints, listener, route_config};
use crate::store::Changes;
use crate::{Group, Resource, Store, TypeKind, Update};

const CDS: TypeKind = TypeKind::Cluster;
const EDS: TypeKind = TypeKind::Endpoint;
const LDS: TypeKind = TypeKind::Listener;
const RDS: TypeKind = TypeKind::Route;

/// One xDS stream driven by hand against a store with a single group.
struct Stream {
    store: Store,
    group: Arc<Group>,
    state: StreamState,
    /// The SotW `resource_names` Envoy currently states, per type.
    names: [Vec<String>; TypeKind::COUNT],
    /// The `(version_info, nonce)` of the last SotW response ACKed, per type.
    acked: [(String, String); TypeKind::COUNT],
}

impl Stream {
    fn new(flavour: Flavour, ordered: bool) -> Self {
        let store = Store::new();
        let group = store.group("g");
        Stream {
            store,
            group,
            state: StreamState::new(flavour, ordered),
            names: Default::default(),
            acked: Default::default(),
        }
    }

    fn sotw(ordered: bool) -> Self {
        Self::new(Flavour::Sotw, ordered)
    }

    fn delta(ordered: bool) -> Self {
        Self::new(Flavour::Delta, ordered)
    }

    fn publish(&self, upserts: Vec<Arc<Resource>>, removals: &[(TypeKind, &str)]) -> u64 {
        let mut u = Update::new();
        for r in upserts {
            u.upsert(r);
        }
        for (kind, name) in removals {
            u.remove(*kind, *name);
        }
        self.store.publish("g", u)
    }

    fn sotw_request(&mut self, kind: TypeKind, names: &[&str], version: &str, nonce: &str, error: Option<&str>) {
        self.names[kind.index()] = names.iter().map(|n| n.to_string()).collect();
        let g = self.group.read();
        self.state.on_sotw_request(
            kind,
            self.names[kind.index()].clone(),
            version,
            nonce,
            error.map(str::to_string),
            &g,
        );
    }

    /// A subscription (re)statement echoing the last ACKed version and nonce.
    fn sotw_subscribe(&mut self, kind: TypeKind, names: &[&str]) {
        let (version, nonce) = self.acked[kind.index()].clone();
        self.sotw_request(kind, names, &version, &nonce, None);
    }

    fn sotw_ack(&mut self, r: &SotwResponse) {
        let kind = kind_of(&r.type_url);
        let names = self.names[kind.index()].clone();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.sotw_request(kind, &names, &r.version_info, &r.nonce, None);
        self.acked[kind.index()] = (r.version_info.clone(), r.nonce.clone());
    }

    fn sotw_nack(&mut self, r: &SotwResponse, message: &str) {
        let kind = kind_of(&r.type_url);
        let names = self.names[kind.index()].clone();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let version = self.acked[kind.index()].0.clone();
        self.sotw_request(kind, &names, &version, &r.nonce, Some(message));
    }

    fn delta_request(
        &mut self,
        kind: TypeKind,
        subscribe: &[&str],
        unsubscribe: &[&str],
        initial: &[(&str, &str)],
        nonce: &str,
        error: Option<&str>,
    ) {
        let initial: HashMap<String, String> = initial.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let g = self.group.read();
        self.state.on_delta_request(
            kind,
            subscribe.iter().map(|n| n.to_string()).collect(),
            unsubscribe.iter().map(|n| n.to_string()).collect(),
            initial,
            nonce,
            error.map(str::to_string),
            &g,
        );
    }

    /// A spontaneous subscription change (no nonce).
    fn delta_subscribe(&mut self, kind: TypeKind, names: &[&str]) {
        self.delta_request(kind, names, &[], &[], "", None);
    }

    fn delta_unsubscribe(&mut self, kind: TypeKind, names: &[&str]) {
        self.delta_request(kind, &[], names, &[], "", None);
    }

    fn delta_ack(&mut self, r: &DeltaResponse) {
        self.delta_request(kind_of(&r.type_url), &[], &[], &[], &r.nonce, None);
    }

    fn delta_nack(&mut self, r: &DeltaResponse, message: &str) {
        self.delta_request(kind_of(&r.type_url), &[], &[], &[], &r.nonce, Some(message));
    }

    fn next(&mut self, kind: TypeKind) -> Option<Outgoing> {
        let g = self.group.read();
        self.state.next_response(kind, &g)
    }

    fn next_sotw(&mut self, kind: TypeKind) -> SotwResponse {
        match self.next(kind) {
            Some(Outgoing::Sotw(r)) => {
                assert_eq!(r.type_url, kind.type_url());
                r
            }
            other => panic!("expected a SotW {} response, got {other:?}", kind.short()),
        }
    }

    fn next_delta(&mut self, kind: TypeKind) -> DeltaResponse {
        match self.next(kind) {
            Some(Outgoing::Delta(r)) => {
                assert_eq!(r.type_url, kind.type_url());
                r
            }
            other => panic!("expected a delta {} response, got {other:?}", kind.short()),
        }
    }

    fn assert_silent(&mut self, kind: TypeKind) {
        if let Some(o) = self.next(kind) {
            panic!("expected no {} response, got {o:?}", kind.short());
        }
    }

    fn report(&self, kind: TypeKind) -> TypeReport {
        let g = self.group.read();
        self.state.report(kind, &g)
    }

    /// Answers every response with an ACK, in make-before-break type order, until nothing is left.
    fn converge(&mut self) {
        for _ in 0..16 {
            let mut sent = false;
            for kind in TypeKind::ALL {
                match self.next(kind) {
                    Some(Outgoing::Sotw(r)) => self.sotw_ack(&r),
                    Some(Outgoing::Delta(r)) => self.delta_ack(&r),
                    None => continue,
                }
                sent = true;
            }
            if !sent {
                return;
            }
        }
        panic!("the stream did not converge");
    }
}

fn kind_of(type_url: &str) -> TypeKind {
    TypeKind::from_type_url(type_url).expect("served type")
}

/// The names of the resources in a SotW response, decoded from their `Any`s.
fn names(r: &SotwResponse) -> Vec<String> {
    let mut out: Vec<String> = r
        .resources
        .iter()
        .map(|b| {
            let any = Any::decode(b.as_ref()).expect("an Any");
            assert_eq!(any.type_url, r.type_url);
            let v = any.value.as_slice();
            match kind_of(&any.type_url) {
                TypeKind::Cluster => Cluster::decode(v).expect("a Cluster").name,
                TypeKind::Endpoint => ClusterLoadAssignment::decode(v).expect("a CLA").cluster_name,
                TypeKind::Listener => Listener::decode(v).expect("a Listener").name,
                TypeKind::Route => RouteConfiguration::decode(v).expect("a RouteConfiguration").name,
                TypeKind::Custom | TypeKind::Custom2 => String::decode(v).expect("a custom value"),
            }
        })
        .collect();
    out.sort();
    out
}

/// `(name, version)` of the resources in a delta response.
fn upserted(r: &DeltaResponse) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = r
        .resources
        .iter()
        .map(|b| {
            let res = WireResource::decode(b.as_ref()).expect("a Resource");
            let any = res.resource.expect("a body");
            assert_eq!(any.type_url, r.type_url);
            (res.name, res.version)
        })
        .collect();
    out.sort();
    out
}

fn nv(r: &Arc<Resource>) -> (String, String) {
    (r.name().to_string(), r.version().to_string())
}

fn carries(r: &SotwResponse, res: &Arc<Resource>) -> bool {
    r.resources.contains(res.any())
}

/// A cluster whose content differs from `fixtures::cluster` and from other timeouts.
fn cluster_with_timeout(name: &str, seconds: i64) -> Arc<Resource> {
    let c = Cluster {
        name: name.to_string(),
        connect_timeout: Some(Duration { seconds, nanos: 0 }),
        ..Default::default()
    };
    Resource::new(name, &c, vec![]).expect("encodes")
}

fn route(prefix: &str, cluster: &str) -> PrefixRoute {
    PrefixRoute {
        prefix: prefix.to_string(),
        cluster: cluster.to_string(),
        regex: None,
    }
}

// --- SotW: wildcard and full state ---

#[test]
fn sotw_legacy_wildcard_cds_gets_every_cluster() {
    let mut s = Stream::sotw(true);
    s.publish(
        vec![cluster("alpha"), cluster("bravo"), endpoints("alpha", &[8001])],
        &[],
    );
    s.sotw_subscribe(CDS, &[]);
    let r = s.next_sotw(CDS);
    assert_eq!(names(&r), ["alpha", "bravo"]);
    assert_eq!(r.version_info, s.group.type_version(CDS));
    assert!(!r.nonce.is_empty());
}

#[test]
fn sotw_cds_response_carries_every_cluster_after_one_changes() {
    let mut s = Stream::sotw(true);
    s.publish(vec![cluster("alpha"), cluster("bravo"), cluster("charlie")], &[]);
    s.sotw_subscribe(CDS, &[]);
    let r1 = s.next_sotw(CDS);
    s.sotw_ack(&r1);

    let alpha = cluster_with_timeout("alpha", 5);
    s.publish(vec![alpha.clone()], &[]);
    let r2 = s.next_sotw(CDS);
    assert_eq!(names(&r2), ["alpha", "bravo", "charlie"]);
    assert!(carries(&r2, &alpha));
    assert_ne!(r2.version_info, r1.version_info);
    assert_eq!(r2.version_info, s.group.type_version(CDS));
}

#[test]
fn sotw_lds_response_carries_every_listener_and_drops_removed_ones() {
    let mut s = Stream::sotw(true);
    s.publish(vec![listener("east", 10001, "rc"), listener("west", 10002, "rc")], &[]);
    s.sotw_subscribe(LDS, &[]);
    let r1 = s.next_sotw(LDS);
    assert_eq!(names(&r1), ["east", "west"]);
    s.sotw_ack(&r1);

    let east = listener("east", 20001, "rc");
    s.publish(vec![east.clone()], &[]);
    let r2 = s.next_sotw(LDS);
    assert_eq!(names(&r2), ["east", "west"]);
    assert!(carries(&r2, &east));
    s.sotw_ack(&r2);

    s.publish(vec![], &[(LDS, "west")]);
    let r3 = s.next_sotw(LDS);
    assert_eq!(names(&r3), ["east"]);
    assert_eq!(r3.version_info, s.group.type_version(LDS));
}

#[test]
fn sotw_first_wildcard_request_on_an_empty_store_is_answered_with_no_resources() {
    let mut s = Stream::sotw(true);
    for kind in [CDS, LDS] {
        s.sotw_subscribe(kind, &[]);
        let r = s.next_sotw(kind);
        assert!(r.resources.is_empty());
        assert_eq!(r.version_info, s.group.type_version(kind));
        s.sotw_ack(&r);
        s.assert_silent(kind);
        assert_eq!(s.report(kind).responses, 1);
    }
}

#[test]
fn sotw_wildcard_reconnect_reporting_the_current_version_is_not_sent_everything_again() {
    let mut s = Stream::sotw(true);
    let generation = s.publish(vec![cluster("alpha"), cluster("bravo")], &[]);
    let version = s.group.type_version(CDS);
    s.sotw_request(CDS, &[], &version, "", None);
    s.assert_silent(CDS);
    let report = s.report(CDS);
    assert_eq!(report.held, 2);
    assert_eq!(report.acked_version, version);
    assert_eq!(report.acked_generation, generation);

    s.publish(vec![cluster("charlie")], &[]);
    assert_eq!(names(&s.next_sotw(CDS)), ["alpha", "bravo", "charlie"]);

    let mut stale = Stream::sotw(true);
    stale.publish(vec![cluster("alpha"), cluster("bravo")], &[]);
    stale.sotw_request(CDS, &[], "0123456789abcdef", "", None);
    assert_eq!(names(&stale.next_sotw(CDS)), ["alpha", "bravo"]);
}

#[test]
fn sotw_named_resource_that_does_not_exist_yet_is_sent_when_it_appears() {
    let mut s = Stream::sotw(false);
    s.sotw_subscribe(RDS, &["rc"]);
    s.assert_silent(RDS);
    let rc = route_config("rc", &[route("/", "alpha")]);
    s.publish(vec![rc.clone()], &[]);
    let r = s.next_sotw(RDS);
    assert_eq!(names(&r), ["rc"]);
    assert!(carries(&r, &rc));
}

// --- one response in flight ---

#[test]
fn one_sotw_response_in_flight_per_type_until_it_is_acked() {
    let mut s = Stream::sotw(true);
    s.publish(vec![cluster("alpha"), endpoints("alpha", &[8001])], &[]);
    s.sotw_subscribe(CDS, &[]);
    let r1 = s.next_sotw(CDS);

    s.publish(vec![cluster("bravo")], &[]);
    s.assert_silent(CDS);
    assert!(s.report(CDS).pending);
    s.sotw_request(CDS, &[], "", "not-the-nonce", None);
    s.assert_silent(CDS);

    s.sotw_subscribe(EDS, &["alpha"]);
    assert_eq!(names(&s.next_sotw(EDS)), ["alpha"], "another type is not blocked");

    s.sotw_ack(&r1);
    let r2 = s.next_sotw(CDS);
    assert_eq!(names(&r2), ["alpha", "bravo"]);
    s.publish(vec![cluster("charlie")], &[]);
    s.assert_silent(CDS);
    s.sotw_ack(&r2);
    assert_eq!(names(&s.next_sotw(CDS)), ["alpha", "bravo", "charlie"]);
}

#[test]
fn one_delta_response_in_flight_per_type_until_it_is_acked() {
    let mut s = Stream::delta(true);
    s.publish(vec![endpoints("alpha", &[8001])], &[]);
    s.delta_subscribe(EDS, &["alpha"]);
    let r1 = s.next_delta(EDS);

    let alpha = endpoints("alpha", &[8002]);
    s.publish(vec![alpha.clone()], &[]);
    s.assert_silent(EDS);
    s.delta_subscribe(EDS, &[]);
    s.assert_silent(EDS);

    s.delta_ack(&r1);
    assert_eq!(upserted(&s.next_delta(EDS)), [nv(&alpha)]);
}

// --- NACK ---

#[test]
fn sotw_nacked_cluster_version_is_not_resent_until_its_content_changes() {
    let mut s = Stream::sotw(true);
    let alpha = cluster("alpha");
    s.publish(vec![alpha.clone(), cluster("bravo")], &[]);
    s.sotw_subscribe(CDS, &[]);
    let r1 = s.next_sotw(CDS);
    s.sotw_ack(&r1);

    let bad = cluster_with_timeout("alpha", 7);
    s.publish(vec![bad.clone()], &[]);
    let r2 = s.next_sotw(CDS);
    assert!(carries(&r2, &bad));
    s.sotw_nack(&r2, "cds: cluster alpha: invalid connect timeout");
    let report = s.report(CDS);
    let nack = report.last_nack.expect("the NACK is reported");
    assert_eq!(nack.message, "cds: cluster alpha: invalid connect timeout");
    assert_eq!(nack.version, r2.version_info);
    assert_eq!(report.acked_version, r1.version_info);
    s.assert_silent(CDS);

    s.publish(vec![cluster("charlie")], &[]);
    let r3 = s.next_sotw(CDS);
    assert_eq!(names(&r3), ["alpha", "bravo", "charlie"]);
    assert!(!carries(&r3, &bad), "the rejected version is not sent again");
    assert!(carries(&r3, &alpha), "Envoy keeps the version it had");
    s.sotw_ack(&r3);

    let fixed = cluster_with_timeout("alpha", 9);
    s.publish(vec![fixed.clone()], &[]);
    let r4 = s.next_sotw(CDS);
    assert!(carries(&r4, &fixed));
    s.sotw_ack(&r4);
    s.assert_silent(CDS);
    assert_eq!(s.report(CDS).acked_version, r4.version_info);
}

#[test]
fn nacked_version_is_not_resent_when_a_lagging_stream_rescans_every_name() {
    let mut s = Stream::sotw(true);
    let alpha = cluster("alpha");
    s.publish(vec![alpha.clone(), cluster("bravo")], &[]);
    s.sotw_subscribe(CDS, &[]);
    let r1 = s.next_sotw(CDS);
    s.sotw_ack(&r1);
    let bad = cluster_with_timeout("alpha", 7);
    s.publish(vec![bad.clone()], &[]);
    let r2 = s.next_sotw(CDS);
    s.sotw_nack(&r2, "cluster alpha: invalid");
    s.assert_silent(CDS);

    let seen = s.group.read().seq;
    let mut churn = Update::new();
    for seconds in 1..=(16 * 1024 + 1) {
        churn.upsert(cluster_with_timeout("churn", seconds));
    }
    s.store.publish("g", churn);
    assert!(
        matches!(
            s.group.read().types[CDS.index()].changes_since(seen),
            Changes::Everything
        ),
        "the stream must be behind the change log for this test to mean anything"
    );
    let r3 = s.next_sotw(CDS);
    assert_eq!(names(&r3), ["alpha", "bravo", "churn"]);
    assert!(!carries(&r3, &bad));
    assert!(carries(&r3, &alpha));
}

#[test]
fn sotw_nack_is_detected_by_error_detail_even_when_the_request_carries_the_new_version() {
    let mut s = Stream::sotw(false);
    s.publish(vec![route_config("rc", &[route("/", "alpha")])], &[]);
    s.sotw_subscribe(RDS, &["rc"]);
    let r1 = s.next_sotw(RDS);
    s.sotw_ack(&r1);

    s.publish(vec![route_config("rc", &[route("/", "bravo")])], &[]);
    let r2 = s.next_sotw(RDS);
    s.sotw_request(RDS, &["rc"], &r2.version_info, &r2.nonce, Some("rc: bad route"));
    let report = s.report(RDS);
    assert_eq!(report.acked_version, r1.version_info);
    assert_eq!(report.last_nack.map(|n| n.version), Some(r2.version_info));
    s.sotw_subscribe(RDS, &["rc"]);
    s.assert_silent(RDS);
}

#[test]
fn sotw_request_with_a_stale_nonce_neither_acks_nor_nacks() {
    let mut s = Stream::sotw(false);
    s.publish(vec![route_config("rc", &[route("/", "alpha")])], &[]);
    s.sotw_subscribe(RDS, &["rc"]);
    let r1 = s.next_sotw(RDS);
    s.sotw_ack(&r1);
    s.publish(vec![route_config("rc", &[route("/", "bravo")])], &[]);
    let r2 = s.next_sotw(RDS);

    s.sotw_request(RDS, &["rc"], &r1.version_info, &r1.nonce, Some("old complaint"));
    let report = s.report(RDS);
    assert!(report.last_nack.is_none());
    assert_eq!(report.acked_version, r1.version_info);
    assert!(report.pending, "the response is still in flight");

    s.publish(vec![route_config("rc", &[route("/", "charlie")])], &[]);
    s.assert_silent(RDS);
    s.sotw_ack(&r2);
    assert_eq!(s.report(RDS).acked_version, r2.version_info);
    assert_eq!(names(&s.next_sotw(RDS)), ["rc"]);
}

#[test]
fn delta_nack_rejects_only_the_resources_envoy_names() {
    let mut s = Stream::delta(true);
    s.publish(vec![endpoints("alpha", &[8001]), endpoints("bravo", &[8002])], &[]);
    s.delta_subscribe(EDS, &["alpha", "bravo"]);
    let r1 = s.next_delta(EDS);
    s.delta_ack(&r1);

    let bad_alpha = endpoints("alpha", &[9001]);
    let bravo = endpoints("bravo", &[9002]);
    s.publish(vec![bad_alpha.clone(), bravo.clone()], &[]);
    let r2 = s.next_delta(EDS);
    assert_eq!(upserted(&r2), [nv(&bad_alpha), nv(&bravo)]);
    s.delta_nack(&r2, "malformed endpoint in alpha");
    let nack = s.report(EDS).last_nack.expect("the NACK is reported");
    assert_eq!(nack.version, bad_alpha.version().to_string());
    assert_eq!(nack.message, "malformed endpoint in alpha");

    let r3 = s.next_delta(EDS);
    assert_eq!(
        upserted(&r3),
        [nv(&bravo)],
        "only the resource Envoy did not blame is retried"
    );
    s.delta_ack(&r3);
    s.assert_silent(EDS);

    let bravo = endpoints("bravo", &[9003]);
    s.publish(vec![bravo.clone()], &[]);
    let r4 = s.next_delta(EDS);
    assert_eq!(upserted(&r4), [nv(&bravo)]);
    s.delta_ack(&r4);

    let alpha = endpoints("alpha", &[9004]);
    s.publish(vec![alpha.clone()], &[]);
    assert_eq!(upserted(&s.next_delta(EDS)), [nv(&alpha)]);
}

// --- SotW named subscriptions ---

#[test]
fn sotw_re_added_name_is_resent_unchanged_and_the_type_version_is_that_of_the_set() {
    let mut s = Stream::sotw(false);
    s.publish(
        vec![
            route_config("one", &[route("/", "alpha")]),
            route_config("two", &[route("/", "bravo")]),
        ],
        &[],
    );
    s.sotw_subscribe(RDS, &["one", "two"]);
    let r1 = s.next_sotw(RDS);
    assert_eq!(names(&r1), ["one", "two"]);
    s.sotw_ack(&r1);

    s.sotw_subscribe(RDS, &["one"]);
    s.assert_silent(RDS);
    s.sotw_subscribe(RDS, &["one", "two"]);
    let r2 = s.next_sotw(RDS);
    assert_eq!(names(&r2), ["two"]);
    assert_eq!(r2.version_info, r1.version_info);
}

#[test]
fn sotw_name_re_added_after_an_ack_that_raced_its_removal_is_resent() {
    let mut s = Stream::sotw(false);
    s.publish(
        vec![
            route_config("one", &[route("/", "alpha")]),
            route_config("two", &[route("/", "bravo")]),
        ],
        &[],
    );
    s.sotw_subscribe(RDS, &["one"]);
    let r1 = s.next_sotw(RDS);
    s.sotw_ack(&r1);
    s.sotw_subscribe(RDS, &["one", "two"]);
    let r2 = s.next_sotw(RDS);
    assert_eq!(names(&r2), ["two"]);

    s.sotw_request(RDS, &["one"], &r1.version_info, &r1.nonce, None);
    s.sotw_ack(&r2);
    s.assert_silent(RDS);
    s.sotw_subscribe(RDS, &["one", "two"]);
    assert_eq!(names(&s.next_sotw(RDS)), ["two"]);
}

#[test]
fn sotw_subscription_change_with_a_stale_nonce_is_answered_after_the_ack() {
    let mut s = Stream::sotw(true);
    s.publish(vec![endpoints("alpha", &[8001]), endpoints("bravo", &[8002])], &[]);
    s.sotw_subscribe(EDS, &["alpha"]);
    let r1 = s.next_sotw(EDS);
    s.sotw_request(EDS, &["alpha", "bravo"], "", "", None);
    s.assert_silent(EDS);
    s.sotw_ack(&r1);
    assert_eq!(names(&s.next_sotw(EDS)), ["bravo"]);
}

// --- delta subscriptions ---

#[test]
fn delta_subscription_with_a_stale_or_unknown_nonce_is_honoured() {
    let mut s = Stream::delta(true);
    let (alpha, bravo, charlie) = (
        endpoints("alpha", &[8001]),
        endpoints("bravo", &[8002]),
        endpoints("charlie", &[8003]),
    );
    s.publish(vec![alpha.clone(), bravo.clone(), charlie.clone()], &[]);
    s.delta_subscribe(EDS, &["alpha"]);
    let r1 = s.next_delta(EDS);
    assert_eq!(upserted(&r1), [nv(&alpha)]);
    s.delta_ack(&r1);

    s.delta_request(EDS, &["bravo"], &[], &[], &r1.nonce, None);
    let r2 = s.next_delta(EDS);
    assert_eq!(upserted(&r2), [nv(&bravo)]);

    s.delta_request(EDS, &["charlie"], &[], &[], "no-such-nonce", None);
    s.assert_silent(EDS);
    s.delta_ack(&r2);
    assert_eq!(upserted(&s.next_delta(EDS)), [nv(&charlie)]);
}

#[test]
fn delta_explicit_wildcard_gets_every_resource_and_is_answered_when_empty() {
    let mut s = Stream::delta(true);
    let (alpha, bravo) = (cluster("alpha"), cluster("bravo"));
    s.publish(vec![alpha.clone(), bravo.clone()], &[]);
    s.delta_subscribe(CDS, &["*"]);
    let r = s.next_delta(CDS);
    assert_eq!(upserted(&r), [nv(&alpha), nv(&bravo)]);
    assert!(r.removed_resources.is_empty());

    let mut empty = Stream::delta(true);
    empty.delta_subscribe(CDS, &["*"]);
    let r = empty.next_delta(CDS);
    assert!(r.resources.is_empty() && r.removed_resources.is_empty());
    empty.delta_ack(&r);
    empty.assert_silent(CDS);
}

#[test]
fn delta_unsubscribing_the_wildcard_keeps_the_explicit_names() {
    let mut s = Stream::delta(true);
    s.publish(vec![cluster("alpha"), cluster("bravo")], &[]);
    s.delta_subscribe(CDS, &["*", "alpha"]);
    let r1 = s.next_delta(CDS);
    assert_eq!(upserted(&r1).len(), 2);
    s.delta_ack(&r1);

    s.delta_unsubscribe(CDS, &["*"]);
    s.assert_silent(CDS);
    assert_eq!(s.report(CDS).held, 1);
    s.publish(vec![cluster_with_timeout("bravo", 3)], &[]);
    s.assert_silent(CDS);
    let alpha = cluster_with_timeout("alpha", 3);
    s.publish(vec![alpha.clone()], &[]);
    assert_eq!(upserted(&s.next_delta(CDS)), [nv(&alpha)]);
}

#[test]
fn delta_unsubscribing_one_name_while_wildcard_resends_its_current_state() {
    let mut s = Stream::delta(true);
    let alpha = cluster("alpha");
    s.publish(vec![alpha.clone(), cluster("bravo")], &[]);
    s.delta_subscribe(CDS, &[]);
    let r1 = s.next_delta(CDS);
    s.delta_ack(&r1);
    s.assert_silent(CDS);

    s.delta_unsubscribe(CDS, &["alpha"]);
    let r2 = s.next_delta(CDS);
    assert_eq!(upserted(&r2), [nv(&alpha)]);
    assert!(r2.removed_resources.is_empty());
}

#[test]
fn delta_unsubscribing_a_never_subscribed_name_is_ignored() {
    let mut s = Stream::delta(true);
    s.publish(vec![endpoints("alpha", &[8001]), endpoints("zulu", &[8009])], &[]);
    s.delta_subscribe(EDS, &["alpha"]);
    let r1 = s.next_delta(EDS);
    s.delta_ack(&r1);

    s.delta_unsubscribe(EDS, &["zulu", "nowhere"]);
    s.assert_silent(EDS);
    assert_eq!(s.report(EDS).held, 1);
    let alpha = endpoints("alpha", &[8002]);
    s.publish(vec![alpha.clone()], &[]);
    assert_eq!(
        upserted(&s.next_delta(EDS)),
        [nv(&alpha)],
        "the real subscription is intact"
    );

    let mut wildcard = Stream::delta(true);
    wildcard.publish(vec![cluster("alpha")], &[]);
    wildcard.delta_subscribe(CDS, &[]);
    let r = wildcard.next_delta(CDS);
    wildcard.delta_ack(&r);
    wildcard.delta_unsubscribe(CDS, &["nowhere"]);
    wildcard.assert_silent(CDS);
}

#[test]
fn delta_removed_resource_is_listed_in_removed_resources() {
    let mut s = Stream::delta(true);
    s.publish(vec![cluster("alpha"), cluster("bravo")], &[]);
    s.delta_subscribe(CDS, &[]);
    let r1 = s.next_delta(CDS);
    s.delta_ack(&r1);

    s.publish(vec![], &[(CDS, "bravo")]);
    let r2 = s.next_delta(CDS);
    assert!(r2.resources.is_empty());
    assert_eq!(r2.removed_resources, ["bravo"]);
    s.delta_ack(&r2);
    assert_eq!(s.report(CDS).held, 1);
}

#[test]
fn delta_subscribing_to_a_missing_name_reports_it_removed_then_sends_it_when_it_appears() {
    let mut s = Stream::delta(true);
    s.publish(vec![endpoints("alpha", &[8001])], &[]);
    s.delta_subscribe(EDS, &["ghost"]);
    let r1 = s.next_delta(EDS);
    assert!(r1.resources.is_empty());
    assert_eq!(r1.removed_resources, ["ghost"]);
    s.delta_ack(&r1);
    s.assert_silent(EDS);

    let ghost = endpoints("ghost", &[8002]);
    s.publish(vec![ghost.clone()], &[]);
    assert_eq!(upserted(&s.next_delta(EDS)), [nv(&ghost)]);
}

#[test]
fn delta_subscribing_to_a_name_envoy_already_holds_resends_it() {
    let mut s = Stream::delta(true);
    let alpha = endpoints("alpha", &[8001]);
    s.publish(vec![alpha.clone()], &[]);
    s.delta_subscribe(EDS, &["alpha"]);
    let r1 = s.next_delta(EDS);
    s.delta_ack(&r1);
    s.assert_silent(EDS);

    s.delta_subscribe(EDS, &["alpha"]);
    assert_eq!(upserted(&s.next_delta(EDS)), [nv(&alpha)]);
}

// --- delta initial_resource_versions ---

#[test]
fn delta_initial_versions_that_match_resend_nothing() {
    let mut s = Stream::delta(true);
    let (alpha, bravo) = (endpoints("alpha", &[8001]), endpoints("bravo", &[8002]));
    let generation = s.publish(vec![alpha.clone(), bravo.clone()], &[]);
    s.delta_request(
        EDS,
        &["alpha", "bravo"],
        &[],
        &[("alpha", alpha.version().as_ref()), ("bravo", bravo.version().as_ref())],
        "",
        None,
    );
    s.assert_silent(EDS);
    let report = s.report(EDS);
    assert_eq!(report.held, 2);
    assert_eq!(report.acked_generation, generation);
    assert_eq!(report.responses, 0);

    let bravo = endpoints("bravo", &[8003]);
    s.publish(vec![bravo.clone()], &[]);
    assert_eq!(upserted(&s.next_delta(EDS)), [nv(&bravo)]);
}

#[test]
fn delta_initial_versions_resend_what_differs_and_remove_what_is_gone() {
    let mut s = Stream::delta(true);
    let (alpha, bravo, charlie) = (cluster("alpha"), cluster_with_timeout("bravo", 4), cluster("charlie"));
    s.publish(vec![alpha.clone(), bravo.clone(), charlie.clone()], &[]);
    let old_bravo = cluster("bravo");
    s.delta_request(
        CDS,
        &[],
        &[],
        &[
            ("alpha", alpha.version().as_ref()),
            ("bravo", old_bravo.version().as_ref()),
            ("gone", "0123"),
        ],
        "",
        None,
    );
    let r = s.next_delta(CDS);
    assert_eq!(upserted(&r), [nv(&bravo), nv(&charlie)]);
    assert_eq!(r.removed_resources, ["gone"]);
}

#[test]
fn delta_initial_version_of_a_subscribed_name_that_no_longer_exists_is_removed() {
    let mut s = Stream::delta(true);
    let alpha = endpoints("alpha", &[8001]);
    s.publish(vec![alpha.clone()], &[]);
    s.delta_request(
        EDS,
        &["alpha", "gone"],
        &[],
        &[("alpha", alpha.version().as_ref()), ("gone", "0123")],
        "",
        None,
    );
    let r = s.next_delta(EDS);
    assert!(r.resources.is_empty());
    assert_eq!(r.removed_resources, ["gone"]);
    s.delta_ack(&r);
    assert_eq!(s.report(EDS).held, 1);
}

// --- make-before-break ---

/// A converged stream holding cluster `alpha`, its endpoints and route config `rc` to it.
fn converged_on_alpha(flavour: Flavour, ordered: bool) -> Stream {
    let mut s = Stream::new(flavour, ordered);
    s.publish(
        vec![
            cluster("alpha"),
            endpoints("alpha", &[8001]),
            route_config("rc", &[route("/", "alpha")]),
        ],
        &[],
    );
    match flavour {
        Flavour::Sotw => {
            s.sotw_subscribe(CDS, &[]);
            s.sotw_subscribe(EDS, &["alpha"]);
            s.sotw_subscribe(RDS, &["rc"]);
        }
        Flavour::Delta => {
            s.delta_subscribe(CDS, &[]);
            s.delta_subscribe(EDS, &["alpha"]);
            s.delta_subscribe(RDS, &["rc"]);
        }
    }
    s.converge();
    s
}

/// A converged stream holding clusters `alpha` and `bravo`, their endpoints and `rc` routing to both.
fn converged_on_alpha_and_bravo(flavour: Flavour, ordered: bool) -> Stream {
    let mut s = Stream::new(flavour, ordered);
    s.publish(
        vec![
            cluster("alpha"),
            cluster("bravo"),
            endpoints("alpha", &[8001]),
            endpoints("bravo", &[8002]),
            route_config("rc", &[route("/a", "alpha"), route("/b", "bravo")]),
        ],
        &[],
    );
    match flavour {
        Flavour::Sotw => {
            s.sotw_subscribe(CDS, &[]);
            s.sotw_subscribe(EDS, &["alpha", "bravo"]);
            s.sotw_subscribe(RDS, &["rc"]);
        }
        Flavour::Delta => {
            s.delta_subscribe(CDS, &[]);
            s.delta_subscribe(EDS, &["alpha", "bravo"]);
            s.delta_subscribe(RDS, &["rc"]);
        }
    }
    s.converge();
    s
}

#[test]
fn ads_route_to_a_new_cluster_is_held_back_until_its_cluster_and_endpoints_are_acked() {
    let mut s = converged_on_alpha(Flavour::Sotw, true);
    let rc = route_config("rc", &[route("/a", "alpha"), route("/b", "bravo")]);
    let generation = s.publish(vec![cluster("bravo"), endpoints("bravo", &[8002]), rc.clone()], &[]);

    let cds = s.next_sotw(CDS);
    assert_eq!(names(&cds), ["alpha", "bravo"]);
    s.sotw_subscribe(EDS, &["alpha", "bravo"]);
    let eds = s.next_sotw(EDS);
    assert_eq!(names(&eds), ["bravo"]);
    s.assert_silent(RDS);
    let report = s.report(RDS);
    assert!(report.pending);
    assert!(report.acked_generation < generation);

    s.sotw_ack(&cds);
    s.assert_silent(RDS);
    s.sotw_ack(&eds);
    let rds = s.next_sotw(RDS);
    assert!(carries(&rds, &rc));
    s.sotw_ack(&rds);
    s.converge();
    assert_eq!(s.report(RDS).acked_generation, generation);
}

#[test]
fn ads_cluster_removal_waits_until_the_route_without_it_is_acked() {
    let mut s = converged_on_alpha_and_bravo(Flavour::Sotw, true);
    let rc = route_config("rc", &[route("/", "alpha")]);
    let generation = s.publish(vec![rc.clone()], &[(CDS, "bravo"), (EDS, "bravo")]);

    s.assert_silent(CDS);
    assert!(s.report(CDS).pending);
    s.assert_silent(EDS);
    let rds = s.next_sotw(RDS);
    assert!(carries(&rds, &rc));
    s.assert_silent(CDS);

    s.sotw_ack(&rds);
    let cds = s.next_sotw(CDS);
    assert_eq!(names(&cds), ["alpha"]);
    s.sotw_ack(&cds);
    s.converge();
    for kind in [CDS, EDS, RDS] {
        let report = s.report(kind);
        assert!(!report.pending, "{} pending", kind.short());
        assert_eq!(report.acked_generation, generation, "{} generation", kind.short());
    }
}

#[test]
fn ads_delta_cluster_removal_waits_until_the_route_without_it_is_acked() {
    let mut s = converged_on_alpha_and_bravo(Flavour::Delta, true);
    let rc = route_config("rc", &[route("/", "alpha")]);
    s.publish(vec![rc.clone()], &[(CDS, "bravo"), (EDS, "bravo")]);

    s.assert_silent(CDS);
    s.assert_silent(EDS);
    let rds = s.next_delta(RDS);
    assert_eq!(upserted(&rds), [nv(&rc)]);
    s.assert_silent(CDS);
    s.assert_silent(EDS);

    s.delta_ack(&rds);
    let cds = s.next_delta(CDS);
    assert!(cds.resources.is_empty());
    assert_eq!(cds.removed_resources, ["bravo"]);
    let eds = s.next_delta(EDS);
    assert_eq!(eds.removed_resources, ["bravo"]);
}

#[test]
fn unordered_stream_holds_nothing_back() {
    let mut s = converged_on_alpha(Flavour::Sotw, false);
    let rc = route_config("rc", &[route("/a", "alpha"), route("/b", "bravo")]);
    s.publish(vec![cluster("bravo"), endpoints("bravo", &[8002]), rc.clone()], &[]);
    let cds = s.next_sotw(CDS);
    assert_eq!(names(&cds), ["alpha", "bravo"]);
    let rds = s.next_sotw(RDS);
    assert!(
        carries(&rds, &rc),
        "a route to an unacknowledged cluster is sent at once"
    );
    s.sotw_ack(&cds);
    s.sotw_ack(&rds);
    s.sotw_subscribe(EDS, &["alpha", "bravo"]);
    s.converge();

    let rc = route_config("rc", &[route("/", "alpha")]);
    s.publish(vec![rc.clone()], &[(CDS, "bravo"), (EDS, "bravo")]);
    assert_eq!(
        names(&s.next_sotw(CDS)),
        ["alpha"],
        "a referenced cluster is removed at once"
    );
    assert!(carries(&s.next_sotw(RDS), &rc));
}

#[test]
fn resending_a_cluster_resends_its_endpoints() {
    let mut s = converged_on_alpha_and_bravo(Flavour::Sotw, true);
    let alpha_endpoints = s.group.get(EDS, "alpha").expect("published");
    s.publish(vec![cluster_with_timeout("alpha", 5)], &[]);
    let cds = s.next_sotw(CDS);
    assert_eq!(names(&cds), ["alpha", "bravo"]);
    let eds = s.next_sotw(EDS);
    assert_eq!(names(&eds), ["alpha"]);
    assert!(carries(&eds, &alpha_endpoints));
    s.sotw_ack(&cds);
    s.sotw_ack(&eds);
    s.assert_silent(EDS);
}

#[test]
fn resending_a_cluster_over_delta_resends_its_endpoints_after_the_inflight_ack() {
    let mut s = converged_on_alpha(Flavour::Delta, true);
    let alpha_endpoints = s.group.get(EDS, "alpha").expect("published");
    s.delta_subscribe(EDS, &["alpha"]);
    let forced = s.next_delta(EDS);
    assert_eq!(upserted(&forced), [nv(&alpha_endpoints)]);

    let alpha = cluster_with_timeout("alpha", 5);
    s.publish(vec![alpha.clone()], &[]);
    assert_eq!(upserted(&s.next_delta(CDS)), [nv(&alpha)]);
    s.assert_silent(EDS);
    s.delta_ack(&forced);
    assert_eq!(upserted(&s.next_delta(EDS)), [nv(&alpha_endpoints)]);
}

// --- report ---

/// The kinds Envoy subscribes to (not our key sets).
const ENVOY_KINDS: [TypeKind; 4] = [
    TypeKind::Cluster,
    TypeKind::Endpoint,
    TypeKind::Listener,
    TypeKind::Route,
];

#[test]
fn acked_generation_reaches_the_group_generation_once_everything_is_acked() {
    let mut s = Stream::sotw(true);
    let generation = s.publish(
        vec![
            cluster("alpha"),
            endpoints("alpha", &[8001]),
            listener("http", 10000, "rc"),
            route_config("rc", &[route("/", "alpha")]),
        ],
        &[],
    );
    s.sotw_subscribe(CDS, &[]);
    s.sotw_subscribe(LDS, &[]);
    s.sotw_subscribe(EDS, &["alpha"]);
    s.sotw_subscribe(RDS, &["rc"]);
    for kind in ENVOY_KINDS {
        let report = s.report(kind);
        assert!(report.active && report.pending);
        assert_eq!(report.acked_generation, 0);
    }

    s.converge();
    for kind in ENVOY_KINDS {
        let report = s.report(kind);
        assert!(!report.pending, "{} pending", kind.short());
        assert_eq!(report.acked_generation, generation, "{}", kind.short());
        assert_eq!(report.held, 1);
        assert_eq!(report.responses, 1);
        assert!(report.last_nack.is_none());
    }

    let generation = s.publish(vec![endpoints("alpha", &[8002])], &[]);
    assert!(s.report(EDS).pending);
    s.converge();
    for kind in ENVOY_KINDS {
        let report = s.report(kind);
        assert!(!report.pending, "{} pending", kind.short());
        assert_eq!(report.acked_generation, generation, "{}", kind.short());
    }
    assert_eq!(s.report(EDS).responses, 2);
}

#[test]
fn sotw_endpoint_removal_leaves_the_type_up_to_date() {
    let mut s = Stream::sotw(true);
    s.publish(vec![endpoints("alpha", &[8001]), endpoints("bravo", &[8002])], &[]);
    s.sotw_subscribe(EDS, &["alpha", "bravo"]);
    s.converge();

    let generation = s.publish(vec![], &[(EDS, "bravo")]);
    s.assert_silent(EDS);
    let report = s.report(EDS);
    assert!(!report.pending);
    assert_eq!(report.held, 1);
    assert_eq!(report.acked_generation, generation);
}

#[test]
fn a_revert_to_what_envoy_holds_after_a_nack_counts_as_up_to_date() {
    let mut s = Stream::delta(false);
    let good = route_config("rc", &[route("/", "alpha")]);
    s.publish(vec![good.clone()], &[]);
    s.delta_subscribe(RDS, &["rc"]);
    let r = s.next_delta(RDS);
    s.delta_ack(&r);

    let bad_generation = s.publish(vec![route_config("rc", &[route("/", "bravo")])], &[]);
    let r = s.next_delta(RDS);
    s.delta_nack(&r, "rc: invalid regex");
    let report = s.report(RDS);
    assert_eq!(report.last_nack.expect("reported").generation, bad_generation);
    assert!(report.acked_generation < bad_generation);

    // The application reverts to the content Envoy kept: nothing to send, and the stream is
    // up to date again (it would otherwise wait for the rejected version forever).
    let reverted = s.publish(vec![good], &[]);
    s.assert_silent(RDS);
    assert_eq!(s.report(RDS).acked_generation, reverted);
}
