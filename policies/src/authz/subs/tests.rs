//! The subscription index: lookups, writer changes against a plain model, tokens, grace, counters.

use std::collections::HashMap;

use super::*;
use crate::authz::quota::QuotaUnit;

fn record(id: &str, api: &str, app: Option<&str>) -> SubscriptionRecord {
    SubscriptionRecord {
        id: id.into(),
        api: api.into(),
        application: app.map(Into::into),
        plan_expires_at: None,
        limit: None,
    }
}

fn d(token: &str) -> Option<Digest> {
    Some(digest_of(token.as_bytes()))
}

fn id_of(r: Result<&Entry, Refusal>) -> Result<String, Refusal> {
    r.map(|e| e.record.id.to_string())
}

fn setup() -> (Arc<SharedSubscriptions>, SubscriptionWriter) {
    let shared = Arc::new(SharedSubscriptions::default());
    let w = SubscriptionWriter::new(shared.clone());
    (shared, w)
}

#[test]
fn lookups_by_token_and_by_application() {
    let (shared, mut w) = setup();
    let mut expiring = record("s3", "orders", None);
    expiring.plan_expires_at = Some(100);
    w.replace_all([
        (d("t1"), record("s1", "orders", Some("shop"))),
        (None, record("s2", "billing", Some("shop"))),
        (d("t3"), expiring),
    ]);
    let s = shared.load();
    assert_eq!(id_of(s.by_token("orders", b"t1", 0)), Ok("s1".into()));
    assert_eq!(id_of(s.by_token("orders", b" t1\t", 0)), Ok("s1".into()), "trimmed");
    assert_eq!(id_of(s.by_token("billing", b"t1", 0)), Err(Refusal::Invalid));
    assert_eq!(id_of(s.by_token("orders", b"t2", 0)), Err(Refusal::Invalid));
    assert_eq!(id_of(s.by_token("orders", b"", 0)), Err(Refusal::Missing));
    assert_eq!(id_of(s.by_token("orders", b"t3", 99)), Ok("s3".into()));
    assert_eq!(id_of(s.by_token("orders", b"t3", 100)), Err(Refusal::Expired));
    assert_eq!(id_of(s.by_application("orders", "shop", 0)), Ok("s1".into()));
    assert_eq!(id_of(s.by_application("billing", "shop", 0)), Ok("s2".into()));
    assert_eq!(id_of(s.by_application("orders", "other", 0)), Err(Refusal::Invalid));
    assert_eq!(
        id_of(s.by_application("ord", "ersshop", 0)),
        Err(Refusal::Invalid),
        "no ambiguity"
    );
    assert_eq!(s.tokens(), 2);
}

#[test]
fn one_token_may_open_subscriptions_to_several_apis() {
    let (shared, mut w) = setup();
    w.upsert(d("same"), record("a", "orders", None));
    w.upsert(d("same"), record("b", "billing", None));
    let s = shared.load();
    assert_eq!(id_of(s.by_token("orders", b"same", 0)), Ok("a".into()));
    assert_eq!(id_of(s.by_token("billing", b"same", 0)), Ok("b".into()));
    w.remove("a");
    let s = shared.load();
    assert_eq!(id_of(s.by_token("orders", b"same", 0)), Err(Refusal::Invalid));
    assert_eq!(id_of(s.by_token("billing", b"same", 0)), Ok("b".into()));
}

#[test]
fn regenerated_tokens_with_and_without_grace() {
    let (shared, mut w) = setup();
    w.upsert(d("old"), record("s", "orders", None));
    assert!(w.set_token("s", d("new"), None));
    let s = shared.load();
    assert_eq!(
        id_of(s.by_token("orders", b"old", 0)),
        Err(Refusal::Invalid),
        "refused at once"
    );
    assert_eq!(id_of(s.by_token("orders", b"new", 0)), Ok("s".into()));
    assert!(w.set_token("s", d("newer"), Some(50)));
    let s = shared.load();
    assert_eq!(
        id_of(s.by_token("orders", b"new", 49)),
        Ok("s".into()),
        "in the grace period"
    );
    assert_eq!(
        id_of(s.by_token("orders", b"new", 50)),
        Err(Refusal::Invalid),
        "past it"
    );
    assert_eq!(id_of(s.by_token("orders", b"newer", 50)), Ok("s".into()));
    // A record update keeps the grace digest, pointing at the new record.
    let mut moved = record("s", "orders", None);
    moved.plan_expires_at = Some(40);
    w.upsert(d("newer"), moved);
    assert_eq!(
        id_of(shared.load().by_token("orders", b"new", 45)),
        Err(Refusal::Expired)
    );
    // Merging drops ended grace digests.
    w.compact(60);
    assert_eq!(shared.load().tokens(), 1);
    assert!(!w.set_token("unknown", d("x"), None));
    // A token can be taken away: the application path is then the only way in.
    assert!(w.set_token("s", None, None));
    assert_eq!(shared.load().tokens(), 0);
}

#[test]
fn an_application_with_two_subscriptions_uses_the_smallest_id() {
    let (shared, mut w) = setup();
    w.upsert(None, record("s2", "orders", Some("shop")));
    w.upsert(None, record("s1", "orders", Some("shop")));
    assert_eq!(
        id_of(shared.load().by_application("orders", "shop", 0)),
        Ok("s1".into())
    );
    w.remove("s1");
    assert_eq!(
        id_of(shared.load().by_application("orders", "shop", 0)),
        Ok("s2".into())
    );
    // Moved to another application.
    w.upsert(None, record("s2", "orders", Some("mall")));
    let s = shared.load();
    assert_eq!(id_of(s.by_application("orders", "shop", 0)), Err(Refusal::Invalid));
    assert_eq!(id_of(s.by_application("orders", "mall", 0)), Ok("s2".into()));
}

#[test]
fn counters_survive_replacement_and_rebuilds() {
    let (shared, mut w) = setup();
    let mut r = record("s", "orders", None);
    r.limit = Some(PlanLimit {
        count: 2,
        unit: QuotaUnit::Day,
        stop_on_reach: true,
    });
    w.upsert(d("t"), r.clone());
    let take = |shared: &SharedSubscriptions| {
        let s = shared.load();
        let e = s.by_token("orders", b"t", 1000).unwrap();
        e.counter.take(e.record.limit.as_ref().unwrap(), 1000).admitted
    };
    assert!(take(&shared));
    w.upsert(d("t"), r.clone());
    w.replace_all([(d("t"), r.clone())]);
    w.compact(1000);
    assert!(take(&shared));
    assert!(!take(&shared), "two counted across the rebuilds");
    // Removed and added back within the window: still counted.
    w.remove("s");
    w.upsert(d("t"), r);
    assert!(!take(&shared));
}

#[test]
fn remove_api_removes_only_that_apis_subscriptions() {
    let (shared, mut w) = setup();
    w.upsert(d("a"), record("a", "orders", Some("shop")));
    w.upsert(d("b"), record("b", "billing", Some("shop")));
    w.remove_api("orders");
    let s = shared.load();
    assert_eq!(id_of(s.by_token("orders", b"a", 0)), Err(Refusal::Invalid));
    assert_eq!(id_of(s.by_application("orders", "shop", 0)), Err(Refusal::Invalid));
    assert_eq!(id_of(s.by_token("billing", b"b", 0)), Ok("b".into()));
    assert_eq!((w.len(), w.get("b").map(|r| &*r.api)), (1, Some("billing")));
}

#[test]
fn writer_changes_agree_with_a_plain_map() {
    // Random upserts, token changes and removals over 200 ids, checked against a model after
    // every few steps; a shard's layer is merged whenever it passes 2 changes.
    let shared = Arc::new(SharedSubscriptions::default());
    let mut w = SubscriptionWriter::new(shared.clone()).compact_at(2);
    let mut model: HashMap<u32, (u32, &str)> = HashMap::new(); // id → (token number, api)
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 0..3000 {
        let i = rand(200) as u32;
        let id = format!("s{i}");
        match rand(4) {
            0 => {
                w.remove(&id);
                model.remove(&i);
            }
            1 if model.contains_key(&i) => {
                let token = step + 10_000; // unique: one token, one subscription
                w.set_token(&id, d(&format!("t{token}")), None);
                model.get_mut(&i).unwrap().0 = token;
            }
            _ => {
                let api = if rand(2) == 0 { "a" } else { "b" };
                w.upsert(d(&format!("t{i}")), record(&id, api, Some(&format!("app{i}"))));
                model.insert(i, (i, api));
            }
        }
        let snap = shared.load();
        if step % 11 == 0 {
            for (i, (token, api)) in &model {
                let t = format!("t{token}");
                assert_eq!(
                    id_of(snap.by_token(api, t.as_bytes(), 0)),
                    Ok(format!("s{i}")),
                    "step {step}"
                );
                let app = format!("app{i}");
                assert_eq!(id_of(snap.by_application(api, &app, 0)), Ok(format!("s{i}")));
            }
            assert_eq!(snap.tokens(), model.len(), "step {step}");
            assert_eq!(w.len(), model.len());
        }
    }
    assert!(w.merges() >= 10, "the layers were merged ({} times)", w.merges());
}

#[test]
fn records_round_trip_through_the_replica_wire_form() {
    let mut r = record("s", "orders", Some("shop"));
    r.plan_expires_at = Some(77);
    for unit in [QuotaUnit::Minute, QuotaUnit::Hour, QuotaUnit::Day, QuotaUnit::Month] {
        r.limit = Some(PlanLimit {
            count: 9,
            unit,
            stop_on_reach: false,
        });
        let wire = to_wire(d("t").as_ref(), &r, Some((&[3; 32], 40)));
        assert_eq!(from_wire("orders", &wire), (d("t"), r.clone(), Some(([3; 32], 40))));
    }
    let bare = record("b", "orders", None);
    assert_eq!(from_wire("orders", &to_wire(None, &bare, None)), (None, bare, None));
}
