//! Upstream clusters, shared per scheme, host, port and connect timeout. IP upstreams use EDS;
//! hostname upstreams are STRICT_DNS clusters, so Envoy follows DNS changes itself without the
//! controller resolving and re-publishing (reference §3.8 uses the same cluster type).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::cluster::v3::{Cluster, cluster};
use tollgate_proto::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, SocketAddress, TransportSocket, address,
    config_source, data_source, socket_address, transport_socket,
};
use tollgate_proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use tollgate_proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext,
    common_tls_context, subject_alt_name_matcher,
};
use tollgate_proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use tollgate_xds::{Dep, Resource, TypeKind};

use super::{TranslateError, duration};
use tollgate_model::Upstream;

/// What makes two upstreams share a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterSpec {
    pub name: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub connect_timeout: Duration,
}

// === impl ClusterSpec ===

impl ClusterSpec {
    /// The cluster for `upstream`, with the gateway's default connect timeout unless it has one.
    pub fn for_upstream(upstream: &Upstream, default_connect: Duration) -> Self {
        let connect_timeout = upstream.connect_timeout.unwrap_or(default_connect);
        let scheme = if upstream.tls { "https" } else { "http" };
        let host: String = upstream
            .host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        let mut name = format!("upstream_{scheme}_{host}_{}", upstream.port);
        if connect_timeout != default_connect {
            name.push_str(&format!("_ct{}", connect_timeout.as_millis()));
        }
        ClusterSpec {
            name,
            tls: upstream.tls,
            host: upstream.host.clone(),
            port: upstream.port,
            connect_timeout,
        }
    }

    /// Whether the endpoints come over EDS (IP literal) rather than DNS.
    pub fn uses_eds(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }

    /// What a route to this cluster needs Envoy to hold first.
    pub fn deps(&self) -> Vec<Dep> {
        let mut deps = vec![Dep::new(TypeKind::Cluster, self.name.as_str())];
        if self.uses_eds() {
            deps.push(Dep::new(TypeKind::Endpoint, self.name.as_str()));
        }
        deps
    }

    /// The cluster and, for EDS clusters, its endpoints.
    pub fn resources(&self, trusted_ca: &str) -> Result<Vec<Arc<Resource>>, TranslateError> {
        let mut c = Cluster {
            name: self.name.clone(),
            connect_timeout: Some(duration(self.connect_timeout)),
            ..Default::default()
        };
        if self.uses_eds() {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Eds as i32));
            c.eds_cluster_config = Some(cluster::EdsClusterConfig {
                eds_config: Some(ConfigSource {
                    resource_api_version: ApiVersion::V3 as i32,
                    config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
                    ..Default::default()
                }),
                service_name: String::new(),
            });
        } else {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::StrictDns as i32,
            ));
            c.dns_lookup_family = cluster::DnsLookupFamily::V4Preferred as i32;
            c.load_assignment = Some(self.load_assignment());
        }
        if self.tls {
            c.transport_socket = Some(self.tls_socket(trusted_ca));
        }
        let mut out = vec![Resource::new(self.name.as_str(), &c, vec![])?];
        if self.uses_eds() {
            out.push(Resource::new(self.name.as_str(), &self.load_assignment(), vec![])?);
        }
        Ok(out)
    }

    /// The Host header `auto_host_rewrite` sends: the port only when not the scheme's default.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn load_assignment(&self) -> ClusterLoadAssignment {
        let endpoint = LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: self.host.clone(),
                        port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(self.port))),
                        ..Default::default()
                    })),
                }),
                hostname: self.authority(),
                ..Default::default()
            })),
            ..Default::default()
        };
        ClusterLoadAssignment {
            cluster_name: self.name.clone(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![endpoint],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// TLS with SNI (hostnames only) and verification against the system trust store.
    fn tls_socket(&self, trusted_ca: &str) -> TransportSocket {
        let is_ip = self.uses_eds();
        let san_type = if is_ip {
            subject_alt_name_matcher::SanType::IpAddress
        } else {
            subject_alt_name_matcher::SanType::Dns
        };
        let validation = CertificateValidationContext {
            trusted_ca: Some(DataSource {
                specifier: Some(data_source::Specifier::Filename(trusted_ca.to_string())),
                ..Default::default()
            }),
            match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                san_type: san_type as i32,
                matcher: Some(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Exact(self.host.clone())),
                    ignore_case: false,
                }),
                oid: String::new(),
            }],
            ..Default::default()
        };
        let ctx = UpstreamTlsContext {
            sni: if is_ip { String::new() } else { self.host.clone() },
            common_tls_context: Some(CommonTlsContext {
                validation_context_type: Some(common_tls_context::ValidationContextType::ValidationContext(validation)),
                ..Default::default()
            }),
            ..Default::default()
        };
        TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(ctx))),
        }
    }
}

/// TLS to a service of ours (the ext_authz service): verified against `tls.ca_path` and
/// `tls.server_name`, with Envoy's client certificate for mutual TLS.
pub(crate) fn service_tls_socket(tls: &super::AuthzTls) -> TransportSocket {
    let file = |path: &str| DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    };
    let validation = CertificateValidationContext {
        trusted_ca: Some(file(&tls.ca_path)),
        match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
            san_type: subject_alt_name_matcher::SanType::Dns as i32,
            matcher: Some(StringMatcher {
                match_pattern: Some(string_matcher::MatchPattern::Exact(tls.server_name.clone())),
                ignore_case: false,
            }),
            oid: String::new(),
        }],
        ..Default::default()
    };
    let tls_certificates = tls
        .client_cert
        .iter()
        .map(|(cert, key)| TlsCertificate {
            certificate_chain: Some(file(cert)),
            private_key: Some(file(key)),
            ..Default::default()
        })
        .collect();
    let ctx = UpstreamTlsContext {
        sni: tls.server_name.clone(),
        common_tls_context: Some(CommonTlsContext {
            tls_certificates,
            // gRPC over TLS needs HTTP/2 negotiated by ALPN.
            alpn_protocols: vec!["h2".into()],
            validation_context_type: Some(common_tls_context::ValidationContextType::ValidationContext(validation)),
            ..Default::default()
        }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(ctx))),
    }
}
