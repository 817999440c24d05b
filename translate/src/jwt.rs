//! `jwt-auth` lowered to Envoy's own filters: `jwt_authn` verifies the token with the configured
//! key managers (one provider each, JWKS fetched by Envoy through a cluster generated here, or a
//! local JWKS), and a second, route-enabled RBAC filter checks what a route asks of the verified
//! claims (issuers, audiences, scopes, claim values). The listener part depends on the
//! configuration file only, so deploying an API never changes (and drains) the listeners; each
//! route carries its own requirement, checks and claim headers ([`route`]).

mod route;
#[cfg(test)]
use route::claim_checks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::accesslog::v3::{AccessLogFilter, ExtensionFilter, access_log_filter};
use tollgate_proto::pb::envoy::config::cluster::v3::{Cluster, cluster};
use tollgate_proto::pb::envoy::config::core::v3::{
    Address, BackoffStrategy, DataSource, HttpUri, RetryPolicy, SocketAddress, SubstitutionFormatString,
    TransportSocket, address, data_source, http_uri, socket_address, substitution_format_string, transport_socket,
};
use tollgate_proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use tollgate_proto::pb::envoy::extensions::access_loggers::filters::cel::v3::ExpressionFilter;
use tollgate_proto::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    JwksAsyncFetch, JwtAuthentication, JwtHeader, JwtProvider, JwtRequirement, JwtRequirementOrList, RemoteJwks,
    jwt_provider, jwt_requirement,
};
use tollgate_proto::pb::envoy::extensions::filters::http::rbac::v3::Rbac as RbacFilter;
use tollgate_proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, LocalReplyConfig, ResponseMapper, http_filter,
};
use tollgate_proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, UpstreamTlsContext, common_tls_context,
    subject_alt_name_matcher,
};
use tollgate_proto::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use tollgate_proto::pb::google::protobuf::UInt32Value;
use tollgate_xds::{Dep, Resource, TypeKind};

use super::{TranslateError, duration};

pub(crate) use route::{apply, route_jwt};

/// The `jwt_authn` filter's name, which is also the namespace of the metadata it writes.
pub const JWT_FILTER: &str = "envoy.filters.http.jwt_authn";
/// The RBAC filter that checks verified claims (off unless a route turns it on).
pub const CLAIMS_FILTER: &str = "tollgate.jwt_claims";
/// The one requirement routes name: a token verified by any configured key manager.
const REQUIREMENT: &str = "tollgate";
/// Where every provider puts the verified payload (with `scope` split into a list).
const PAYLOAD: &str = "payload";

/// The gateway's JWT settings (the configuration file's `[jwt]` section). Without key managers
/// there is no JWT filter, and the catalogue refuses `jwt-auth`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtSettings {
    pub key_managers: Vec<KeyManager>,
    /// How long Envoy keeps a fetched JWKS before fetching it again.
    pub jwks_cache_ttl: Duration,
    pub jwks_fetch_timeout: Duration,
    pub jwks_fetch_retries: u32,
    pub jwks_fetch_retry_interval: Duration,
    /// Clock skew allowed on `exp` and `nbf` (whole seconds; at least one).
    pub leeway: Duration,
    /// The request header carrying the token.
    pub header_name: String,
    /// The scheme before the token (`Bearer`); empty for a bare token.
    pub scheme: String,
    /// The status of a missing or invalid token (401 or 403).
    pub failure_status: u16,
    pub error_format: ErrorFormat,
    pub error_message: String,
    /// Whether a key manager's `issuer` must match the token's `iss`.
    pub validate_issuer: bool,
}

/// One key manager: a name documents use in `issuers`, its issuer and its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyManager {
    /// Letters, digits, `-` and `_`.
    pub name: String,
    pub issuer: Option<String>,
    pub jwks: Jwks,
}

/// Where a key manager's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jwks {
    /// Fetched (and refetched after the cache TTL) by Envoy.
    Remote(JwksEndpoint),
    /// A JWKS document given inline.
    Inline(String),
    /// A JWKS file on the Envoy's host.
    File(String),
}

/// A remote JWKS endpoint, already split into what the cluster needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksEndpoint {
    pub uri: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The CA (PEM path on the Envoy's host) for the endpoint's certificate; else the gateway's.
    pub ca_path: Option<String>,
    /// No certificate verification at all (tests and trusted internal endpoints only).
    pub skip_tls_verify: bool,
}

/// The body of a refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"error": "...", "message": "..."}`
    Json,
    /// The message as text.
    Plain,
    /// No body.
    Minimal,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            key_managers: vec![],
            jwks_cache_ttl: Duration::from_secs(300),
            jwks_fetch_timeout: Duration::from_secs(5),
            jwks_fetch_retries: 3,
            jwks_fetch_retry_interval: Duration::from_secs(2),
            leeway: Duration::from_secs(30),
            header_name: "Authorization".into(),
            scheme: "Bearer".into(),
            failure_status: 401,
            error_format: ErrorFormat::Json,
            error_message: "Authentication failed".into(),
            validate_issuer: true,
        }
    }
}

// === impl JwtSettings ===

impl JwtSettings {
    fn enabled(&self) -> bool {
        !self.key_managers.is_empty()
    }

    /// The HTTP filters, in order (`jwt_authn`, then the claim checks); none without key managers.
    pub fn filters(&self) -> Vec<HttpFilter> {
        if !self.enabled() {
            return vec![];
        }
        let providers: HashMap<String, JwtProvider> = self
            .key_managers
            .iter()
            .map(|km| (km.name.clone(), self.provider(km)))
            .collect();
        let mut names: Vec<&str> = providers.keys().map(String::as_str).collect();
        names.sort_unstable();
        let one = |n: &str| JwtRequirement {
            requires_type: Some(jwt_requirement::RequiresType::ProviderName(n.to_string())),
        };
        let requirement = match names.as_slice() {
            [single] => one(single),
            many => JwtRequirement {
                requires_type: Some(jwt_requirement::RequiresType::RequiresAny(JwtRequirementOrList {
                    requirements: many.iter().map(|n| one(n)).collect(),
                })),
            },
        };
        let jwt = JwtAuthentication {
            providers,
            requirement_map: [(REQUIREMENT.to_string(), requirement)].into_iter().collect(),
            // A CORS preflight carries no token; the CORS filter answers it.
            bypass_cors_preflight: true,
            ..Default::default()
        };
        vec![
            disabled_filter(JWT_FILTER, pack_any(jwt)),
            disabled_filter(CLAIMS_FILTER, pack_any(RbacFilter::default())),
        ]
    }

    fn provider(&self, km: &KeyManager) -> JwtProvider {
        let prefix = if self.scheme.is_empty() {
            String::new()
        } else {
            format!("{} ", self.scheme)
        };
        let source = match &km.jwks {
            Jwks::Remote(r) => jwt_provider::JwksSourceSpecifier::RemoteJwks(RemoteJwks {
                http_uri: Some(HttpUri {
                    uri: r.uri.clone(),
                    timeout: Some(duration(self.jwks_fetch_timeout)),
                    http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(cluster_name(&km.name))),
                }),
                cache_duration: Some(duration(self.jwks_cache_ttl)),
                // Fetched when the listener starts and again when the cache expires, off the
                // request path; the listener does not wait for it (an unreachable key manager
                // must not keep every API off the air).
                async_fetch: Some(JwksAsyncFetch {
                    fast_listener: true,
                    ..Default::default()
                }),
                retry_policy: Some(RetryPolicy {
                    num_retries: Some(UInt32Value {
                        value: self.jwks_fetch_retries,
                    }),
                    retry_back_off: Some(BackoffStrategy {
                        base_interval: Some(duration(self.jwks_fetch_retry_interval)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            Jwks::Inline(text) => jwt_provider::JwksSourceSpecifier::LocalJwks(DataSource {
                specifier: Some(data_source::Specifier::InlineString(text.clone())),
                ..Default::default()
            }),
            Jwks::File(path) => jwt_provider::JwksSourceSpecifier::LocalJwks(DataSource {
                specifier: Some(data_source::Specifier::Filename(path.clone())),
                ..Default::default()
            }),
        };
        JwtProvider {
            issuer: km.issuer.clone().filter(|_| self.validate_issuer).unwrap_or_default(),
            from_headers: vec![JwtHeader {
                name: self.header_name.clone(),
                value_prefix: prefix,
            }],
            // The upstream sees the token, as it would behind WSO2's gateway.
            forward: true,
            payload_in_metadata: PAYLOAD.into(),
            // Which key manager verified the token: the route's `issuers` check looks for it.
            header_in_metadata: route::verified_by(&km.name),
            normalize_payload_in_metadata: Some(jwt_provider::NormalizePayload {
                space_delimited_claims: vec!["scope".into()],
            }),
            clock_skew_seconds: u32::try_from(self.leeway.as_secs()).unwrap_or(u32::MAX),
            jwks_source_specifier: Some(source),
            ..Default::default()
        }
    }

    /// The JWKS clusters, one per remote key manager.
    pub fn clusters(&self, trusted_ca: &str) -> Result<Vec<Arc<Resource>>, TranslateError> {
        let mut out = Vec::new();
        for km in &self.key_managers {
            if let Jwks::Remote(r) = &km.jwks {
                let c = jwks_cluster(&cluster_name(&km.name), r, trusted_ca);
                out.push(Resource::new(c.name.clone(), &c, vec![])?);
            }
        }
        Ok(out)
    }

    /// What the listeners need Envoy to hold first: the JWKS clusters.
    pub fn deps(&self) -> Vec<Dep> {
        self.key_managers
            .iter()
            .filter(|km| matches!(km.jwks, Jwks::Remote(_)))
            .map(|km| Dep::new(TypeKind::Cluster, cluster_name(&km.name)))
            .collect()
    }

    /// Rewrites the local replies of these filters only (told apart by their response code
    /// details): a refused token gets the configured status and body, a failed claim check 403.
    pub fn local_reply(&self) -> Option<LocalReplyConfig> {
        if !self.enabled() {
            return None;
        }
        Some(LocalReplyConfig {
            mappers: vec![
                self.mapper("jwt_authn_access_denied", self.failure_status, "Unauthorized"),
                self.mapper("rbac_access_denied", 403, "Forbidden"),
            ],
            ..Default::default()
        })
    }

    fn mapper(&self, details_prefix: &str, status: u16, error: &str) -> ResponseMapper {
        let cel = ExpressionFilter {
            expression: format!("response.code_details.startsWith('{details_prefix}')"),
            ..Default::default()
        };
        let (body, content_type) = match self.error_format {
            ErrorFormat::Json => (
                serde_json::json!({"error": error, "message": self.error_message}).to_string(),
                "application/json",
            ),
            ErrorFormat::Plain => (self.error_message.clone(), "text/plain"),
            ErrorFormat::Minimal => (String::new(), "text/plain"),
        };
        ResponseMapper {
            filter: Some(AccessLogFilter {
                filter_specifier: Some(access_log_filter::FilterSpecifier::ExtensionFilter(ExtensionFilter {
                    name: "envoy.access_loggers.extension_filters.cel".into(),
                    config_type: Some(
                        tollgate_proto::pb::envoy::config::accesslog::v3::extension_filter::ConfigType::TypedConfig(
                            pack_any(cel),
                        ),
                    ),
                })),
            }),
            status_code: Some(UInt32Value {
                value: u32::from(status),
            }),
            body: Some(inline(&body)),
            body_format_override: Some(SubstitutionFormatString {
                format: Some(substitution_format_string::Format::TextFormatSource(inline(
                    "%LOCAL_REPLY_BODY%",
                ))),
                content_type: content_type.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn inline(text: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineString(text.to_string())),
        ..Default::default()
    }
}

fn disabled_filter(name: &str, config: tollgate_proto::pb::google::protobuf::Any) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        disabled: true,
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

/// The cluster Envoy fetches key manager `name`'s JWKS through.
fn cluster_name(name: &str) -> String {
    format!("tollgate_jwks_{name}")
}

/// A DNS (or, for an IP, static) cluster to the JWKS host, with TLS for `https`.
fn jwks_cluster(name: &str, r: &JwksEndpoint, trusted_ca: &str) -> Cluster {
    let is_ip = r.host.parse::<std::net::IpAddr>().is_ok();
    let kind = if is_ip {
        cluster::DiscoveryType::Static
    } else {
        cluster::DiscoveryType::StrictDns
    };
    let endpoint = LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: r.host.clone(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(r.port))),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    Cluster {
        name: name.to_string(),
        connect_timeout: Some(duration(Duration::from_secs(5))),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(kind as i32)),
        dns_lookup_family: cluster::DnsLookupFamily::V4Preferred as i32,
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.to_string(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![endpoint],
                ..Default::default()
            }],
            ..Default::default()
        }),
        transport_socket: r.tls.then(|| jwks_tls(r, trusted_ca, is_ip)),
        ..Default::default()
    }
}

/// TLS to a JWKS host: verified against its own CA (or the gateway's trust store) and its name,
/// unless verification is switched off.
fn jwks_tls(r: &JwksEndpoint, trusted_ca: &str, is_ip: bool) -> TransportSocket {
    let validation = (!r.skip_tls_verify).then(|| {
        let san_type = if is_ip {
            subject_alt_name_matcher::SanType::IpAddress
        } else {
            subject_alt_name_matcher::SanType::Dns
        };
        CertificateValidationContext {
            trusted_ca: Some(DataSource {
                specifier: Some(data_source::Specifier::Filename(
                    r.ca_path.clone().unwrap_or_else(|| trusted_ca.to_string()),
                )),
                ..Default::default()
            }),
            match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                san_type: san_type as i32,
                matcher: Some(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Exact(r.host.clone())),
                    ignore_case: false,
                }),
                oid: String::new(),
            }],
            ..Default::default()
        }
    });
    let ctx = UpstreamTlsContext {
        sni: if is_ip { String::new() } else { r.host.clone() },
        common_tls_context: Some(CommonTlsContext {
            validation_context_type: validation.map(common_tls_context::ValidationContextType::ValidationContext),
            ..Default::default()
        }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(ctx))),
    }
}

#[cfg(test)]
mod tests;
