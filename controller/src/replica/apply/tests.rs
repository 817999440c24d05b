use prost::Message;
use tollgate_policies::authz::{Decision, SharedIndex, digest_of};
use tollgate_proto::pb::envoy::service::discovery::v3::Resource;
use tollgate_proto::pb::google::protobuf::Any;

use super::*;

fn resource(name: &str, api: &str, keys: &[&[u8]]) -> Resource {
    let set = ApiKeySet {
        api: api.into(),
        keys: keys
            .iter()
            .map(|k| ApiKeyDigest {
                sha256: digest_of(k).to_vec(),
                name: "k".into(),
                application: String::new(),
                expires_at: 0,
            })
            .collect(),
    };
    Resource {
        name: name.into(),
        version: "v1".into(),
        resource: Some(Any {
            type_url: keys::TYPE_URL.into(),
            value: set.encode_to_vec(),
        }),
        ..Default::default()
    }
}

fn shard(key: &[u8]) -> String {
    format!("{:02x}", digest_of(key)[0])
}

fn response(resources: Vec<Resource>, removed: &[&str]) -> DeltaDiscoveryResponse {
    DeltaDiscoveryResponse {
        type_url: keys::TYPE_URL.into(),
        resources,
        removed_resources: removed.iter().map(|s| s.to_string()).collect(),
        nonce: "1".into(),
        ..Default::default()
    }
}

#[test]
fn applies_sets_and_removals_and_refuses_bad_ones_whole() {
    let index = Arc::new(SharedIndex::default());
    let mut writer = IndexWriter::new(index.clone(), []);
    let mut held = HeldSets::default();
    let allows = |k: &[u8]| matches!(index.load().decide("orders", k, 0), Decision::Allow(_));
    let name = format!("orders/{}", shard(b"apip_a"));
    held.apply(
        &response(vec![resource(&name, "orders", &[b"apip_a"])], &[]),
        &mut writer,
    )
    .unwrap();
    assert!(allows(b"apip_a"));

    // Each of these is refused and changes nothing, however the rest of the response looks.
    let other = format!("orders/{}", shard(b"apip_b"));
    let good = resource(&other, "orders", &[b"apip_b"]);
    let mut short = resource(&other, "orders", &[]);
    short.resource = Some(Any {
        type_url: keys::TYPE_URL.into(),
        value: ApiKeySet {
            api: "orders".into(),
            keys: vec![ApiKeyDigest {
                sha256: vec![1, 2, 3],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    });
    let bad = [
        resource(&format!("billing/{}", shard(b"apip_c")), "orders", &[b"apip_c"]),
        resource(
            &format!("orders/{}", shard(b"apip_c")),
            "orders",
            &[b"apip_c", b"apip_a"],
        ),
        resource("orders/zz", "orders", &[]),
        short,
        Resource {
            name: other.clone(),
            resource: Some(Any {
                type_url: keys::TYPE_URL.into(),
                value: vec![0xff, 0xff],
            }),
            ..Default::default()
        },
    ];
    for (i, b) in bad.into_iter().enumerate() {
        let r = response(vec![good.clone(), b], &[]);
        assert!(held.apply(&r, &mut writer).is_err(), "case {i}");
        assert!(!allows(b"apip_b"), "case {i}: nothing applied");
        assert!(allows(b"apip_a"), "case {i}");
    }

    held.apply(&response(vec![], &[&name]), &mut writer).unwrap();
    assert!(!allows(b"apip_a"), "a removed set's keys stop at once");
}
