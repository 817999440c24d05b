//! The gateway listeners: HTTP on the configured port and, with a certificate, HTTPS; both take
//! their routes from one RDS resource.

use std::sync::Arc;

use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::common::mutation_rules::v3::{
    HeaderMutation as MutationRule, header_mutation as mutation_rule,
};
use tollgate_proto::pb::envoy::config::core::v3::TypedExtensionConfig;
use tollgate_proto::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, SocketAddress, TransportSocket, address,
    config_source, data_source, socket_address, transport_socket,
};
use tollgate_proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use tollgate_proto::pb::envoy::extensions::filters::http::router::v3::Router;
use tollgate_proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use tollgate_proto::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation as EarlyHeaderMutation;
use tollgate_proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, TlsCertificate,
};
use tollgate_proto::pb::google::protobuf::BoolValue;
use tollgate_xds::Resource;

use std::collections::BTreeSet;

use tollgate_proto::pb::envoy::config::cluster::v3::{Cluster, cluster};
use tollgate_proto::pb::envoy::config::core::v3::{GrpcService, grpc_service};
use tollgate_proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use tollgate_proto::pb::envoy::extensions::filters::http::ext_authz::v3::{ExtAuthz, ext_authz};
use tollgate_proto::pb::envoy::extensions::upstreams::http::v3::{HttpProtocolOptions, http_protocol_options};
use tollgate_proto::pb::envoy::r#type::matcher::v3::{ListStringMatcher, StringMatcher, string_matcher};
use tollgate_xds::{Dep, TypeKind};

use super::{AUTHZ_CLUSTER, AuthzTarget, EXT_AUTHZ_FILTER, ROUTE_CONFIG, Settings, TranslateError, duration};

/// The listeners for `settings`; `key_headers` are the request headers ext_authz receives.
pub fn listeners(settings: &Settings, key_headers: &BTreeSet<String>) -> Result<Vec<Arc<Resource>>, TranslateError> {
    let mut out = vec![listener(settings, settings.http_port, None, key_headers)?];
    if let Some(tls) = &settings.tls {
        out.push(listener(settings, settings.https_port, Some(tls), key_headers)?);
    }
    Ok(out)
}

/// Key and subscription-token headers Envoy always passes to ext_authz (WSO2's defaults among
/// them), so the first API using one does not change the listener: connections opened before such
/// a change keep the old filter configuration, which would not send the header.
const COMMON_KEY_HEADERS: [&str; 5] = ["api-key", "apikey", "x-api-key", "x-apikey", "subscription-key"];

/// The ext_authz filter: off unless a route turns it on, fail closed, sent only the key headers.
fn ext_authz_filter(a: &AuthzTarget, key_headers: &BTreeSet<String>) -> HttpFilter {
    // The usual key headers are always allowed, so the first API using one does not change (and
    // drain) the listener; other names are added when an API starts using them.
    let mut allowed: BTreeSet<&str> = COMMON_KEY_HEADERS.iter().copied().collect();
    allowed.extend(key_headers.iter().map(String::as_str));
    let patterns = allowed
        .into_iter()
        .map(|h| StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::Exact(h.to_string())),
            ignore_case: true,
        })
        .collect();
    let cfg = ExtAuthz {
        services: Some(ext_authz::Services::GrpcService(GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(grpc_service::EnvoyGrpc {
                cluster_name: AUTHZ_CLUSTER.into(),
                ..Default::default()
            })),
            timeout: Some(duration(a.timeout)),
            ..Default::default()
        })),
        transport_api_version: ApiVersion::V3 as i32,
        failure_mode_allow: false,
        // Always set, even when empty, so Envoy sends no other request header.
        allowed_headers: Some(ListStringMatcher { patterns }),
        ..Default::default()
    };
    HttpFilter {
        name: EXT_AUTHZ_FILTER.into(),
        disabled: true,
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(cfg))),
        ..Default::default()
    }
}

/// The cluster of the ext_authz service: HTTP/2, STATIC for an IP, STRICT_DNS for a hostname.
pub fn authz_cluster(a: &AuthzTarget) -> Result<Arc<Resource>, TranslateError> {
    let is_ip = a.host.parse::<std::net::IpAddr>().is_ok();
    let kind = if is_ip {
        cluster::DiscoveryType::Static
    } else {
        cluster::DiscoveryType::StrictDns
    };
    let http2 = HttpProtocolOptions {
        upstream_protocol_options: Some(http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
            http_protocol_options::ExplicitHttpConfig {
                protocol_config: Some(
                    http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                        Default::default(),
                    ),
                ),
            },
        )),
        ..Default::default()
    };
    let c = Cluster {
        name: AUTHZ_CLUSTER.into(),
        connect_timeout: Some(duration(std::time::Duration::from_secs(1))),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(kind as i32)),
        typed_extension_protocol_options: [(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
            pack_any(http2),
        )]
        .into_iter()
        .collect(),
        transport_socket: a.tls.as_ref().map(super::cluster::service_tls_socket),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: AUTHZ_CLUSTER.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket_address(&a.host, a.port)),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(Resource::new(AUTHZ_CLUSTER, &c, vec![])?)
}

fn socket_address(host: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: host.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

fn listener(
    settings: &Settings,
    port: u16,
    tls: Option<&super::TlsMaterial>,
    key_headers: &BTreeSet<String>,
) -> Result<Arc<Resource>, TranslateError> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let name = format!("listener_{scheme}_{port}");
    let hcm = HttpConnectionManager {
        stat_prefix: scheme.into(),
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ConfigSource {
                resource_api_version: ApiVersion::V3 as i32,
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
                ..Default::default()
            }),
            route_config_name: ROUTE_CONFIG.into(),
        })),
        // Order: CORS (inert without a route policy), JWT (only with key managers configured), auth,
        // query mutation (off unless a route turns it on), router. See README "Policy order".
        http_filters: std::iter::once(super::cors::http_filter())
            .chain(settings.jwt.filters())
            .chain(settings.authz.iter().map(|a| ext_authz_filter(a, key_headers)))
            .chain(std::iter::once(super::mediation::header_mutation_filter()))
            .chain(std::iter::once(HttpFilter {
                name: "envoy.filters.http.router".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Router::default()))),
                ..Default::default()
            }))
            .collect(),
        // Routes (and so per-operation auth) match the normalised path: `.` and `..` segments
        // resolved, `//` merged. An escaped slash or backslash (`%2F`, `%5C`, either case) would
        // survive that and let `/ctx/open/..%2Fsecret` match the open `/ctx/open/*` while an
        // upstream that decodes it serves `/secret`. Such a request is refused with a 400 rather
        // than unescaped and redirected: a redirect works only for clients that follow it (and
        // then only for GET), a refusal is the same for every client, and no API can tell an
        // escaped slash from a path separator in its templates anyway.
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: true,
        path_with_escaped_slashes_action: http_connection_manager::PathWithEscapedSlashesAction::RejectRequest as i32,
        early_header_mutation_extensions: vec![strip_identity_headers()],
        generate_request_id: Some(BoolValue { value: true }),
        stream_idle_timeout: Some(duration(std::time::Duration::from_secs(300))),
        server_name: "tollgate".into(),
        access_log: super::access_log::access_logs(&settings.access_log),
        local_reply_config: settings.jwt.local_reply(),
        ..Default::default()
    };
    let transport_socket = tls.map(downstream_tls);
    let l = Listener {
        name: name.clone(),
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: settings.listen_address.clone(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
                ..Default::default()
            })),
        }),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
            }],
            transport_socket,
            ..Default::default()
        }],
        per_connection_buffer_limit_bytes: Some(tollgate_proto::pb::google::protobuf::UInt32Value { value: 1 << 20 }),
        ..Default::default()
    };
    // The ext_authz filter names its cluster: Envoy must hold it before the listener.
    let deps = settings
        .authz
        .iter()
        .map(|_| Dep::new(TypeKind::Cluster, AUTHZ_CLUSTER))
        .chain(settings.jwt.deps())
        .collect();
    Ok(Resource::new(name, &l, deps)?)
}

/// Removes the client's `x-tollgate-*` headers on every request, whatever its route. Early header
/// mutation runs before routing and before any HTTP filter, so the headers ext_authz adds on a
/// key-protected route come after it and survive. (A route or virtual host's
/// `request_headers_to_remove` would not do: the router applies it last, after ext_authz, and
/// would remove the real values too.)
fn strip_identity_headers() -> TypedExtensionConfig {
    let remove = MutationRule {
        action: Some(mutation_rule::Action::RemoveOnMatch(mutation_rule::RemoveOnMatch {
            key_matcher: Some(StringMatcher {
                match_pattern: Some(string_matcher::MatchPattern::Prefix(
                    tollgate_policies::IDENTITY_HEADER_PREFIX.into(),
                )),
                ignore_case: true,
            }),
        })),
    };
    TypedExtensionConfig {
        name: "envoy.http.early_header_mutation.header_mutation".into(),
        typed_config: Some(pack_any(EarlyHeaderMutation {
            mutations: vec![remove],
        })),
    }
}

/// The HTTPS listener's TLS: the configured certificate, HTTP/2 and HTTP/1.1 offered by ALPN.
fn downstream_tls(t: &super::TlsMaterial) -> TransportSocket {
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: Some(file(&t.cert_path)),
                private_key: Some(file(&t.key_path)),
                ..Default::default()
            }],
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(ctx))),
    }
}

/// A file Envoy reads itself.
fn file(path: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    }
}
