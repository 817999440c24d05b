use prost::{Message, Name};

use super::*;

fn sub(id: &str) -> SubscriptionDigest {
    SubscriptionDigest {
        id: id.into(),
        token_sha256: vec![9; 32],
        application: "shop".into(),
        plan_expires_at: 0,
        limit_count: 3,
        limit_unit: QuotaUnit::Minute as i32,
        stop_on_reach: true,
        grace_sha256: vec![],
        grace_until: 0,
    }
}

/// Ids that fall in `shard`.
fn ids_in(shard: u8, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("sub-{i}"))
        .filter(|id| shard_of(id) == shard)
        .take(n)
        .collect()
}

#[test]
fn round_trips_and_names_its_type() {
    let id = &ids_in(0x2a, 1)[0];
    let set = SubscriptionSet::build("orders", [sub(id)]).unwrap();
    let bytes = set.encode_to_vec();
    assert_eq!(SubscriptionSet::decode(&bytes[..]).unwrap(), set);
    assert_eq!(
        SubscriptionSet::type_url(),
        "type.googleapis.com/tollgate.subs.v1.SubscriptionSet"
    );
    assert_eq!(&bytes[..8], b"\x0a\x06orders");
    let back = SubscriptionSet::decode_named("orders/2a", &bytes).unwrap();
    let s = &back.subscriptions[0];
    assert_eq!(s.token(), Some([9; 32]));
    assert_eq!(s.application(), Some("shop"));
    assert_eq!(s.expiry(), None);
    assert_eq!(s.limit(), Some((3, QuotaUnit::Minute, true)));
    assert_eq!(s.grace(), None);
}

#[test]
fn shards_are_fnv1a_of_the_id_and_spread() {
    // FNV-1a 32 of "" is 0x811c9dc5, of "a" 0xe40c292c: the low bytes.
    assert_eq!(shard_of(""), 0xc5);
    assert_eq!(shard_of("a"), 0x2c);
    let mut seen = [false; 256];
    for i in 0..4096 {
        seen[shard_of(&format!("{i:08x}-0000-4000-8000-000000000000")) as usize] = true;
    }
    assert!(
        seen.iter().filter(|s| **s).count() > 250,
        "UUIDs spread over the shards"
    );
    assert_eq!(set_name("orders", 0x0a), "orders/0a");
    assert_eq!(parse_set_name("orders/0a"), Ok(("orders", 0x0a)));
    assert_eq!(parse_set_name("orders/0A"), Err(SubSetError::BadName));
}

#[test]
fn sets_are_sorted_and_empty_sets_are_none() {
    let ids = ids_in(7, 3);
    let set = SubscriptionSet::build("a", ids.iter().rev().map(|id| sub(id))).unwrap();
    let got: Vec<&str> = set.subscriptions.iter().map(|s| s.id.as_str()).collect();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(SubscriptionSet::build("a", []), None);
}

#[test]
fn malformed_sets_are_refused() {
    let id = ids_in(0x10, 1).remove(0);
    let other = ids_in(0x11, 1).remove(0);
    let encode = |s: SubscriptionDigest| SubscriptionSet::build("orders", [s]).unwrap().encode_to_vec();
    let ok = encode(sub(&id));
    assert!(SubscriptionSet::decode_named("orders/10", &ok).is_ok());
    assert_eq!(
        SubscriptionSet::decode_named("billing/10", &ok),
        Err(SubSetError::OtherApi("orders".into()))
    );
    assert_eq!(SubscriptionSet::decode_named("orders", &ok), Err(SubSetError::BadName));
    assert_eq!(
        SubscriptionSet::decode_named("orders/10", &encode(sub(&other))),
        Err(SubSetError::OutsideShard(other.clone()))
    );
    let mut short = sub(&id);
    short.token_sha256 = vec![1; 31];
    assert_eq!(
        SubscriptionSet::decode_named("orders/10", &encode(short)),
        Err(SubSetError::DigestLength(31))
    );
    let mut grace = sub(&id);
    grace.grace_sha256 = vec![1; 33];
    assert_eq!(
        SubscriptionSet::decode_named("orders/10", &encode(grace)),
        Err(SubSetError::DigestLength(33))
    );
    let mut no_unit = sub(&id);
    no_unit.limit_unit = 0;
    assert_eq!(
        SubscriptionSet::decode_named("orders/10", &encode(no_unit)),
        Err(SubSetError::NoUnit(id.clone()))
    );
    let mut bad_unit = sub(&id);
    bad_unit.limit_unit = 9;
    assert!(SubscriptionSet::decode_named("orders/10", &encode(bad_unit)).is_err());
    let no_id = SubscriptionSet {
        api: "orders".into(),
        subscriptions: vec![sub("")],
    };
    assert!(SubscriptionSet::decode_named("orders/10", &no_id.encode_to_vec()).is_err());
    assert!(matches!(
        SubscriptionSet::decode_named("orders/10", b"\xff\xff"),
        Err(SubSetError::Decode(_))
    ));
    // No token, no quota, a grace digest: all well formed.
    let mut plain = sub(&id);
    plain.token_sha256.clear();
    plain.limit_count = 0;
    plain.limit_unit = 0;
    plain.grace_sha256 = vec![5; 32];
    plain.grace_until = 99;
    let back = SubscriptionSet::decode_named("orders/10", &encode(plain)).unwrap();
    let s = &back.subscriptions[0];
    assert_eq!((s.token(), s.limit(), s.grace()), (None, None, Some(([5; 32], 99))));
}

#[test]
fn new_writes_nones_as_empty_values_and_reads_back() {
    let s = SubscriptionDigest::new("s", None, None, None, None, None);
    assert_eq!(
        (s.token(), s.application(), s.expiry(), s.limit(), s.grace()),
        (None, None, None, None, None)
    );
    assert!(s.check().is_ok());
    let s = SubscriptionDigest::new(
        "s",
        Some(&[1; 32]),
        Some("shop"),
        Some(99),
        Some((5, QuotaUnit::Month, false)),
        Some((&[2; 32], 50)),
    );
    assert_eq!(s.token(), Some([1; 32]));
    assert_eq!(s.application(), Some("shop"));
    assert_eq!(s.expiry(), Some(99));
    assert_eq!(s.limit(), Some((5, QuotaUnit::Month, false)));
    assert_eq!(s.grace(), Some(([2; 32], 50)));
}
