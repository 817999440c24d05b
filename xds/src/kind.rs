//! The resource types we serve, in make-before-break order.

use tollgate_proto::keys::ApiKeySet;
use tollgate_proto::pb::envoy::config::{
    cluster::v3::Cluster, endpoint::v3::ClusterLoadAssignment, listener::v3::Listener, route::v3::RouteConfiguration,
};

/// An xDS resource type. The declaration order is the order in which a change reaches Envoy:
/// clusters, then their endpoints, then listeners, then routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TypeKind {
    /// CDS: `envoy.config.cluster.v3.Cluster`.
    Cluster,
    /// EDS: `envoy.config.endpoint.v3.ClusterLoadAssignment`.
    Endpoint,
    /// LDS: `envoy.config.listener.v3.Listener`.
    Listener,
    /// RDS: `envoy.config.route.v3.RouteConfiguration`.
    Route,
    /// Tollgate's own `tollgate.keys.v1.ApiKeySet`, for remote ext_authz replicas (Envoy never
    /// asks for it).
    KeySet,
}

// === impl TypeKind ===

impl TypeKind {
    /// How many kinds there are.
    pub const COUNT: usize = 5;

    /// Every kind, in make-before-break order.
    pub const ALL: [TypeKind; TypeKind::COUNT] = [
        TypeKind::Cluster,
        TypeKind::Endpoint,
        TypeKind::Listener,
        TypeKind::Route,
        TypeKind::KeySet,
    ];

    /// The `type.googleapis.com/...` URL of the resource message.
    pub fn type_url(self) -> &'static str {
        match self {
            TypeKind::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            TypeKind::Endpoint => "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
            TypeKind::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            TypeKind::Route => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            TypeKind::KeySet => "type.googleapis.com/tollgate.keys.v1.ApiKeySet",
        }
    }

    /// Parses a type URL; `None` for types we do not serve.
    pub fn from_type_url(url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.type_url() == url)
    }

    /// Short name, as in Envoy's stats (`cds`, `eds`, `lds`, `rds`).
    pub fn short(self) -> &'static str {
        match self {
            TypeKind::Cluster => "cds",
            TypeKind::Endpoint => "eds",
            TypeKind::Listener => "lds",
            TypeKind::Route => "rds",
            TypeKind::KeySet => "keys",
        }
    }

    /// Index into per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// In SotW a response of this type must carry the whole set (an absent name means deleted).
    pub fn full_state(self) -> bool {
        matches!(self, TypeKind::Cluster | TypeKind::Listener)
    }
}

/// Associates an Envoy message type with its [`TypeKind`].
pub trait XdsMessage: prost::Message + prost::Name + Sized {
    /// The kind this message is served as.
    const KIND: TypeKind;
    /// The message's encoding is canonical as it is (its maps, if any, were written sorted), so
    /// its version can hash it without re-encoding. Large assembled messages use this to avoid a
    /// second copy of themselves on every change.
    const CANONICAL: bool = false;
}

impl XdsMessage for Cluster {
    const KIND: TypeKind = TypeKind::Cluster;
}
impl XdsMessage for ClusterLoadAssignment {
    const KIND: TypeKind = TypeKind::Endpoint;
}
impl XdsMessage for Listener {
    const KIND: TypeKind = TypeKind::Listener;
}
impl XdsMessage for RouteConfiguration {
    const KIND: TypeKind = TypeKind::Route;
}
impl XdsMessage for ApiKeySet {
    const KIND: TypeKind = TypeKind::KeySet;
    // No map fields.
    const CANONICAL: bool = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Name;

    #[test]
    fn type_urls_match_the_messages() {
        assert_eq!(TypeKind::Cluster.type_url(), Cluster::type_url());
        assert_eq!(TypeKind::Endpoint.type_url(), ClusterLoadAssignment::type_url());
        assert_eq!(TypeKind::Listener.type_url(), Listener::type_url());
        assert_eq!(TypeKind::Route.type_url(), RouteConfiguration::type_url());
        assert_eq!(TypeKind::KeySet.type_url(), ApiKeySet::type_url());
        for k in TypeKind::ALL {
            assert_eq!(TypeKind::from_type_url(k.type_url()), Some(k));
        }
        assert_eq!(
            TypeKind::from_type_url("type.googleapis.com/envoy.config.core.v3.Node"),
            None
        );
    }
}
