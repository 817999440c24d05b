//! Discovery responses that carry pre-encoded resources.
//!
//! A protobuf `repeated Any resources = 2` and a `repeated bytes resources = 2` have the same wire
//! encoding, so these messages decode as Envoy's `DiscoveryResponse` and `DeltaDiscoveryResponse`
//! while each resource is encoded once and shared (reference-counted) by every stream.

use bytes::Bytes;

/// Wire-compatible with `envoy.service.discovery.v3.DiscoveryResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SotwResponse {
    #[prost(string, tag = "1")]
    pub version_info: String,
    /// Each element is an encoded `google.protobuf.Any`.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub resources: Vec<Bytes>,
    #[prost(string, tag = "4")]
    pub type_url: String,
    #[prost(string, tag = "5")]
    pub nonce: String,
}

/// Wire-compatible with `envoy.service.discovery.v3.DeltaDiscoveryResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeltaResponse {
    #[prost(string, tag = "1")]
    pub system_version_info: String,
    /// Each element is an encoded `envoy.service.discovery.v3.Resource`.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub resources: Vec<Bytes>,
    #[prost(string, tag = "4")]
    pub type_url: String,
    #[prost(string, tag = "5")]
    pub nonce: String,
    #[prost(string, repeated, tag = "6")]
    pub removed_resources: Vec<String>,
}

/// Wire-compatible with `envoy.service.discovery.v3.Resource` (the fields we fill), used to
/// pre-encode the delta form of a resource once.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeltaResource {
    #[prost(string, tag = "1")]
    pub version: String,
    /// An encoded `google.protobuf.Any`.
    #[prost(bytes = "bytes", tag = "2")]
    pub resource: Bytes,
    #[prost(string, tag = "3")]
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::config::cluster::v3::Cluster;
    use crate::pb::envoy::service::discovery::v3::{DeltaDiscoveryResponse, DiscoveryResponse};
    use envoy_types::util::pack_any;
    use prost::Message;

    fn any_bytes() -> (Bytes, crate::pb::google::protobuf::Any) {
        let any = pack_any(Cluster {
            name: "c1".into(),
            ..Default::default()
        });
        (Bytes::from(any.encode_to_vec()), any)
    }

    #[test]
    fn sotw_response_decodes_as_envoys() {
        let (bytes, any) = any_bytes();
        let out = SotwResponse {
            version_info: "v1".into(),
            resources: vec![bytes.clone(), bytes],
            type_url: "t".into(),
            nonce: "7".into(),
        };
        let back = DiscoveryResponse::decode(out.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.version_info, "v1");
        assert_eq!(back.resources, vec![any.clone(), any]);
        assert_eq!(back.type_url, "t");
        assert_eq!(back.nonce, "7");
    }

    #[test]
    fn delta_response_decodes_as_envoys() {
        let (bytes, any) = any_bytes();
        let res = DeltaResource {
            version: "abc".into(),
            resource: bytes,
            name: "c1".into(),
        };
        let out = DeltaResponse {
            system_version_info: String::new(),
            resources: vec![Bytes::from(res.encode_to_vec())],
            type_url: "t".into(),
            nonce: "1".into(),
            removed_resources: vec!["gone".into()],
        };
        let back = DeltaDiscoveryResponse::decode(out.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.resources.len(), 1);
        assert_eq!(back.resources[0].name, "c1");
        assert_eq!(back.resources[0].version, "abc");
        assert_eq!(back.resources[0].resource, Some(any));
        assert_eq!(back.removed_resources, vec!["gone".to_string()]);
    }
}
