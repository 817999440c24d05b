//! One encoded resource, shared by every stream.

use std::sync::Arc;

use bytes::Bytes;
use ring::digest::{SHA256, digest};
use tollgate_proto::canonical::canonical;

use crate::{Error, TypeKind, XdsMessage};

/// A reference from one resource to another that Envoy must hold first (a route's cluster and its
/// endpoints, say). Used for make-before-break ordering.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dep {
    /// The type of the resource depended on.
    pub kind: TypeKind,
    /// Its name.
    pub name: Arc<str>,
}

/// A resource at one version: encoded once, as an `Any` for SotW and as a delta `Resource`.
#[derive(Debug)]
pub struct Resource {
    kind: TypeKind,
    name: Arc<str>,
    /// Hex SHA-256 of the canonical encoding: equal content, equal version, across restarts.
    version: Arc<str>,
    /// 64 bits of the digest, summed into type versions.
    fingerprint: u64,
    any: Bytes,
    delta: Bytes,
    deps: Box<[Dep]>,
}

// === impl Dep ===

impl Dep {
    /// A dependency on the resource `name` of type `kind`.
    pub fn new(kind: TypeKind, name: impl Into<Arc<str>>) -> Self {
        Dep {
            kind,
            name: name.into(),
        }
    }
}

// === impl Resource ===

impl Resource {
    /// Encodes `msg` under `name`, with the resources it needs Envoy to hold first.
    ///
    /// One buffer holds the delta `Resource` and, inside it, the `Any` (shared as a slice), so a
    /// large resource (the route configuration with every API) costs one allocation of its size,
    /// written once. The `Resource` fields are written as `resource`, then `version` (known only
    /// once the content is hashed), then `name`: protobuf parsers accept fields in any order.
    pub fn new<M: XdsMessage>(name: impl Into<Arc<str>>, msg: &M, deps: Vec<Dep>) -> Result<Arc<Self>, Error> {
        let canonical = if M::CANONICAL { None } else { Some(M::full_name()) };
        Self::encode(M::KIND, &M::type_url(), canonical.as_deref(), name.into(), msg, deps)
    }

    /// Encodes `msg`, a message of a registered [`CustomType`](crate::CustomType), as a
    /// [`TypeKind::Custom`] (or [`TypeKind::Custom2`]) resource. Its encoding is taken as canonical: the type must have no
    /// map fields. Refused when `M` is not the registered type.
    pub fn custom<M: prost::Message + prost::Name>(
        name: impl Into<Arc<str>>,
        msg: &M,
        deps: Vec<Dep>,
    ) -> Result<Arc<Self>, Error> {
        let type_url = M::type_url();
        let kind = match TypeKind::from_type_url(&type_url) {
            Some(k @ (TypeKind::Custom | TypeKind::Custom2)) => k,
            _ => return Err(Error::NotCustom(type_url)),
        };
        Self::encode(kind, &type_url, None, name.into(), msg, deps)
    }

    /// The common encoder; `canonical` names the message type to canonicalise before hashing, or
    /// is `None` when its encoding already is canonical.
    fn encode(
        kind: TypeKind,
        type_url: &str,
        canonical_as: Option<&str>,
        name: Arc<str>,
        msg: &impl prost::Message,
        deps: Vec<Dep>,
    ) -> Result<Arc<Self>, Error> {
        use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
        let value_len = msg.encoded_len();
        let any_len = key_len(1)
            + encoded_len_varint(type_url.len() as u64)
            + type_url.len()
            + key_len(2)
            + encoded_len_varint(value_len as u64)
            + value_len;
        // Version: 32 hex digits.
        let tail = key_len(1) + 1 + 32 + key_len(3) + encoded_len_varint(name.len() as u64) + name.len();
        let mut buf = Vec::with_capacity(key_len(2) + encoded_len_varint(any_len as u64) + any_len + tail);
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(any_len as u64, &mut buf);
        let any_start = buf.len();
        encode_key(1, WireType::LengthDelimited, &mut buf);
        encode_varint(type_url.len() as u64, &mut buf);
        buf.extend_from_slice(type_url.as_bytes());
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(value_len as u64, &mut buf);
        let value_start = buf.len();
        msg.encode_raw(&mut buf);
        let any_end = buf.len();
        let value = buf.get(value_start..any_end).unwrap_or_default();
        let sum = match canonical_as {
            None => digest(&SHA256, value),
            Some(type_name) => {
                let canon = canonical(type_name, value).map_err(|_| Error::Encode { name: name.to_string() })?;
                digest(&SHA256, &canon)
            }
        };
        let sum = sum.as_ref();
        let version = tollgate_proto::hex::encode(&sum[..16]);
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&sum[..8]);
        prost::encoding::string::encode(1, &version, &mut buf);
        encode_key(3, WireType::LengthDelimited, &mut buf);
        encode_varint(name.len() as u64, &mut buf);
        buf.extend_from_slice(name.as_bytes());
        let delta = Bytes::from(buf);
        let any = delta.slice(any_start..any_end);
        let mut deps = deps;
        deps.sort();
        deps.dedup();
        Ok(Arc::new(Resource {
            kind,
            name,
            version: version.into(),
            fingerprint: u64::from_be_bytes(fp),
            any,
            delta,
            deps: deps.into_boxed_slice(),
        }))
    }

    /// A stand-in for a resource a client says it holds at a version we have no body for (delta
    /// `initial_resource_versions`). It is never sent.
    pub(crate) fn placeholder(kind: TypeKind, name: Arc<str>, version: &str) -> Arc<Self> {
        Arc::new(Resource {
            kind,
            name,
            version: version.into(),
            fingerprint: 0,
            any: Bytes::new(),
            delta: Bytes::new(),
            deps: Box::new([]),
        })
    }

    /// The resource type.
    pub fn kind(&self) -> TypeKind {
        self.kind
    }

    /// The resource name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The content version.
    pub fn version(&self) -> &Arc<str> {
        &self.version
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The encoded `google.protobuf.Any`.
    pub fn any(&self) -> &Bytes {
        &self.any
    }

    /// The encoded delta `Resource`.
    pub fn delta(&self) -> &Bytes {
        &self.delta
    }

    /// What Envoy must hold before this resource.
    pub fn deps(&self) -> &[Dep] {
        &self.deps
    }
}

/// Formats a type version from the sum of the fingerprints of the resources in the set.
pub(crate) fn type_version(sum: u64) -> String {
    format!("{sum:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::pb::envoy::config::cluster::v3::Cluster;

    #[test]
    fn same_content_same_version() {
        let c = Cluster {
            name: "a".into(),
            ..Default::default()
        };
        let r1 = Resource::new("a", &c, vec![]).unwrap();
        let r2 = Resource::new("a", &c.clone(), vec![]).unwrap();
        assert_eq!(r1.version(), r2.version());
        let d = Cluster {
            name: "b".into(),
            ..Default::default()
        };
        assert_ne!(Resource::new("a", &d, vec![]).unwrap().version(), r1.version());
        assert_eq!(r1.kind(), TypeKind::Cluster);
        assert_eq!(r1.version().len(), 32);
    }

    #[test]
    fn deps_are_sorted_and_deduplicated() {
        let c = Cluster::default();
        let r = Resource::new(
            "a",
            &c,
            vec![
                Dep::new(TypeKind::Endpoint, "x"),
                Dep::new(TypeKind::Cluster, "x"),
                Dep::new(TypeKind::Cluster, "x"),
            ],
        )
        .unwrap();
        assert_eq!(
            r.deps(),
            &[Dep::new(TypeKind::Cluster, "x"), Dep::new(TypeKind::Endpoint, "x")]
        );
    }

    #[test]
    fn the_delta_form_decodes_as_envoys_resource_around_the_same_any() {
        use prost::Message;
        use tollgate_proto::pb::envoy::service::discovery::v3::Resource as EnvoyResource;
        use tollgate_proto::pb::google::protobuf::Any;
        let c = Cluster {
            name: "c1".into(),
            alt_stat_name: "x".repeat(300),
            ..Default::default()
        };
        let r = Resource::new("c1", &c, vec![]).unwrap();
        let want = Any {
            type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
            value: c.encode_to_vec(),
        };
        assert_eq!(Any::decode(r.any().as_ref()).unwrap(), want);
        assert_eq!(r.any().as_ref(), want.encode_to_vec().as_slice());
        let d = EnvoyResource::decode(r.delta().as_ref()).unwrap();
        assert_eq!(d.name, "c1");
        assert_eq!(d.version, r.version().as_ref());
        assert_eq!(d.resource, Some(want));
        // The Any is a slice of the delta buffer, not a copy.
        let (a, b) = (r.any().as_ptr() as usize, r.delta().as_ptr() as usize);
        assert!(a > b && a < b + r.delta().len());
    }
}
