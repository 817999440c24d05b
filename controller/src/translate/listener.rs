//! The gateway listeners: HTTP on the configured port and, with a certificate, HTTPS; both take
//! their routes from one RDS resource.

use std::sync::Arc;

use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, SocketAddress, TransportSocket, address,
    config_source, data_source, socket_address, transport_socket,
};
use tollgate_proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use tollgate_proto::pb::envoy::extensions::filters::http::router::v3::Router;
use tollgate_proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use tollgate_proto::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, TlsCertificate,
};
use tollgate_proto::pb::google::protobuf::BoolValue;
use tollgate_xds::Resource;

use super::{ROUTE_CONFIG, Settings, TranslateError, duration};

/// The listeners for `settings`.
pub fn listeners(settings: &Settings) -> Result<Vec<Arc<Resource>>, TranslateError> {
    let mut out = vec![listener(settings, settings.http_port, None)?];
    if let Some(tls) = &settings.tls {
        out.push(listener(settings, settings.https_port, Some(tls))?);
    }
    Ok(out)
}

fn listener(settings: &Settings, port: u16, tls: Option<&super::TlsMaterial>) -> Result<Arc<Resource>, TranslateError> {
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
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Router::default()))),
            ..Default::default()
        }],
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: true,
        generate_request_id: Some(BoolValue { value: true }),
        stream_idle_timeout: Some(duration(std::time::Duration::from_secs(300))),
        server_name: "tollgate".into(),
        ..Default::default()
    };
    let transport_socket = tls.map(|t| {
        let ctx = DownstreamTlsContext {
            common_tls_context: Some(CommonTlsContext {
                tls_certificates: vec![TlsCertificate {
                    certificate_chain: Some(inline(&t.cert_pem)),
                    private_key: Some(inline(&t.key_pem)),
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
    });
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
    Ok(Resource::new(name, &l, vec![])?)
}

fn inline(bytes: &[u8]) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes.to_vec())),
        ..Default::default()
    }
}
