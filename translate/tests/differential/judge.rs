//! The judge: the pinned Envoy, run with `--mode validate` on a static bootstrap that holds what the
//! translator made of a set of APIs (clusters, endpoints inlined, listeners with the route configuration
//! inlined), with the same RE2 program-size limit the validator applies.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prost::Message;
use tollgate_model::{Api, VhostDefaults};
use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::bootstrap::v3::{
    Bootstrap, LayeredRuntime, RuntimeLayer, bootstrap, runtime_layer,
};
use tollgate_proto::pb::envoy::config::cluster::v3::{Cluster, cluster};
use tollgate_proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use tollgate_proto::pb::envoy::config::listener::v3::{Listener, filter};
use tollgate_proto::pb::envoy::config::route::v3::RouteConfiguration;
use tollgate_proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use tollgate_proto::pb::google::protobuf::{Any, Struct, Value, value};
use tollgate_translate::{AuthzTarget, ROUTE_CONFIG, Settings, Translator};
use tollgate_xds::{DEFAULT_GROUP, Store, TypeKind};

/// The program-size limit the bootstraps we ship set and the validator checks against.
const MAX_PROGRAM_SIZE: usize = tollgate_model::validate::regex::MAX_PROGRAM_SIZE;

/// A throwaway self-signed certificate (no key kept): the trust store upstream TLS clusters name.
/// Envoy loads it when it builds the clusters' TLS contexts, even in validate mode.
const TRUSTED_CA: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBpzCCAU2gAwIBAgIUNg1Zx/zt/5Ozr+NGZ9lHYQ0X39MwCgYIKoZIzj0EAwIw\n\
KDEmMCQGA1UEAwwddG9sbGdhdGUgZGlmZmVyZW50aWFsIHRlc3QgQ0EwIBcNMjYx\n\
MjAzMTAwOTUwWhgPMjEyNjExMDkxMDA5NTBaMCgxJjAkBgNVBAMMHXRvbGxnYXRl\n\
IGRpZmZlcmVudGlhbCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n\
Vrap15YC3BXR+X8mFeLCEN+lkrAMpvw6qPWSwt+HpJbuajFbjOKoo4PaHzeFwFkM\n\
yaZgJR4tfjjWYKqp+QXAmaNTMFEwHQYDVR0OBBYEFEmid7WcnEoIubS06gkbdwzI\n\
nMb0MB8GA1UdIwQYMBaAFEmid7WcnEoIubS06gkbdwzInMb0MA8GA1UdEwEB/wQF\n\
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAP6SihceDxPU66O73Gvq04iYYdHipJaC\n\
nXGkAw7afSOyAiBYOEjvHy4wNIzXyw9UfKG0b7bdAr8URGP+LTgTSGHOUw==\n\
-----END CERTIFICATE-----\n";

/// The pinned Envoy and a scratch folder for its bootstraps.
#[derive(Debug)]
pub struct Judge {
    envoy: PathBuf,
    dir: PathBuf,
    ca: PathBuf,
    next: AtomicUsize,
}

impl Judge {
    /// Finds the Envoy (`TOLLGATE_ENVOY_BIN`, else the workspace's `.tools/envoy/bin/envoy`); panics
    /// when there is none, so the check can never pass without a judge.
    pub fn new(tag: &str) -> Judge {
        let envoy = std::env::var_os("TOLLGATE_ENVOY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/envoy/bin/envoy"));
        assert!(
            envoy.is_file(),
            "no Envoy at {}: run `make envoy` (or set TOLLGATE_ENVOY_BIN) before this test",
            envoy.display()
        );
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("differential-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("trusted_ca.pem");
        std::fs::write(&ca, TRUSTED_CA).unwrap();
        Judge {
            envoy,
            dir,
            ca,
            next: AtomicUsize::new(0),
        }
    }

    /// The gateway settings used for translation (ext_authz on, so per-route auth config is judged too).
    pub fn settings(&self) -> Settings {
        Settings {
            trusted_ca: self.ca.display().to_string(),
            vhosts: defaults(),
            authz: Some(AuthzTarget {
                host: "127.0.0.1".into(),
                port: 18001,
                timeout: Duration::from_millis(500),
                tls: None,
            }),
            ..Settings::default()
        }
    }

    /// Whether Envoy accepts the translation of `apis` together; Envoy's message when it does not.
    pub fn verdict(&self, apis: &[Api]) -> Result<(), String> {
        self.verdict_with(self.settings(), apis)
    }

    /// [`Judge::verdict`] with other gateway settings.
    pub fn verdict_with(&self, settings: Settings, apis: &[Api]) -> Result<(), String> {
        let boot = bootstrap(settings, apis);
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let file = self.dir.join(format!("bootstrap-{n}.pb"));
        std::fs::write(&file, boot.encode_to_vec()).unwrap();
        let out = Command::new(&self.envoy)
            .args([
                "--mode",
                "validate",
                "--log-level",
                "error",
                "--disable-hot-restart",
                "-c",
            ])
            .arg(&file)
            .output()
            .unwrap();
        if out.status.success() {
            let _ = std::fs::remove_file(&file);
            return Ok(());
        }
        let mut msg = String::from_utf8_lossy(&out.stderr).into_owned();
        msg.push_str(&String::from_utf8_lossy(&out.stdout));
        Err(reason(&msg))
    }
}

impl Drop for Judge {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Envoy's reason, without its log prefix and the dump of the configuration it may print before it.
fn reason(msg: &str) -> String {
    let msg = msg.trim();
    let msg = msg.find("error initializing configuration").map_or(msg, |i| &msg[i..]);
    match (msg.find("goo.gle/debug"), msg.rfind("\n: ")) {
        (Some(dump), Some(tail)) if tail > dump => format!("{}{}", &msg[..dump], &msg[tail + 3..]),
        (Some(dump), _) => {
            let shown: Vec<&str> = msg[dump..].split_whitespace().skip(1).take(40).collect();
            format!("{}[{}]", &msg[..dump], shown.join(" "))
        }
        (None, _) => msg.to_string(),
    }
}

/// The vhost defaults of the validator and the translator.
pub fn defaults() -> VhostDefaults {
    VhostDefaults {
        main: "*".into(),
        main_domains: vec![],
        sandbox: "sandbox-*".into(),
        sandbox_domains: vec![],
        upstreams: tollgate_model::UpstreamGuard::default(),
    }
}

/// A static bootstrap holding the translation of `apis`.
fn bootstrap(settings: Settings, apis: &[Api]) -> Bootstrap {
    let mut t = Translator::new(settings);
    for api in apis {
        t.set_api(api).unwrap();
    }
    let store = Store::new();
    store.publish(DEFAULT_GROUP, t.all().unwrap());
    let group = store.group(DEFAULT_GROUP);
    let decoded = |kind: TypeKind| -> Vec<Any> {
        group
            .names(kind)
            .iter()
            .map(|name| Any::decode(group.get(kind, name).unwrap().any().as_ref()).unwrap())
            .collect()
    };
    let endpoints: HashMap<String, ClusterLoadAssignment> = decoded(TypeKind::Endpoint)
        .iter()
        .map(|a| ClusterLoadAssignment::decode(a.value.as_slice()).unwrap())
        .map(|cla| (cla.cluster_name.clone(), cla))
        .collect();
    let clusters = decoded(TypeKind::Cluster)
        .iter()
        .map(|a| static_cluster(Cluster::decode(a.value.as_slice()).unwrap(), &endpoints))
        .collect();
    let route = group.get(TypeKind::Route, ROUTE_CONFIG).unwrap();
    let rc = RouteConfiguration::decode(Any::decode(route.any().as_ref()).unwrap().value.as_slice()).unwrap();
    let listeners = decoded(TypeKind::Listener)
        .iter()
        .map(|a| inline_routes(Listener::decode(a.value.as_slice()).unwrap(), &rc))
        .collect();
    Bootstrap {
        static_resources: Some(bootstrap::StaticResources {
            listeners,
            clusters,
            ..Default::default()
        }),
        layered_runtime: Some(runtime()),
        ..Default::default()
    }
}

/// An EDS cluster becomes STATIC with its endpoints inlined (there is no EDS in a static bootstrap).
fn static_cluster(mut c: Cluster, endpoints: &HashMap<String, ClusterLoadAssignment>) -> Cluster {
    if c.eds_cluster_config.take().is_some() {
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        ));
        c.load_assignment = Some(endpoints.get(&c.name).cloned().unwrap_or_else(|| {
            panic!("no endpoints for EDS cluster {}", c.name);
        }));
    }
    c
}

/// Each HTTP connection manager takes the route configuration inline instead of over RDS.
fn inline_routes(mut l: Listener, rc: &RouteConfiguration) -> Listener {
    for chain in &mut l.filter_chains {
        for f in &mut chain.filters {
            let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type else {
                continue;
            };
            if !any.type_url.ends_with("HttpConnectionManager") {
                continue;
            }
            let mut hcm = HttpConnectionManager::decode(any.value.as_slice()).unwrap();
            hcm.route_specifier = Some(http_connection_manager::RouteSpecifier::RouteConfig(rc.clone()));
            *any = pack_any(hcm);
        }
    }
    l
}

/// The runtime of the bootstraps we ship: the RE2 program-size limit the validator checks against.
fn runtime() -> LayeredRuntime {
    let limit = Value {
        kind: Some(value::Kind::NumberValue(MAX_PROGRAM_SIZE as f64)),
    };
    LayeredRuntime {
        layers: vec![RuntimeLayer {
            name: "static".into(),
            layer_specifier: Some(runtime_layer::LayerSpecifier::StaticLayer(Struct {
                fields: [("re2.max_program_size.error_level".to_string(), limit)]
                    .into_iter()
                    .collect(),
            })),
        }],
    }
}
