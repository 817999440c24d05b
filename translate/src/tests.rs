//! Golden-file tests of translation output, and the incremental behaviour of [`Translator`].
//! Set `UPDATE_GOLDEN=1` to rewrite the files after an intended change, then review the diff.

use std::time::Duration;

use prost::Message;
use tollgate_proto::pb::envoy::config::cluster::v3::Cluster;
use tollgate_proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use tollgate_proto::pb::envoy::config::route::v3::RouteConfiguration;
use tollgate_proto::pb::google::protobuf::Any;
use tollgate_xds::{DEFAULT_GROUP, Store, TypeKind, Update};

mod access_log;
mod authz;
mod cors;
mod stable;

use super::*;
use tollgate_model::{HeaderMatch, Method, Operation, PathKind, PolicyRef, Resilience, Upstream};

fn settings() -> Settings {
    Settings {
        authz: Some(AuthzTarget {
            host: "127.0.0.1".into(),
            port: 18001,
            timeout: Duration::from_millis(500),
            tls: None,
        }),
        ..Settings::default()
    }
}

fn upstream(host: &str, port: u16, base: &str) -> Upstream {
    Upstream {
        tls: false,
        host: host.into(),
        port,
        base_path: base.into(),
        host_rewrite: true,
        connect_timeout: None,
    }
}

fn op(method: Method, path: &str) -> Operation {
    Operation {
        method,
        path: path.into(),
        kind: PathKind::Template,
        headers: vec![],
        resilience: Resilience::default(),
        policies: vec![],
    }
}

fn weather() -> Api {
    Api {
        handle: "weather".into(),
        display_name: "Weather".into(),
        version: "v1.0".into(),
        context: "/weather/v1.0".into(),
        deployed: true,
        main_vhosts: vec!["*".into()],
        sandbox_vhost: None,
        main: upstream("10.0.0.5", 9080, "/api/v2"),
        sandbox: None,
        policies: vec![],
        resilience: Resilience::default(),
        operations: vec![
            op(Method::Get, "/{country_code}/{city}"),
            op(Method::Get, "/alerts/active"),
            op(Method::Post, "/alerts/active"),
            op(Method::Get, "/*"),
            op(Method::Get, "/"),
        ],
    }
}

fn shop() -> Api {
    let mut exact = op(Method::Post, "/items");
    exact.kind = PathKind::Exact;
    exact.headers = vec![HeaderMatch {
        name: "x-tenant".into(),
        value: "^t-[0-9]+$".into(),
        regex: true,
    }];
    let mut slow = op(Method::Get, "/items/{id}");
    slow.resilience = Resilience {
        timeout: Some(Duration::from_secs(5)),
        idle_timeout: Some(Duration::ZERO),
    };
    let mut teapot = op(Method::Get, "/teapot");
    teapot.policies = vec![PolicyRef {
        name: "respond".into(),
        version: "v1".into(),
        params: serde_json::json!({"statusCode": 418, "body": "short and stout"}),
    }];
    Api {
        handle: "shop".into(),
        display_name: "Shop".into(),
        version: "v2".into(),
        context: "/shop/v2".into(),
        deployed: true,
        main_vhosts: vec!["api.shop.example".into(), "*.shop.example".into()],
        sandbox_vhost: Some("sandbox.shop.example".into()),
        main: Upstream {
            tls: true,
            host_rewrite: false,
            connect_timeout: Some(Duration::from_secs(3)),
            ..upstream("inventory.internal", 443, "/svc")
        },
        sandbox: Some(upstream("inventory-sbx.internal", 8000, "")),
        policies: vec![],
        resilience: Resilience {
            timeout: Some(Duration::from_secs(20)),
            idle_timeout: None,
        },
        operations: vec![op(Method::Get, "/items"), slow, exact, teapot],
    }
}

/// A readable, deterministic dump of every resource in an update: YAML of each resource's stable form
/// (see [`stable`]), so a newer `envoy-types` with more fields leaves the files as they are.
fn dump(update: &Update) -> String {
    let store = Store::new();
    store.publish(DEFAULT_GROUP, update.clone());
    let group = store.group(DEFAULT_GROUP);
    let mut out = String::new();
    for kind in [TypeKind::Cluster, TypeKind::Endpoint, TypeKind::Route] {
        for name in group.names(kind) {
            let r = group.get(kind, &name).unwrap();
            let any = Any::decode(r.any().as_ref()).unwrap();
            let text = match kind {
                TypeKind::Cluster => format!("{:#?}", Cluster::decode(any.value.as_slice()).unwrap()),
                TypeKind::Endpoint => format!("{:#?}", ClusterLoadAssignment::decode(any.value.as_slice()).unwrap()),
                _ => format!("{:#?}", RouteConfiguration::decode(any.value.as_slice()).unwrap()),
            };
            let yaml = serde_yaml::to_string(&stable::stable(&text)).unwrap();
            let deps: Vec<String> = r
                .deps()
                .iter()
                .map(|d| format!("{} {}", d.kind.short(), d.name))
                .collect();
            out.push_str(&format!(
                "# {} {name}; needs [{}]\n---\n{yaml}",
                kind.short(),
                deps.join(", ")
            ));
        }
    }
    out
}

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        expected == actual,
        "translation of {name} changed; rerun with UPDATE_GOLDEN=1 and review the diff"
    );
}

#[test]
fn golden_weather_api() {
    let mut t = Translator::new(settings());
    t.set_api(&weather()).unwrap();
    golden("weather.yaml", &dump(&t.all().unwrap()));
}

#[test]
fn golden_shop_api_with_tls_sandbox_vhosts_and_policies() {
    let mut t = Translator::new(settings());
    t.set_api(&shop()).unwrap();
    golden("shop.yaml", &dump(&t.all().unwrap()));
}

#[test]
fn a_change_to_one_api_republishes_only_its_resources() {
    let mut t = Translator::new(settings());
    t.set_api(&weather()).unwrap();
    t.set_api(&shop()).unwrap();
    let mut w2 = weather();
    w2.operations.push(op(Method::Delete, "/alerts/{id}"));
    let store = Store::new();
    store.publish(DEFAULT_GROUP, t.all().unwrap());
    let before = store.generation();
    store.publish(DEFAULT_GROUP, t.set_api(&w2).unwrap());
    assert_eq!(store.generation(), before + 1);
    // Clusters unchanged: the upserts were identical, so only the route configuration changed.
    let group = store.group(DEFAULT_GROUP);
    assert_eq!(
        group.len(TypeKind::Cluster),
        3 + 1,
        "three upstreams and the ext_authz cluster"
    );
    let u = t.set_api(&w2).unwrap();
    let generation = store.publish(DEFAULT_GROUP, u);
    assert_eq!(generation, before + 1, "an identical re-apply changes nothing");
}

#[test]
fn shared_clusters_stay_until_their_last_api_goes() {
    let mut t = Translator::new(settings());
    let a = weather();
    let mut b = weather();
    b.handle = "weather-b".into();
    b.context = "/weather-b".into();
    t.set_api(&a).unwrap();
    t.set_api(&b).unwrap();
    let store = Store::new();
    store.publish(DEFAULT_GROUP, t.all().unwrap());
    // One cluster per upstream host:port, plus the ext_authz cluster.
    assert_eq!(
        store.group(DEFAULT_GROUP).len(TypeKind::Cluster),
        2,
        "one cluster per upstream host:port"
    );
    store.publish(DEFAULT_GROUP, t.remove_api("weather").unwrap());
    assert_eq!(
        store.group(DEFAULT_GROUP).len(TypeKind::Cluster),
        2,
        "still used by weather-b"
    );
    store.publish(DEFAULT_GROUP, t.remove_api("weather-b").unwrap());
    let g = store.group(DEFAULT_GROUP);
    assert_eq!(
        (g.names(TypeKind::Cluster), g.len(TypeKind::Endpoint)),
        (vec![AUTHZ_CLUSTER.to_string()], 0)
    );
}

#[test]
fn undeployed_apis_have_no_routes() {
    let mut t = Translator::new(settings());
    let mut w = weather();
    t.set_api(&w).unwrap();
    w.deployed = false;
    let store = Store::new();
    store.publish(DEFAULT_GROUP, t.set_api(&w).unwrap());
    store.publish(DEFAULT_GROUP, t.all().unwrap());
    let text = dump(&t.all().unwrap());
    assert!(!text.contains("/weather/"), "no route of the undeployed API");
    assert!(text.contains("no-api-found"));
}

#[test]
fn explicit_hosts_win_domains_over_default_domain_lists() {
    let mut s = settings();
    s.vhosts.main = "*.wso2.com".into();
    s.vhosts.main_domains = vec!["*.wso2.com".into(), "api.foo.com".into()];
    let mut t = Translator::new(s);
    let mut a = weather();
    a.main_vhosts = vec!["*.wso2.com".into()];
    let mut b = weather();
    b.handle = "b".into();
    b.main_vhosts = vec!["api.foo.com".into()];
    t.set_api(&a).unwrap();
    t.set_api(&b).unwrap();
    let store = Store::new();
    store.publish(DEFAULT_GROUP, t.all().unwrap());
    let r = store.group(DEFAULT_GROUP).get(TypeKind::Route, ROUTE_CONFIG).unwrap();
    let rc = RouteConfiguration::decode(Any::decode(r.any().as_ref()).unwrap().value.as_slice()).unwrap();
    let domains: Vec<&String> = rc.virtual_hosts.iter().flat_map(|v| v.domains.iter()).collect();
    // Each domain appears in exactly one virtual host (Envoy rejects duplicates).
    assert_eq!(
        domains.iter().filter(|d| d.as_str() == "api.foo.com").count(),
        1,
        "{domains:?}"
    );
    let explicit = rc.virtual_hosts.iter().find(|v| v.name == "api.foo.com").unwrap();
    assert!(
        explicit.domains.contains(&"api.foo.com".to_string()),
        "the explicit host keeps its own domain"
    );
}

#[test]
fn the_route_configuration_is_served_canonical_so_its_version_can_hash_it_as_is() {
    // The version of the route configuration hashes its bytes without re-encoding them
    // (`CANONICAL`); that is only sound if those bytes already are the canonical encoding. The
    // shop API has per-route maps (typed_per_filter_config) in several routes.
    let mut t = Translator::new(settings());
    t.set_api(&weather()).unwrap();
    let mut shop = shop();
    shop.policies.push(PolicyRef {
        name: "api-key-auth".into(),
        version: "v1".into(),
        params: serde_json::json!({"key": "X-API-Key", "in": "header"}),
    });
    t.set_api(&shop).unwrap();
    let store = Store::new();
    store.publish(DEFAULT_GROUP, t.all().unwrap());
    let r = store.group(DEFAULT_GROUP).get(TypeKind::Route, ROUTE_CONFIG).unwrap();
    let any = Any::decode(r.any().as_ref()).unwrap();
    let canon = tollgate_proto::canonical::canonical("envoy.config.route.v3.RouteConfiguration", &any.value).unwrap();
    assert_eq!(canon.as_ref(), any.value.as_slice());
    let maps = RouteConfiguration::decode(any.value.as_slice())
        .unwrap()
        .virtual_hosts
        .iter()
        .flat_map(|v| v.routes.iter())
        .filter(|r| !r.typed_per_filter_config.is_empty())
        .count();
    assert!(maps > 0, "the check covers routes with a map");
}

#[test]
fn encoded_routes_have_their_map_entries_sorted() {
    use tollgate_proto::pb::envoy::config::route::v3::Route;
    let mut route = Route {
        name: "r".into(),
        ..Default::default()
    };
    for i in 0..16 {
        route.typed_per_filter_config.insert(
            format!("filter-{i:02}"),
            Any {
                type_url: "type.googleapis.com/google.protobuf.Empty".into(),
                value: vec![],
            },
        );
    }
    let bytes = super::wire::encode_route(&route);
    let canon = tollgate_proto::canonical::canonical("envoy.config.route.v3.Route", &bytes).unwrap();
    assert_eq!(canon.as_ref(), bytes.as_ref());
    assert_eq!(Route::decode(bytes.as_ref()).unwrap(), route);
}

#[test]
fn the_https_listener_names_its_key_file_and_never_carries_the_key() {
    let settings = Settings {
        tls: Some(TlsMaterial {
            cert_path: "/etc/tollgate/listener.crt".into(),
            key_path: "/etc/tollgate/listener.key".into(),
        }),
        ..settings()
    };
    let store = Store::new();
    store.publish(DEFAULT_GROUP, Translator::new(settings).initial().unwrap());
    let group = store.group(DEFAULT_GROUP);
    let https = group
        .get(TypeKind::Listener, "listener_https_8443")
        .expect("the HTTPS listener");
    // The TLS context is packed inside the listener: look at the encoded bytes.
    let bytes = https.any().as_ref();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"/etc/tollgate/listener.key") && has(b"/etc/tollgate/listener.crt"));
    assert!(!has(b"PRIVATE KEY"));
}
