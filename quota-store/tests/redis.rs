//! The shared quota store against a real redis-server (started by the testkit): exact counting
//! across replicas, the bound under a concurrent burst, window keys, and both failure modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_policies::authz::quota::window;
use tollgate_policies::authz::{Counter, PlanLimit, QuotaBackend, QuotaUnit};
use tollgate_quota_store::{FailureMode, SharedQuotas, StoreConfig, key};
use tollgate_testkit::Redis;

/// One replica: its backend and its local counter of the subscription under test.
struct Replica {
    quotas: Arc<SharedQuotas>,
    counter: Counter,
}

fn replica(url: &str, mode: FailureMode, password: Option<&str>) -> Replica {
    let mut config = StoreConfig::new(url);
    config.failure_mode = mode;
    config.password = password.map(str::to_owned);
    Replica {
        quotas: SharedQuotas::start(&config).unwrap(),
        counter: Counter::default(),
    }
}

fn day_limit(count: u64) -> PlanLimit {
    PlanLimit {
        count,
        unit: QuotaUnit::Day,
        stop_on_reach: true,
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits until whatever each replica counted is in the store (two more round trips each: one may
/// have been under way), and then until each has read the totals back (two more again).
async fn settle(replicas: &[&Replica]) {
    for _ in 0..2 {
        let marks: Vec<u64> = replicas.iter().map(|r| r.quotas.syncs()).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while replicas.iter().zip(&marks).any(|(r, m)| r.quotas.syncs() < m + 2) {
            assert!(Instant::now() < deadline, "replicas did not sync with the store");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_admit_exactly_the_limit_when_each_request_sees_the_last_sync() {
    let redis = Redis::start().await;
    let rs: Vec<Replica> = (0..3).map(|_| replica(&redis.url(), FailureMode::Open, None)).collect();
    let limit = day_limit(10);
    let t = now();
    let mut admitted = 0;
    for i in 0..30 {
        let r = &rs[i % 3];
        let take = r.quotas.take("sub-paced", &r.counter, &limit, now());
        if take.admitted {
            admitted += 1;
            // A replica's first check of a subscription knows nothing of the others yet (it
            // syncs after it); from then on what it reports counts the whole fleet.
            if i >= 3 {
                assert_eq!(take.used, admitted, "request {i}: used counts the whole fleet");
            }
        } else {
            assert_eq!(take.used, 10, "request {i}: a refusal reports the spent quota");
        }
        // Paced: the next request waits until every replica that counts this subscription
        // knows the fleet's total.
        let store_key = key("sub-paced", window(QuotaUnit::Day, t).0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while redis.get_u64(&store_key).await != admitted
            || rs
                .iter()
                .any(|r| r.quotas.known("sub-paced").is_some_and(|k| k != admitted))
        {
            assert!(Instant::now() < deadline, "replicas did not converge");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    assert_eq!(admitted, 10, "one quota for three replicas");
    assert_eq!(redis.get_u64(&key("sub-paced", window(QuotaUnit::Day, t).0)).await, 10);
    // Another subscription has its own count.
    let r = &rs[1];
    let other = Counter::default();
    assert!(r.quotas.take("sub-other", &other, &limit, t).admitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_over_three_replicas_stays_within_the_bound() {
    let redis = Redis::start().await;
    let rs: Vec<Arc<Replica>> = (0..3)
        .map(|_| Arc::new(replica(&redis.url(), FailureMode::Open, None)))
        .collect();
    let limit = day_limit(200);
    let t = now();
    // Four threads per replica, each checking until it sees 50 refusals in a row.
    let mut threads = Vec::new();
    for r in &rs {
        for _ in 0..4 {
            let r = r.clone();
            threads.push(std::thread::spawn(move || {
                let (mut admitted, mut refused_in_a_row) = (0u64, 0);
                while refused_in_a_row < 50 {
                    if r.quotas.take("sub-burst", &r.counter, &limit, t).admitted {
                        admitted += 1;
                        refused_in_a_row = 0;
                    } else {
                        refused_in_a_row += 1;
                    }
                }
                admitted
            }));
        }
    }
    let admitted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("burst: {admitted} admitted on a limit of 200 over 3 replicas");
    assert!(admitted >= 200, "never under-admits: {admitted}");
    assert!(admitted <= 3 * 200, "each replica stops at the limit: {admitted}");
    let all: Vec<&Replica> = rs.iter().map(|r| &**r).collect();
    settle(&all).await;
    // Every count reached the store, and now every replica refuses.
    assert_eq!(
        redis.get_u64(&key("sub-burst", window(QuotaUnit::Day, t).0)).await,
        admitted
    );
    for r in &rs {
        assert!(!r.quotas.take("sub-burst", &r.counter, &limit, t).admitted);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_name_the_window_and_expire_after_it() {
    let redis = Redis::start().await;
    let r = replica(&redis.url(), FailureMode::Open, None);
    let limit = PlanLimit {
        count: 2,
        unit: QuotaUnit::Minute,
        stop_on_reach: true,
    };
    let t = now();
    let (start, end) = window(QuotaUnit::Minute, t);
    assert!(r.quotas.take("sub-w", &r.counter, &limit, t).admitted);
    settle(&[&r]).await;
    let k = key("sub-w", start);
    assert_eq!(redis.get_u64(&k).await, 1);
    let ttl: u64 = redis
        .command(&["TTL", &k])
        .await
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= end + 60 - t, "expires after its window: ttl {ttl}");
    assert!(r.quotas.take("sub-w", &r.counter, &limit, t).admitted);
    assert!(!r.quotas.take("sub-w", &r.counter, &limit, t).admitted, "spent");
    // The next window is another key and starts from zero (a flush of it is not awaited: its
    // window lies in the future for the sync task only when the minute has not turned yet).
    assert!(r.quotas.take("sub-w", &r.counter, &limit, end).admitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_open_counts_locally_and_sends_the_counts_once_the_store_is_back() {
    let mut redis = Redis::start().await;
    let a = replica(&redis.url(), FailureMode::Open, None);
    let limit = day_limit(6);
    let t = now();
    for _ in 0..2 {
        assert!(a.quotas.take("sub-open", &a.counter, &limit, t).admitted);
    }
    settle(&[&a]).await;
    redis.stop().await;
    wait_until("the replica notices the outage", || !a.quotas.is_up()).await;
    // Alone, replica A still stops at the limit (2 counted before, 4 more now).
    let admitted = (0..10)
        .filter(|_| a.quotas.take("sub-open", &a.counter, &limit, t).admitted)
        .count();
    assert_eq!(admitted, 4);
    redis.restart().await; // empty: the store lost what it had
    wait_until("the replica reaches the store again", || a.quotas.is_up()).await;
    settle(&[&a]).await;
    // The four counted during the outage were sent (the two before were lost with the server).
    assert_eq!(redis.get_u64(&key("sub-open", window(QuotaUnit::Day, t).0)).await, 4);
    // A replica started now sees them after its first sync: two more fit under the limit.
    let c = replica(&redis.url(), FailureMode::Open, None);
    assert!(c.quotas.take("sub-open", &c.counter, &limit, t).admitted);
    settle(&[&c]).await;
    assert!(c.quotas.take("sub-open", &c.counter, &limit, t).admitted);
    let spent = c.quotas.take("sub-open", &c.counter, &limit, t);
    assert!(!spent.admitted, "C sees A's four");
    assert_eq!(spent.used, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_closed_refuses_limited_plans_until_the_store_answers() {
    let mut redis = Redis::start_with(Some("s3cret")).await;
    let r = replica(&redis.url(), FailureMode::Closed, Some("s3cret"));
    let limit = day_limit(100);
    let soft = PlanLimit {
        stop_on_reach: false,
        ..limit
    };
    let t = now();
    assert!(r.quotas.take("sub-closed", &r.counter, &limit, t).admitted);
    settle(&[&r]).await;
    assert!(r.quotas.is_up(), "the password from the configuration is used");
    redis.stop().await;
    wait_until("the replica notices the outage", || !r.quotas.is_up()).await;
    let refused = r.quotas.take("sub-closed", &r.counter, &limit, t);
    assert!(!refused.admitted, "closed: refused while the store is down");
    assert_eq!(refused.used, refused.limit, "told as a spent quota");
    assert!(
        r.quotas.take("sub-closed", &r.counter, &soft, t).admitted,
        "soft limits still pass"
    );
    redis.restart().await;
    wait_until("the replica reaches the store again", || r.quotas.is_up()).await;
    assert!(r.quotas.take("sub-closed", &r.counter, &limit, t).admitted);

    // A wrong password is an unreachable store.
    let wrong = replica(&redis.url(), FailureMode::Closed, Some("wrong"));
    assert!(
        wrong.quotas.take("sub-closed", &wrong.counter, &limit, t).admitted,
        "not known yet"
    );
    wait_until("a refused AUTH counts as down", || !wrong.quotas.is_up()).await;
}
