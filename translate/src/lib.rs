//! Translation of the API model into Envoy resources (reference §3.2–§3.8). Pure: the
//! [`Translator`] keeps each API's translated fragment so that a change to one API re-translates
//! only that API, then assembles the shared route configuration and the cluster set.
//!
//! This crate does no I/O and holds no state beyond the translator's fragments: it does not validate
//! (that is `tollgate-model`'s job), store or publish anything.

mod access_log;
mod basic_auth;
mod cluster;
mod cors;
mod jwt;
mod listener;
mod mediation;
mod ratelimit;
mod routes;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tollgate_proto::pb::envoy::config::core::v3::{DataSource, HeaderValue, HeaderValueOption, data_source};
use tollgate_proto::pb::envoy::config::route::v3::{DirectResponseAction, Route, RouteMatch, route, route_match};
use tollgate_xds::{Dep, Resource, TypeKind, Update};

pub use access_log::AccessLog;
pub use cluster::ClusterSpec;
pub use jwt::{ErrorFormat, Jwks, JwksEndpoint, JwtSettings, KeyManager};
pub use routes::RouteDefaults;
pub use tollgate_model::path::full_path;

use routes::SortableRoute;
use tollgate_model::{Api, VhostDefaults};

/// The one route configuration both listeners use.
pub const ROUTE_CONFIG: &str = "tollgate_routes";

/// Translation failures: only encoding problems, since input is validated.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// A resource could not be encoded.
    #[error(transparent)]
    Encode(#[from] tollgate_xds::Error),
}

/// Certificate and key files for the HTTPS listener, as Envoy reads them. Only the paths travel
/// over xDS: the private key never leaves the files (any xDS client could read an inline key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsMaterial {
    /// PEM certificate chain, an absolute path on the Envoy's host.
    pub cert_path: String,
    /// PEM private key, an absolute path on the Envoy's host.
    pub key_path: String,
}

/// Where Envoy reaches the ext_authz service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzTarget {
    /// IP literal (STATIC cluster) or hostname (STRICT_DNS).
    pub host: String,
    pub port: u16,
    /// Check timeout; a timed-out check refuses the request.
    pub timeout: Duration,
    /// TLS (and, with a client certificate, mutual TLS) to the service.
    pub tls: Option<AuthzTls>,
}

/// How Envoy reaches the ext_authz service over TLS: files on the Envoy's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzTls {
    /// The CA that signed the service's certificate (PEM path).
    pub ca_path: String,
    /// The DNS name in the service's certificate (checked, and sent as SNI).
    pub server_name: String,
    /// Envoy's client certificate and key (PEM paths), for mutual TLS.
    pub client_cert: Option<(String, String)>,
}

/// The name of the ext_authz HTTP filter (and of its per-route configuration).
pub const EXT_AUTHZ_FILTER: &str = "envoy.filters.http.ext_authz";

/// The cluster Envoy reaches the ext_authz service through.
pub const AUTHZ_CLUSTER: &str = "tollgate_authz";

/// Gateway-wide translation settings (from the config file).
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen_address: String,
    pub http_port: u16,
    pub https_port: u16,
    pub tls: Option<TlsMaterial>,
    pub routes: RouteDefaults,
    pub connect_timeout: Duration,
    pub trusted_ca: String,
    pub vhosts: VhostDefaults,
    /// API-key checks; without it `api-key-auth` routes are not protected (tests of translation only).
    pub authz: Option<AuthzTarget>,
    /// Where the listeners log requests.
    pub access_log: AccessLog,
    /// `jwt-auth`: key managers and how tokens are taken and refused.
    pub jwt: JwtSettings,
}

/// The configuration file's defaults: listeners on all addresses at 8080 (HTTP) and 8443 (HTTPS,
/// without a certificate), 60 s route and 300 s idle timeouts, 5 s upstream connect timeout, the
/// Debian CA bundle, default vhosts, no ext_authz service, and the access log on standard output.
impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen_address: "0.0.0.0".into(),
            http_port: 8080,
            https_port: 8443,
            tls: None,
            routes: RouteDefaults {
                timeout: Duration::from_secs(60),
                idle_timeout: Duration::from_secs(300),
                authz: true,
            },
            connect_timeout: Duration::from_secs(5),
            trusted_ca: "/etc/ssl/certs/ca-certificates.crt".into(),
            vhosts: VhostDefaults::default(),
            authz: None,
            access_log: AccessLog::Stdout,
            jwt: JwtSettings::default(),
        }
    }
}

/// One API, translated.
#[derive(Debug, Default)]
struct Fragment {
    /// Sorted, without duplicates. (Boxed slices, not sets or vectors: one fragment per API is
    /// held, and a set's node or a vector's spare capacity would cost more than the contents.)
    clusters: Box<[ClusterSpec]>,
    /// Header names its `api-key-auth` and `subscription-validation` policies read (Envoy must
    /// send them to ext_authz; `cookie` when a token may come in a cookie).
    key_headers: Box<[String]>,
    /// `(virtual host, route)` in operation order.
    routes: Box<[(String, SortableRoute)]>,
}

/// Incremental translator: holds every deployed API's fragment.
#[derive(Debug)]
pub struct Translator {
    settings: Settings,
    fragments: BTreeMap<String, Fragment>,
    fixed: FixedRoutes,
}

/// The routes every virtual host has, encoded once.
#[derive(Debug)]
struct FixedRoutes {
    health: Vec<Bytes>,
    not_found: Bytes,
}

// === impl Translator ===

impl Translator {
    pub fn new(settings: Settings) -> Self {
        let fixed = FixedRoutes {
            health: health_routes().iter().map(wire::encode_route).collect(),
            not_found: wire::encode_route(&not_found()),
        };
        Translator {
            settings,
            fragments: BTreeMap::new(),
            fixed,
        }
    }

    /// The listeners, the ext_authz cluster and the (initially API-less) route configuration.
    pub fn initial(&self) -> Result<Update, TranslateError> {
        let mut u = Update::new();
        if let Some(a) = &self.settings.authz {
            u.upsert(listener::authz_cluster(a)?);
        }
        for c in self.settings.jwt.clusters(&self.settings.trusted_ca)? {
            u.upsert(c);
        }
        self.listeners_into(&mut u)?;
        u.upsert(self.route_config()?);
        Ok(u)
    }

    /// Adds or replaces `api` (or removes it when it is undeployed) and returns what changed.
    pub fn set_api(&mut self, api: &Api) -> Result<Update, TranslateError> {
        if !api.deployed {
            return self.remove_api(&api.handle);
        }
        let before = self.fragments.insert(api.handle.clone(), self.fragment(api));
        self.finish(before, Some(&api.handle))
    }

    /// Removes the API `handle`; returns what changed.
    pub fn remove_api(&mut self, handle: &str) -> Result<Update, TranslateError> {
        let before = self.fragments.remove(handle);
        self.finish(before, None)
    }

    /// Everything, for a fresh store (startup).
    pub fn all(&self) -> Result<Update, TranslateError> {
        let mut u = self.initial()?;
        for spec in self.clusters_in_use() {
            for r in spec.resources(&self.settings.trusted_ca)? {
                u.upsert(r);
            }
        }
        Ok(u)
    }

    fn finish(&self, before: Option<Fragment>, handle: Option<&str>) -> Result<Update, TranslateError> {
        let mut u = Update::new();
        let in_use = self.clusters_in_use();
        if let Some(frag) = handle.and_then(|h| self.fragments.get(h)) {
            for spec in &frag.clusters {
                for r in spec.resources(&self.settings.trusted_ca)? {
                    u.upsert(r);
                }
            }
        }
        for spec in before.iter().flat_map(|f| f.clusters.iter()) {
            if !in_use.contains(spec) {
                u.remove(TypeKind::Cluster, spec.name.as_str());
                if spec.uses_eds() {
                    u.remove(TypeKind::Endpoint, spec.name.as_str());
                }
            }
        }
        u.upsert(self.route_config()?);
        // Unchanged listeners encode to the same version, which the store ignores.
        self.listeners_into(&mut u)?;
        Ok(u)
    }

    /// The listeners, allowing through the key headers in use now.
    fn listeners_into(&self, u: &mut Update) -> Result<(), TranslateError> {
        let headers: BTreeSet<String> = self
            .fragments
            .values()
            .flat_map(|f| f.key_headers.iter().cloned())
            .collect();
        for l in listener::listeners(&self.settings, &headers)? {
            u.upsert(l);
        }
        Ok(())
    }

    fn clusters_in_use(&self) -> BTreeSet<&ClusterSpec> {
        self.fragments.values().flat_map(|f| f.clusters.iter()).collect()
    }

    fn fragment(&self, api: &Api) -> Fragment {
        let mut key_headers = BTreeSet::new();
        for i in 0..api.operations.len() {
            if let Some(checks) = routes::authz_policies(api, i) {
                key_headers.extend(checks.headers());
            }
        }
        let mut targets = vec![(api.main_vhosts.clone(), &api.main)];
        if let (Some(vhost), Some(sandbox)) = (&api.sandbox_vhost, &api.sandbox) {
            targets.push((vec![vhost.clone()], sandbox));
        }
        let mut clusters = BTreeSet::new();
        let mut all_routes = Vec::new();
        for (vhosts, upstream) in targets {
            let spec = ClusterSpec::for_upstream(upstream, self.settings.connect_timeout);
            for vhost in &vhosts {
                for i in 0..api.operations.len() {
                    let routes = routes::operation_route(
                        api,
                        i,
                        vhost,
                        &spec.name,
                        &upstream.base_path,
                        upstream.host_rewrite,
                        self.settings.routes,
                    );
                    all_routes.extend(routes.into_iter().map(|r| (vhost.clone(), r)));
                }
            }
            clusters.insert(spec);
        }
        Fragment {
            clusters: clusters.into_iter().collect(),
            key_headers: key_headers.into_iter().collect(),
            routes: all_routes.into_boxed_slice(),
        }
    }

    /// The shared route configuration: one virtual host per distinct vhost, each with the health
    /// routes, its API routes by priority, and the catch-all 404. Routes are assembled from their
    /// encoded bytes; only the changed API's routes were encoded again.
    fn route_config(&self) -> Result<Arc<Resource>, TranslateError> {
        let mut by_vhost: BTreeMap<&str, Vec<&SortableRoute>> = BTreeMap::new();
        by_vhost.entry("*").or_default();
        for frag in self.fragments.values() {
            for (vhost, r) in &frag.routes {
                by_vhost.entry(vhost.as_str()).or_default().push(r);
            }
        }
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let mut virtual_hosts = Vec::new();
        // Explicit hosts claim their domains before the defaults' domain lists.
        let mut order: Vec<&str> = by_vhost.keys().copied().collect();
        order.sort_by_key(|v| (self.is_default(v), *v));
        for vhost in order {
            let domains: Vec<String> = self
                .domains(vhost)
                .into_iter()
                .filter(|d| taken.insert(d.clone()))
                .collect();
            if domains.is_empty() {
                continue;
            }
            let mut routes = by_vhost.remove(vhost).unwrap_or_default();
            routes::sort_routes(&mut routes);
            let mut all = self.fixed.health.clone();
            all.extend(routes.into_iter().map(|r| r.encoded.clone()));
            all.push(self.fixed.not_found.clone());
            virtual_hosts.push(wire::VirtualHostOut {
                name: vhost.to_string(),
                domains,
                routes: all,
                request_headers_to_remove: vec!["x-envoy-original-path".into()],
            });
        }
        let rc = wire::RouteConfigurationOut {
            name: ROUTE_CONFIG.into(),
            virtual_hosts,
            ignore_port_in_host_matching: true,
        };
        let deps: Vec<Dep> = self.clusters_in_use().into_iter().flat_map(ClusterSpec::deps).collect();
        Ok(Resource::new(ROUTE_CONFIG, &rc, deps)?)
    }

    fn is_default(&self, vhost: &str) -> bool {
        vhost == self.settings.vhosts.main || vhost == self.settings.vhosts.sandbox
    }

    /// Domains of a vhost: the default's domain list when it has one, else the host itself.
    /// Port-qualified Host headers match too: the route configuration ignores the port.
    fn domains(&self, vhost: &str) -> Vec<String> {
        let d = &self.settings.vhosts;
        let list: Vec<String> = if vhost == d.main && !d.main_domains.is_empty() {
            d.main_domains.clone()
        } else if vhost == d.sandbox && !d.sandbox_domains.is_empty() {
            d.sandbox_domains.clone()
        } else {
            vec![vhost.to_string()]
        };
        list
    }
}

/// Direct JSON responses for the gateway's own health paths.
fn health_routes() -> Vec<Route> {
    [
        ("gateway-ready", "/_gateway-health/ready", "{\"status\":\"ready\"}"),
        (
            "gateway-healthy",
            "/_gateway-health/healthy",
            "{\"status\":\"healthy\"}",
        ),
    ]
    .into_iter()
    .map(|(name, path, body)| json_route(name, route_match::PathSpecifier::Path(path.into()), 200, body))
    .collect()
}

/// The catch-all: 404 `{"error":"Not Found"}`.
fn not_found() -> Route {
    json_route(
        "no-api-found",
        route_match::PathSpecifier::Prefix("/".into()),
        404,
        "{\"error\":\"Not Found\"}",
    )
}

fn json_route(name: &str, path: route_match::PathSpecifier, status: u32, body: &str) -> Route {
    Route {
        name: name.into(),
        r#match: Some(RouteMatch {
            path_specifier: Some(path),
            ..Default::default()
        }),
        action: Some(route::Action::DirectResponse(DirectResponseAction {
            status,
            body: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineString(body.into())),
                ..Default::default()
            }),
            ..Default::default()
        })),
        response_headers_to_add: vec![HeaderValueOption {
            header: Some(HeaderValue {
                key: "content-type".into(),
                value: "application/json".into(),
                ..Default::default()
            }),
            append_action: 2, // OVERWRITE_IF_EXISTS_OR_ADD
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A protobuf `Duration`.
pub(crate) fn duration(d: Duration) -> tollgate_proto::pb::google::protobuf::Duration {
    tollgate_proto::pb::google::protobuf::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests;
