//! The shared route configuration assembled from pre-encoded routes. These messages are
//! wire-compatible with Envoy's `RouteConfiguration` and `VirtualHost` (the fields we use), but carry
//! each route as its encoded bytes, so a change to one API re-encodes only that API's routes.

use bytes::Bytes;
use tollgate_xds::{TypeKind, XdsMessage};

/// `envoy.config.route.v3.RouteConfiguration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RouteConfigurationOut {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub virtual_hosts: Vec<VirtualHostOut>,
    #[prost(bool, tag = "14")]
    pub ignore_port_in_host_matching: bool,
}

/// `envoy.config.route.v3.VirtualHost`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VirtualHostOut {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, repeated, tag = "2")]
    pub domains: Vec<String>,
    /// Each an encoded `envoy.config.route.v3.Route`.
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub routes: Vec<Bytes>,
    #[prost(string, repeated, tag = "13")]
    pub request_headers_to_remove: Vec<String>,
}

impl prost::Name for RouteConfigurationOut {
    const NAME: &'static str = "RouteConfiguration";
    const PACKAGE: &'static str = "envoy.config.route.v3";

    fn type_url() -> String {
        TypeKind::Route.type_url().to_string()
    }
}

impl XdsMessage for RouteConfigurationOut {
    const KIND: TypeKind = TypeKind::Route;
    // Every route is stored canonical ([`encode_route`]) and nothing else here has a map.
    const CANONICAL: bool = true;
}

/// A route's encoding with its maps sorted (canonical), as it goes into [`VirtualHostOut::routes`].
pub fn encode_route(route: &tollgate_proto::pb::envoy::config::route::v3::Route) -> Bytes {
    let bytes = prost::Message::encode_to_vec(route);
    match tollgate_proto::canonical::canonical("envoy.config.route.v3.Route", &bytes) {
        Ok(std::borrow::Cow::Owned(canon)) => Bytes::from(canon),
        // Nothing to sort, or (never for a message prost just encoded) malformed.
        Ok(std::borrow::Cow::Borrowed(_)) | Err(_) => Bytes::from(bytes),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use tollgate_proto::pb::envoy::config::route::v3::{Route, RouteConfiguration};

    use super::*;

    #[test]
    fn decodes_as_envoys_route_configuration() {
        let route = Route {
            name: "r1".into(),
            ..Default::default()
        };
        let out = RouteConfigurationOut {
            name: "rc".into(),
            virtual_hosts: vec![VirtualHostOut {
                name: "vh".into(),
                domains: vec!["*".into()],
                routes: vec![Bytes::from(route.encode_to_vec())],
                request_headers_to_remove: vec!["x".into()],
            }],
            ignore_port_in_host_matching: true,
        };
        let rc = RouteConfiguration::decode(out.encode_to_vec().as_slice()).unwrap();
        assert_eq!(rc.name, "rc");
        assert!(rc.ignore_port_in_host_matching);
        assert_eq!(rc.virtual_hosts[0].routes, vec![route]);
        assert_eq!(rc.virtual_hosts[0].request_headers_to_remove, vec!["x".to_string()]);
        assert_eq!(
            <RouteConfigurationOut as prost::Name>::full_name(),
            "envoy.config.route.v3.RouteConfiguration"
        );
        assert_eq!(
            <RouteConfigurationOut as prost::Name>::type_url(),
            <RouteConfiguration as prost::Name>::type_url()
        );
    }
}
