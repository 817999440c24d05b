//! The resource types we serve, in make-before-break order, and the one type the embedding
//! application may add beside Envoy's.

use std::sync::OnceLock;

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
    /// The embedding application's own type (see [`CustomType`]): Envoy never asks for it.
    Custom,
    /// A second type of the application's (see [`CustomType::register_second`]).
    Custom2,
}

/// The application's own resource type, served beside Envoy's as [`TypeKind::Custom`] (over ADS;
/// its resources are built with [`Resource::custom`](crate::Resource::custom)). Who may read it
/// is the application's business: see [`AccessRule`](crate::AccessRule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomType {
    /// Its `type.googleapis.com/...` URL.
    pub type_url: &'static str,
    /// Its short name in reports, like `cds`.
    pub short: &'static str,
}

/// A type URL is a fact about the whole process, as a message's `prost::Name` is; registering it
/// once keeps [`TypeKind`] a plain `Copy` index that needs no table passed around.
static CUSTOM: OnceLock<CustomType> = OnceLock::new();

/// The second custom type, registered the same way.
static CUSTOM2: OnceLock<CustomType> = OnceLock::new();

/// The short name and URL of [`TypeKind::Custom`] before a type is registered: no request names it.
const UNREGISTERED: CustomType = CustomType {
    type_url: "",
    short: "custom",
};

/// The same for [`TypeKind::Custom2`].
const UNREGISTERED2: CustomType = CustomType {
    type_url: "",
    short: "custom2",
};

// === impl TypeKind ===

impl TypeKind {
    /// How many kinds there are.
    pub const COUNT: usize = 6;

    /// Every kind, in make-before-break order.
    pub const ALL: [TypeKind; TypeKind::COUNT] = [
        TypeKind::Cluster,
        TypeKind::Endpoint,
        TypeKind::Listener,
        TypeKind::Route,
        TypeKind::Custom,
        TypeKind::Custom2,
    ];

    /// The `type.googleapis.com/...` URL of the resource message.
    pub fn type_url(self) -> &'static str {
        match self {
            TypeKind::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            TypeKind::Endpoint => "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
            TypeKind::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            TypeKind::Route => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            TypeKind::Custom => CustomType::current().type_url,
            TypeKind::Custom2 => CustomType::current2().type_url,
        }
    }

    /// Parses a type URL; `None` for types we do not serve (the custom type only once registered).
    pub fn from_type_url(url: &str) -> Option<Self> {
        if url.is_empty() {
            return None;
        }
        Self::ALL.into_iter().find(|k| k.type_url() == url)
    }

    /// Short name, as in Envoy's stats (`cds`, `eds`, `lds`, `rds`; the custom type's own).
    pub fn short(self) -> &'static str {
        match self {
            TypeKind::Cluster => "cds",
            TypeKind::Endpoint => "eds",
            TypeKind::Listener => "lds",
            TypeKind::Route => "rds",
            TypeKind::Custom => CustomType::current().short,
            TypeKind::Custom2 => CustomType::current2().short,
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

// === impl CustomType ===

impl CustomType {
    /// Makes this the process's custom type. Registering the same type again is fine; another is
    /// refused, naming the one registered.
    pub fn register(self) -> Result<(), crate::Error> {
        let have = *CUSTOM.get_or_init(|| self);
        if have == self {
            Ok(())
        } else {
            Err(crate::Error::CustomTypeTaken(have.type_url))
        }
    }

    /// Makes this the process's second custom type ([`TypeKind::Custom2`]), on the same terms.
    pub fn register_second(self) -> Result<(), crate::Error> {
        let have = *CUSTOM2.get_or_init(|| self);
        if have == self {
            Ok(())
        } else {
            Err(crate::Error::CustomTypeTaken(have.type_url))
        }
    }

    /// The registered custom type, if any.
    pub fn registered() -> Option<CustomType> {
        CUSTOM.get().copied()
    }

    fn current() -> CustomType {
        Self::registered().unwrap_or(UNREGISTERED)
    }

    fn current2() -> CustomType {
        CUSTOM2.get().copied().unwrap_or(UNREGISTERED2)
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
        for k in &TypeKind::ALL[..4] {
            assert_eq!(TypeKind::from_type_url(k.type_url()), Some(*k));
        }
        crate::fixtures::register_custom_type().unwrap();
        assert_eq!(TypeKind::Custom.type_url(), crate::fixtures::CUSTOM.type_url);
        // Custom2 is registered (or not) by another test of this process.
        for k in &TypeKind::ALL[..5] {
            assert_eq!(TypeKind::from_type_url(k.type_url()), Some(*k));
        }
        assert_eq!(
            TypeKind::from_type_url("type.googleapis.com/envoy.config.core.v3.Node"),
            None
        );
        assert_eq!(TypeKind::from_type_url(""), None);
    }

    #[test]
    fn only_one_custom_type_is_registered() {
        crate::fixtures::register_custom_type().unwrap();
        assert!(crate::fixtures::CUSTOM.register().is_ok(), "the same again");
        let other = CustomType {
            type_url: "type.googleapis.com/example.Other",
            short: "other",
        };
        assert!(
            matches!(other.register(), Err(crate::Error::CustomTypeTaken(u)) if u == crate::fixtures::CUSTOM.type_url)
        );
        assert_eq!(CustomType::registered(), Some(crate::fixtures::CUSTOM));
    }

    #[test]
    fn a_second_custom_type_is_served_as_custom2() {
        let second = CustomType {
            type_url: "type.googleapis.com/example.Second",
            short: "second",
        };
        second.register_second().unwrap();
        assert!(second.register_second().is_ok(), "the same again");
        assert_eq!(TypeKind::Custom2.short(), "second");
        assert_eq!(TypeKind::from_type_url(second.type_url), Some(TypeKind::Custom2));
        let other = CustomType {
            type_url: "type.googleapis.com/example.Third",
            short: "third",
        };
        assert!(matches!(other.register_second(), Err(crate::Error::CustomTypeTaken(u)) if u == second.type_url));
    }
}
