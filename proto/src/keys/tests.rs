use prost::{Message, Name};

use super::*;

#[test]
fn round_trips_and_names_its_type() {
    let set = ApiKeySet {
        api: "orders".into(),
        keys: vec![ApiKeyDigest {
            sha256: vec![7; 32],
            name: "ci".into(),
            application: String::new(),
            expires_at: 0,
        }],
    };
    let bytes = set.encode_to_vec();
    assert_eq!(ApiKeySet::decode(&bytes[..]).unwrap(), set);
    assert_eq!(ApiKeySet::type_url(), "type.googleapis.com/tollgate.keys.v1.ApiKeySet");
    // Field 1 (api, length-delimited) comes first: 0x0a, 6, "orders".
    assert_eq!(&bytes[..8], b"\x0a\x06orders");
}

fn digest(first: u8) -> Digest {
    let mut d = [7u8; 32];
    d[0] = first;
    d
}

#[test]
fn names_round_trip_and_bad_names_are_refused() {
    for (api, shard) in [("orders", 0u8), ("a/b", 0xff), ("x", 0x0a)] {
        let name = set_name(api, shard);
        assert_eq!(parse_set_name(&name), Ok((api, shard)));
        assert_eq!(api_of_set_name(&name), api);
    }
    assert_eq!(set_name("orders", 0x0a), "orders/0a");
    for bad in [
        "orders",
        "orders/",
        "/0a",
        "orders/0",
        "orders/0A",
        "orders/zz",
        "orders/+a",
        "orders/000",
    ] {
        assert_eq!(parse_set_name(bad), Err(KeySetError::BadName), "{bad}");
    }
}

#[test]
fn a_built_set_decodes_to_its_entries() {
    let keys = [
        ApiKeyDigest::new(&digest(0x0b), "b", None, Some(9)),
        ApiKeyDigest::new(&digest(0x0b), "a", Some("app"), None),
    ];
    assert!(ApiKeySet::build("orders", []).is_none(), "no key, no set");
    let set = ApiKeySet::build("orders", keys.clone()).unwrap();
    assert!(set.keys.windows(2).all(|w| w[0] <= w[1]), "sorted");
    let (api, entries) = ApiKeySet::decode_named("orders/0b", &set.encode_to_vec()).unwrap();
    assert_eq!(api, "orders");
    assert_eq!(entries.len(), 2);
    for (d, k) in &entries {
        assert_eq!(*d, digest(0x0b));
        assert!(keys.contains(k));
    }
    let a = entries.iter().map(|(_, k)| k).find(|k| k.name == "a").unwrap();
    assert_eq!((a.application(), a.expiry()), (Some("app"), None));
    let b = entries.iter().map(|(_, k)| k).find(|k| k.name == "b").unwrap();
    assert_eq!((b.application(), b.expiry()), (None, Some(9)));
}

#[test]
fn malformed_sets_are_refused() {
    let set = ApiKeySet::build("orders", [ApiKeyDigest::new(&digest(0x0b), "k", None, None)]).unwrap();
    let bytes = set.encode_to_vec();
    let decode = |name: &str, bytes: &[u8]| ApiKeySet::decode_named(name, bytes).map(|_| ());
    assert_eq!(
        decode("billing/0b", &bytes),
        Err(KeySetError::OtherApi("orders".into()))
    );
    assert_eq!(decode("orders/zz", &bytes), Err(KeySetError::OtherApi("orders".into())));
    assert_eq!(decode("orders/0c", &bytes), Err(KeySetError::OutsideShard));
    let short = ApiKeySet {
        api: "orders".into(),
        keys: vec![ApiKeyDigest {
            sha256: vec![0x0b, 2, 3],
            ..Default::default()
        }],
    };
    assert_eq!(
        decode("orders/0b", &short.encode_to_vec()),
        Err(KeySetError::DigestLength(3))
    );
    assert!(matches!(
        decode("orders/0b", &[0xff, 0xff]),
        Err(KeySetError::Decode(_))
    ));
}
