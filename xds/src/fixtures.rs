//! Small resource builders for tests and benchmarks (feature `fixtures`): a listener using RDS, a
//! route configuration, an EDS cluster and its endpoints.

use std::sync::Arc;

use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::cluster::v3::{Cluster, cluster};
use tollgate_proto::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, SocketAddress, address, config_source, socket_address,
};
use tollgate_proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use tollgate_proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use tollgate_proto::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action, route_match,
};
use tollgate_proto::pb::envoy::extensions::filters::http::router::v3::Router;
use tollgate_proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use tollgate_proto::pb::google::protobuf::Duration;

use crate::{Dep, Resource, TypeKind};

/// A route: requests whose path starts with `prefix` go to `cluster`.
#[derive(Clone, Debug)]
pub struct PrefixRoute {
    /// Path prefix.
    pub prefix: String,
    /// Target cluster.
    pub cluster: String,
    /// A regular expression to match instead of the prefix, when set (lets tests make Envoy
    /// reject a config with an invalid expression).
    pub regex: Option<String>,
}

fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

fn socket(host: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

/// An HTTP listener on `127.0.0.1:port` whose routes come from RDS resource `route_config`.
pub fn listener(name: &str, port: u16, route_config: &str) -> Arc<Resource> {
    let hcm = HttpConnectionManager {
        stat_prefix: name.to_string(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_config.to_string(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Router::default()))),
            ..Default::default()
        }],
        ..Default::default()
    };
    let l = Listener {
        name: name.to_string(),
        address: Some(socket("127.0.0.1", port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    resource(name, &l, vec![])
}

/// A route configuration with one catch-all virtual host; depends on each route's cluster and
/// its endpoints.
pub fn route_config(name: &str, routes: &[PrefixRoute]) -> Arc<Resource> {
    let mut deps = Vec::new();
    let routes = routes
        .iter()
        .map(|r| {
            deps.push(Dep::new(TypeKind::Cluster, r.cluster.as_str()));
            deps.push(Dep::new(TypeKind::Endpoint, r.cluster.as_str()));
            let path = match &r.regex {
                Some(re) => route_match::PathSpecifier::SafeRegex(
                    tollgate_proto::pb::envoy::r#type::matcher::v3::RegexMatcher {
                        regex: re.clone(),
                        ..Default::default()
                    },
                ),
                None => route_match::PathSpecifier::Prefix(r.prefix.clone()),
            };
            Route {
                name: format!("{}->{}", r.prefix, r.cluster),
                r#match: Some(RouteMatch {
                    path_specifier: Some(path),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(r.cluster.clone())),
                    ..Default::default()
                })),
                ..Default::default()
            }
        })
        .collect();
    let rc = RouteConfiguration {
        name: name.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    };
    resource(name, &rc, deps)
}

/// An EDS cluster named `name`, its endpoints served over ADS.
pub fn cluster(name: &str) -> Arc<Resource> {
    let c = Cluster {
        name: name.to_string(),
        connect_timeout: Some(Duration { seconds: 1, nanos: 0 }),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        }),
        ..Default::default()
    };
    resource(name, &c, vec![])
}

/// The endpoints of cluster `name`: the given loopback ports.
pub fn endpoints(name: &str, ports: &[u16]) -> Arc<Resource> {
    let lb_endpoints = ports
        .iter()
        .map(|p| LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                address: Some(socket("127.0.0.1", *p)),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    let cla = ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints,
            ..Default::default()
        }],
        ..Default::default()
    };
    resource(name, &cla, vec![])
}

fn resource<M: crate::XdsMessage>(name: &str, msg: &M, deps: Vec<Dep>) -> Arc<Resource> {
    match Resource::new(name, msg, deps) {
        Ok(r) => r,
        // Messages built in memory always re-parse.
        Err(e) => unreachable!("{e}"),
    }
}

/// The custom type of tests: `google.protobuf.StringValue` stands in for an application's own
/// message (it has no map fields, as custom types must not).
pub const CUSTOM: crate::CustomType = crate::CustomType {
    type_url: "type.googleapis.com/google.protobuf.StringValue",
    short: "str",
};

/// Registers [`CUSTOM`] as the process's custom type.
pub fn register_custom_type() -> Result<(), crate::Error> {
    CUSTOM.register()
}

/// A resource of the custom type carrying `value` (registers [`CUSTOM`] first).
pub fn custom(name: &str, value: &str) -> Result<Arc<Resource>, crate::Error> {
    register_custom_type()?;
    Resource::custom(name, &value.to_string(), Vec::new())
}
