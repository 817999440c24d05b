use std::collections::BTreeMap;

use tollgate_policies::authz::{Decision, digest_of};
use tollgate_proto::hex::{decode_digest as unhex, encode as hex};
use tollgate_proto::keys::ApiKeySet;
use tollgate_xds::{DEFAULT_GROUP, Store, TypeKind};

use super::*;
use crate::clock::unix_secs as unix_now;
use crate::db::ApiRow;

fn setup() -> (Arc<Db>, Arc<SharedIndex>, KeyStore) {
    let db = Arc::new(Db::memory().unwrap());
    for h in ["orders", "billing"] {
        db.insert_api(&ApiRow {
            handle: h.into(),
            uuid: format!("u-{h}"),
            display_name: h.into(),
            version: "v1".into(),
            document: "{}".into(),
            deployed: true,
            origin: crate::origin::Origin::GatewayApi,
            created_at: "t".into(),
            updated_at: "t".into(),
            deployed_at: None,
            cp_deployment_id: None,
            cp_performed_at: None,
        })
        .unwrap();
    }
    let index = Arc::new(SharedIndex::default());
    let keys = KeyStore::load(db.clone(), index.clone(), 3, None).unwrap();
    (db, index, keys)
}

fn allows(index: &SharedIndex, api: &str, key: &str) -> bool {
    matches!(
        index.load().decide(api, key.as_bytes(), unix_now() as u64),
        Decision::Allow(_)
    )
}

#[test]
fn a_created_key_opens_its_api_only_and_is_stored_as_a_digest() {
    let (db, index, keys) = setup();
    let (row, plain) = keys
        .create(
            "orders",
            "alice",
            NewKey {
                name: Some("ci-key".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let plain = plain.unwrap();
    assert!(plain.starts_with("apip_") && plain.len() == 69);
    assert!(allows(&index, "orders", &plain));
    assert!(!allows(&index, "billing", &plain));
    assert_eq!(row.masked, format!("***{}", &plain[64..]));
    let stored = format!("{:?}", db.list_keys().unwrap());
    assert!(!stored.contains(&plain), "plaintext never stored");
    assert!(stored.contains(&row.digest));
}

#[test]
fn regenerate_without_grace_stops_the_old_value_at_once_with_grace_later() {
    let (_, index, keys) = setup();
    let (_, old) = keys
        .create(
            "orders",
            "alice",
            NewKey {
                name: Some("key1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let old = old.unwrap();
    let (_, new) = keys.regenerate("orders", "key1", "alice", None, None).unwrap();
    assert!(allows(&index, "orders", &new));
    assert!(!allows(&index, "orders", &old));
    let (_, newer) = keys
        .regenerate("orders", "key1", "alice", None, Some(Duration::from_secs(3600)))
        .unwrap();
    assert!(allows(&index, "orders", &newer));
    assert!(
        allows(&index, "orders", &new),
        "previous value works during the grace period"
    );
    assert!(matches!(
        keys.regenerate("orders", "key1", "bob", None, None),
        Err(KeyError::Forbidden(_))
    ));
    assert!(matches!(
        keys.regenerate("orders", "nope", "alice", None, None),
        Err(KeyError::NotFound(_))
    ));
    assert!(matches!(
        keys.regenerate("orders", "key1", "alice", None, Some(MAX_GRACE * 2)),
        Err(KeyError::Invalid(_))
    ));
}

const ALICE: Caller<'static> = Caller {
    user: "alice",
    admin: false,
    control_plane_ok: false,
};

/// Issue #13: only the creator or an admin revokes a key; anyone else gets the answer an unknown key
/// gets, and nothing changes. A control-plane key needs an admin who says so.
#[test]
fn only_the_creator_or_an_admin_revokes() {
    let (_, index, keys) = setup();
    let (row, v) = keys.create("orders", "alice", NewKey::default()).unwrap();
    let v = v.unwrap();
    let bob = Caller { user: "bob", ..ALICE };
    assert!(!keys.revoke("orders", &row.name, &bob).unwrap(), "as if absent");
    assert!(allows(&index, "orders", &v), "bob's attempt changed nothing");
    let admin = Caller {
        user: "root",
        admin: true,
        ..ALICE
    };
    assert!(keys.revoke("orders", &row.name, &admin).unwrap());
    assert!(!allows(&index, "orders", &v));

    let pushed = PushedKey {
        uuid: "u-1".into(),
        api: "orders".into(),
        name: "cp-key".into(),
        digest: crate::keys::rules::digest_hex("cp-value-0123456789-0123456789-0123"),
        masked: "***0123".into(),
        created_by: "alice".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        ..Default::default()
    };
    keys.put_pushed(pushed).unwrap();
    assert!(
        !keys.revoke("orders", "cp-key", &ALICE).unwrap(),
        "not even its named creator"
    );
    assert!(matches!(
        keys.revoke("orders", "cp-key", &admin),
        Err(KeyError::ControlPlane(_))
    ));
    let consenting = Caller {
        control_plane_ok: true,
        ..admin
    };
    assert!(keys.revoke("orders", "cp-key", &consenting).unwrap());
}

#[test]
fn revocation_bites_immediately_and_is_idempotent() {
    let (_, index, keys) = setup();
    let (_, v) = keys.create("orders", "alice", NewKey::default()).unwrap();
    let v = v.unwrap();
    let name = keys.list("orders", "alice", false).unwrap()[0].name.clone();
    assert!(allows(&index, "orders", &v));
    assert!(keys.revoke("orders", &name, &ALICE).unwrap());
    assert!(!allows(&index, "orders", &v));
    assert!(
        !keys.revoke("orders", &name, &ALICE).unwrap(),
        "second revoke finds nothing, without error"
    );
}

#[test]
fn names_quota_duplicates_expiry_and_external_values() {
    let (_, index, keys) = setup();
    for bad in ["ab", "Upper", "-lead", "trail_", "dou--ble", "sp ace"] {
        assert!(matches!(check_name(bad), Err(KeyError::Invalid(_))), "{bad}");
    }
    check_name("my-api-key_v1").unwrap();
    let named = |n: &str| NewKey {
        name: Some(n.into()),
        ..Default::default()
    };
    keys.create("orders", "alice", named("one")).unwrap();
    assert!(matches!(
        keys.create("orders", "alice", named("one")),
        Err(KeyError::Conflict(_))
    ));
    keys.create("orders", "alice", named("two")).unwrap();
    assert_eq!(keys.remaining("orders", "alice"), 1);
    keys.create("orders", "alice", named("three")).unwrap();
    assert!(
        matches!(keys.create("orders", "alice", named("four")), Err(KeyError::Invalid(_))),
        "quota"
    );
    assert_eq!(keys.remaining("orders", "bob"), 3);
    let past = NewKey {
        expires_at: Some(unix_now() - 1),
        ..named("past")
    };
    assert!(matches!(keys.create("orders", "bob", past), Err(KeyError::Invalid(_))));
    let short = NewKey {
        value: Some("too-short".into()),
        ..named("ext")
    };
    assert!(matches!(keys.create("orders", "bob", short), Err(KeyError::Invalid(_))));
    let ext = "external-value-0123456789-abcdefghijklmnop";
    let (row, shown) = keys
        .create(
            "orders",
            "bob",
            NewKey {
                value: Some(ext.into()),
                ..named("ext")
            },
        )
        .unwrap();
    assert_eq!(
        (row.source.as_str(), shown),
        ("external", None),
        "external values are not echoed"
    );
    assert!(allows(&index, "orders", ext));
}

#[test]
fn keys_survive_a_reload_and_expire() {
    let (db, index, keys) = setup();
    let soon = NewKey {
        name: Some("soon".into()),
        expires_at: Some(unix_now() + 1),
        ..Default::default()
    };
    let (_, v) = keys.create("orders", "alice", soon).unwrap();
    let v = v.unwrap();
    let (_, w) = keys.create("orders", "alice", NewKey::default()).unwrap();
    let w = w.unwrap();
    drop(keys);
    let index2 = Arc::new(SharedIndex::default());
    let _keys = KeyStore::load(db, index2.clone(), 3, None).unwrap();
    assert!(allows(&index2, "orders", &w));
    assert!(matches!(
        index2.load().decide("orders", v.as_bytes(), unix_now() as u64 + 5),
        Decision::Deny
    ));
    drop(index);
}

fn pushed(uuid: &str, name: &str, value: &str, updated_at: &str) -> PushedKey {
    PushedKey {
        uuid: uuid.into(),
        api: "orders".into(),
        name: name.into(),
        digest: hex(&digest_of(value.as_bytes())),
        masked: mask(value),
        expires_at: None,
        created_at: updated_at.into(),
        updated_at: updated_at.into(),
        created_by: "control-plane".into(),
    }
}

#[test]
fn pushed_keys_are_idempotent_and_revocation_is_final() {
    let (db, index, keys) = setup();
    let v1 = "cp-key-value-0123456789-0123456789-abcdef";
    let k = pushed("k-1", "from-cp", v1, "2026-03-04T10:00:00Z");
    assert_eq!(keys.put_pushed(k.clone()).unwrap(), Pushed::Applied);
    assert!(allows(&index, "orders", v1));
    assert!(!allows(&index, "billing", v1));
    assert_eq!(keys.put_pushed(k.clone()).unwrap(), Pushed::Unchanged);
    assert_eq!(db.list_keys().unwrap()[0].origin, "control_plane");

    // An update by name (no uuid) rotates the value; an older update is ignored.
    let v2 = "cp-key-value-rotated-0123456789-0123456789";
    let mut upd = pushed("", "from-cp", v2, "2026-03-04T11:00:00Z");
    assert_eq!(keys.put_pushed(upd.clone()).unwrap(), Pushed::Applied);
    assert!(allows(&index, "orders", v2) && !allows(&index, "orders", v1));
    upd.digest = hex(&digest_of(v1.as_bytes()));
    upd.updated_at = "2026-03-04T09:00:00Z".into();
    assert_eq!(keys.put_pushed(upd).unwrap(), Pushed::Ignored);
    assert!(allows(&index, "orders", v2));

    // Revoked: a replayed creation does not bring it back.
    assert!(keys.revoke_pushed("orders", "from-cp").unwrap());
    assert!(!allows(&index, "orders", v2));
    assert!(!keys.revoke_pushed("orders", "from-cp").unwrap());
    assert_eq!(keys.put_pushed(k).unwrap(), Pushed::Ignored);
    assert!(!allows(&index, "orders", v1));

    // A local key's name cannot be taken over, and bad digests are refused.
    keys.create(
        "orders",
        "alice",
        NewKey {
            name: Some("mine".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        keys.put_pushed(pushed("k-2", "mine", v1, "2026-03-04T10:00:00Z")),
        Err(KeyError::Conflict(_))
    ));
    let mut bad = pushed("k-3", "bad", v1, "2026-03-04T10:00:00Z");
    bad.digest = "xyz".into();
    assert!(matches!(keys.put_pushed(bad), Err(KeyError::Invalid(_))));
}

/// Every key set published for replicas: resource name → (API, digests in it).
fn published(store: &Store) -> BTreeMap<String, (String, Vec<Vec<u8>>)> {
    use prost::Message;
    let group = store.group(DEFAULT_GROUP);
    group
        .names(TypeKind::Custom)
        .into_iter()
        .map(|n| {
            let r = group.get(TypeKind::Custom, &n).unwrap();
            let any = tollgate_proto::pb::google::protobuf::Any::decode(r.any().as_ref()).unwrap();
            let set = ApiKeySet::decode(any.value.as_slice()).unwrap();
            (n, (set.api, set.keys.into_iter().map(|k| k.sha256).collect()))
        })
        .collect()
}

#[test]
fn key_sets_for_replicas_follow_every_write_shard_by_shard() {
    let (db, index, keys) = setup();
    keys.create(
        "orders",
        "alice",
        NewKey {
            name: Some("before".into()),
            ..Default::default()
        },
    )
    .unwrap();
    drop(keys);
    let store = Arc::new(Store::new());
    // Keys made before publishing was switched on are published at start.
    let publisher = KeySetPublisher::new(store.clone()).unwrap();
    let keys = KeyStore::load(db, index, 3, Some(publisher)).unwrap();
    assert_eq!(published(&store).len(), 1);

    let (row, _) = keys.create("orders", "alice", NewKey::default()).unwrap();
    let digest = unhex(&row.digest).unwrap();
    let name = format!("orders/{:02x}", digest[0]);
    let sets = published(&store);
    assert!(sets[&name].1.contains(&digest.to_vec()), "{sets:?}");
    for (set, (api, ds)) in &sets {
        assert_eq!(api, "orders");
        for d in ds {
            assert_eq!(*set, name_of(api, d), "every digest is in its own shard's set");
        }
    }

    // A rotation with grace: the old digest stays published (in its shard) with the new one.
    let (rotated, _) = keys
        .regenerate("orders", &row.name, "alice", None, Some(Duration::from_secs(60)))
        .unwrap();
    let new_digest = unhex(&rotated.digest).unwrap();
    let all: Vec<Vec<u8>> = published(&store).into_values().flat_map(|(_, d)| d).collect();
    assert!(all.contains(&digest.to_vec()) && all.contains(&new_digest.to_vec()));

    // Revoked: both digests gone, and empty sets are removed rather than published empty.
    keys.revoke("orders", &row.name, &ALICE).unwrap();
    let sets = published(&store);
    let all: Vec<Vec<u8>> = sets.values().flat_map(|(_, d)| d.clone()).collect();
    assert!(!all.contains(&digest.to_vec()) && !all.contains(&new_digest.to_vec()));
    assert!(sets.values().all(|(_, d)| !d.is_empty()));
    assert_eq!(sets.len(), 1, "only the first key's set is left");

    keys.api_deleted("orders");
    assert!(published(&store).is_empty());
}

/// The shard a digest belongs to, as a resource name.
fn name_of(api: &str, digest: &[u8]) -> String {
    format!("{api}/{:02x}", digest[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_handle_runs_the_store_off_the_workers() {
    let (_, index, store) = setup();
    let keys = Keys::from(store);
    let (row, plain) = keys.create("orders", "alice", NewKey::default()).await.unwrap();
    let plain = plain.unwrap();
    assert!(allows(&index, "orders", &plain));
    assert_eq!(keys.remaining("orders", "alice").await, 2);
    assert_eq!(keys.list("orders", "alice", false).await.unwrap(), vec![row.clone()]);
    assert!(keys.list("orders", "bob", false).await.unwrap().is_empty());
    assert!(keys.revoke("orders", &row.name, ALICE).await.unwrap());
    assert!(!allows(&index, "orders", &plain));
    assert!(matches!(
        keys.regenerate("orders", &row.name, "alice", None, None).await,
        Err(KeyError::NotFound(_))
    ));
    keys.api_deleted("orders").await.unwrap();
}

/// Issue #13: a pushed replacement (a new uuid for a name) that cannot be stored leaves the old key
/// stored and working, in the database and the index alike (it was deleted first, then the insert
/// failed).
#[test]
fn a_failed_pushed_replacement_changes_nothing() {
    let (db, index, keys) = setup();
    let (v1, v2) = (
        "cp-key-value-one-0123456789-0123456789-ab",
        "cp-key-value-two-0123456789-0123456789-ab",
    );
    assert_eq!(
        keys.put_pushed(pushed("k-1", "first", v1, "2026-03-04T10:00:00Z"))
            .unwrap(),
        Pushed::Applied
    );
    assert_eq!(
        keys.put_pushed(pushed("k-2", "second", v2, "2026-03-04T10:00:00Z"))
            .unwrap(),
        Pushed::Applied
    );
    // "first" comes again under a new uuid, with the value "second" holds: refused.
    let clash = pushed("k-3", "first", v2, "2026-03-04T11:00:00Z");
    assert!(matches!(keys.put_pushed(clash), Err(KeyError::Conflict(_))));
    let first = db
        .get_key("orders", "first")
        .unwrap()
        .expect("the old key is still stored");
    assert_eq!(first.uuid, "k-1");
    assert_eq!(first.digest, hex(&digest_of(v1.as_bytes())));
    assert!(allows(&index, "orders", v1));
    // What is stored is what is enforced, after a reload too.
    let reloaded = Arc::new(SharedIndex::default());
    KeyStore::load(db.clone(), reloaded.clone(), 3, None).unwrap();
    assert!(allows(&reloaded, "orders", v1) && allows(&reloaded, "orders", v2));
}

/// Issue #13: a key whose uuid another key holds (another API's, here) does not rewrite that key.
#[test]
fn a_uuid_of_another_key_never_rewrites_its_digest() {
    let (db, index, keys) = setup();
    let (mine, _) = keys
        .create(
            "billing",
            "alice",
            NewKey {
                name: Some("mine".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let v = "cp-key-value-hijack-0123456789-0123456789";
    let hijack = pushed(&mine.uuid, "other", v, "2026-03-04T10:00:00Z");
    assert!(matches!(keys.put_pushed(hijack), Err(KeyError::Conflict(_))));
    assert_eq!(db.get_key("billing", "mine").unwrap().unwrap().digest, mine.digest);
    assert!(db.get_key("orders", "other").unwrap().is_none());
    assert!(!allows(&index, "orders", v) && !allows(&index, "billing", v));

    // The database refuses it directly too.
    let mut row = db.get_key("billing", "mine").unwrap().unwrap();
    row.api = "orders".into();
    row.digest = hex(&digest_of(v.as_bytes()));
    assert!(matches!(db.put_key(&row), Err(crate::db::DbError::Conflict(_))));
    assert_eq!(db.get_key("billing", "mine").unwrap().unwrap().digest, mine.digest);
}
