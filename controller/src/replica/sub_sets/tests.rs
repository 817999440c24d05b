use super::*;
use crate::subs::rules::Unit;

fn usable(id: &str, api: &str, token: Option<u8>) -> Usable {
    Usable {
        id: id.into(),
        api: api.into(),
        application: Some("app-1".into()),
        token_hash: token.map(|b| tollgate_proto::hex::encode(&[b; 32])),
        previous: Some((tollgate_proto::hex::encode(&[9u8; 32]), 4_000_000_000)),
        plan_expires_at: Some(5_000_000_000),
        limit: Some((3, Unit::Min, true)),
    }
}

fn names(store: &Store) -> Vec<String> {
    store.group(DEFAULT_GROUP).names(TypeKind::Custom2)
}

#[test]
fn sets_carry_digests_and_the_plan_and_drop_removed_members() {
    let store = Arc::new(Store::new());
    let mut p = SubSetPublisher::new(store.clone()).unwrap();
    let a = usable("sub-a", "orders", Some(1));
    p.put(&a);
    p.flush();
    let shard = shard_of("sub-a");
    assert_eq!(names(&store), vec![set_name("orders", shard)]);
    let set = p.set("orders", shard).unwrap();
    let s = &set.subscriptions[0];
    assert_eq!(
        (s.id.as_str(), s.token(), s.application()),
        ("sub-a", Some([1; 32]), Some("app-1"))
    );
    assert_eq!(s.grace(), Some(([9; 32], 4_000_000_000)));
    assert_eq!(s.expiry(), Some(5_000_000_000));
    assert_eq!(s.limit(), Some((3, subs::QuotaUnit::Minute, true)));
    // The encoded resource is what a replica decodes.
    let bytes = prost::Message::encode_to_vec(&set);
    assert_eq!(
        SubscriptionSet::decode_named(&set_name("orders", shard), &bytes).unwrap(),
        set
    );

    p.remove("sub-a");
    p.flush();
    assert!(names(&store).is_empty(), "an empty set is removed");
    assert!(p.set("orders", shard).is_none());
}

#[test]
fn a_subscription_moving_api_leaves_its_old_set() {
    let store = Arc::new(Store::new());
    let mut p = SubSetPublisher::new(store.clone()).unwrap();
    p.put(&usable("sub-b", "orders", None));
    p.put(&usable("sub-b", "billing", None));
    p.flush();
    let shard = shard_of("sub-b");
    assert_eq!(names(&store), vec![set_name("billing", shard)]);
    let set = p.set("billing", shard).unwrap();
    assert_eq!(
        set.subscriptions[0].token(),
        None,
        "no token: reachable by application only"
    );
}
