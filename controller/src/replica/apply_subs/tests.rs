use std::sync::Arc;

use prost::Message;
use tollgate_policies::authz::digest_of;
use tollgate_policies::authz::subs::SharedSubscriptions;
use tollgate_proto::pb::envoy::service::discovery::v3::Resource;
use tollgate_proto::pb::google::protobuf::Any;
use tollgate_proto::subs::{QuotaUnit, SubscriptionDigest, set_name, shard_of};

use super::*;

/// Ids that share one shard, so they live in one set.
fn same_shard_ids() -> (String, String, u8) {
    let first = "sub-0".to_string();
    let shard = shard_of(&first);
    let second = (1..)
        .map(|i| format!("sub-{i}"))
        .find(|id| shard_of(id) == shard)
        .unwrap();
    (first, second, shard)
}

fn member(id: &str, token: &[u8]) -> SubscriptionDigest {
    let limit = Some((5, QuotaUnit::Minute, true));
    SubscriptionDigest::new(id, Some(&digest_of(token)), None, None, limit, None)
}

fn resource(name: &str, api: &str, members: Vec<SubscriptionDigest>, type_url: &str) -> Resource {
    let set = SubscriptionSet::build(api, members).unwrap();
    Resource {
        name: name.into(),
        version: "v".into(),
        resource: Some(Any {
            type_url: type_url.into(),
            value: set.encode_to_vec(),
        }),
        ..Default::default()
    }
}

fn response(resources: Vec<Resource>, removed: &[&str]) -> DeltaDiscoveryResponse {
    DeltaDiscoveryResponse {
        type_url: subs::TYPE_URL.into(),
        resources,
        removed_resources: removed.iter().map(|s| s.to_string()).collect(),
        nonce: "1".into(),
        ..Default::default()
    }
}

#[test]
fn a_set_update_replaces_its_members_and_a_removal_drops_them() {
    let shared = Arc::new(SharedSubscriptions::default());
    let mut writer = SubscriptionWriter::new(shared.clone());
    let mut held = HeldSubSets::default();
    let opens = |t: &[u8]| shared.load().by_token("orders", t, 0).is_ok();
    let (a, b, shard) = same_shard_ids();
    let name = set_name("orders", shard);
    let both = vec![member(&a, b"tok-a"), member(&b, b"tok-b")];
    held.apply(
        &response(vec![resource(&name, "orders", both, subs::TYPE_URL)], &[]),
        &mut writer,
    )
    .unwrap();
    assert!(opens(b"tok-a") && opens(b"tok-b"));
    assert_eq!(writer.get(&a).and_then(|r| r.limit.as_ref()).map(|l| l.count), Some(5));
    assert_eq!(held.versions().get(&name).map(String::as_str), Some("v"));

    // The next version of the set no longer holds `b`: it is gone.
    let only_a = vec![member(&a, b"tok-a")];
    held.apply(
        &response(vec![resource(&name, "orders", only_a, subs::TYPE_URL)], &[]),
        &mut writer,
    )
    .unwrap();
    assert!(opens(b"tok-a"));
    assert!(!opens(b"tok-b"), "a member left out of the set's update is removed");
    assert!(writer.get(&b).is_none());

    held.apply(&response(Vec::new(), &[&name]), &mut writer).unwrap();
    assert!(!opens(b"tok-a"), "a removed set drops its members");
    assert!(writer.is_empty() && held.versions().is_empty());
}

#[test]
fn bad_responses_are_refused_whole() {
    let shared = Arc::new(SharedSubscriptions::default());
    let mut writer = SubscriptionWriter::new(shared.clone());
    let mut held = HeldSubSets::default();
    let (a, _, shard) = same_shard_ids();
    let good = resource(
        &set_name("orders", shard),
        "orders",
        vec![member(&a, b"t")],
        subs::TYPE_URL,
    );
    let other_shard = set_name("orders", shard.wrapping_add(1));
    let bad = [
        resource(&other_shard, "orders", vec![member(&a, b"t")], subs::TYPE_URL),
        resource(
            &set_name("orders", shard),
            "billing",
            vec![member(&a, b"t")],
            subs::TYPE_URL,
        ),
        resource(
            &set_name("orders", shard),
            "orders",
            vec![member(&a, b"t")],
            "type.googleapis.com/x.Y",
        ),
    ];
    for b in bad {
        let err = held.apply(&response(vec![good.clone(), b], &[]), &mut writer);
        assert!(matches!(err, Err(ApplyError::SubSet { .. })), "{err:?}");
        assert!(writer.is_empty(), "nothing applied");
    }
    let mut wrong_type = response(vec![good], &[]);
    wrong_type.type_url = tollgate_proto::keys::TYPE_URL.into();
    assert!(matches!(held.apply(&wrong_type, &mut writer), Err(ApplyError::Type(_))));
}
