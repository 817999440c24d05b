//! Shared quotas (issue #14, item 6): what counting through a Redis store costs the decision, and
//! how far over the limit three replicas sharing one store can get.
//!
//! 1. Decision cost: `QuotaBackend::take` on 10,000 subscriptions (round robin, a limit never
//!    reached), with the in-process backend and with the shared one (its sync task running against
//!    a real redis-server), side by side: p50/p99 per call and calls per second on one thread.
//! 2. Accuracy: three `SharedQuotas` (three replicas) on one redis-server, one subscription with a
//!    limit, one thread per replica sending at a paced rate (or unpaced) until each has seen 200
//!    refusals in a row: admitted versus the limit.
//!
//! Usage: `TOLLGATE_REDIS_BIN=.tools/redis/bin/redis-server cargo run --release -p tollgate-bench
//! --bin authz-quota-shared [-- CALLS]` (default 1000000; `make redis` installs redis-server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_bench::percentile;
use tollgate_policies::authz::{Counter, LocalQuotas, PlanLimit, QuotaBackend, QuotaUnit};
use tollgate_quota_store::{SharedQuotas, StoreConfig};
use tollgate_testkit::Redis;

const SUBSCRIPTIONS: usize = 10_000;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Times `calls` takes over [`SUBSCRIPTIONS`] subscriptions: (p50, p99, calls per second).
fn decision_cost(backend: &dyn QuotaBackend, calls: usize) -> (Duration, Duration, f64) {
    let ids: Vec<String> = (0..SUBSCRIPTIONS).map(|i| format!("sub-{i:05}")).collect();
    let counters: Vec<Counter> = (0..SUBSCRIPTIONS).map(|_| Counter::default()).collect();
    let limit = PlanLimit {
        count: u64::MAX / 2,
        unit: QuotaUnit::Day,
        stop_on_reach: true,
    };
    let t = now();
    let mut samples = Vec::with_capacity(calls);
    let start = Instant::now();
    for j in 0..calls {
        let i = j % SUBSCRIPTIONS;
        let before = Instant::now();
        let take = backend.take(&ids[i], &counters[i], &limit, t);
        samples.push(before.elapsed());
        std::hint::black_box(take);
    }
    let rate = calls as f64 / start.elapsed().as_secs_f64();
    samples.sort_unstable();
    (percentile(&samples, 50.0), percentile(&samples, 99.0), rate)
}

/// Three replicas on one store, one subscription limited to `limit` a day, one thread per replica
/// checking every `gap` (none: as fast as it can): how many were admitted.
fn accuracy(url: &str, subscription: &str, limit: u64, gap: Option<Duration>) -> anyhow::Result<u64> {
    let replicas = (0..3)
        .map(|_| {
            Ok(Arc::new((
                SharedQuotas::start(&StoreConfig::new(url))?,
                Counter::default(),
            )))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let limit = PlanLimit {
        count: limit,
        unit: QuotaUnit::Day,
        stop_on_reach: true,
    };
    let threads: Vec<_> = replicas
        .iter()
        .map(|r| {
            let (r, id) = (r.clone(), subscription.to_string());
            std::thread::spawn(move || {
                let (mut admitted, mut refused) = (0u64, 0);
                let mut next = Instant::now();
                while refused < 200 {
                    if let Some(g) = gap {
                        next += g;
                        while Instant::now() < next {
                            std::hint::spin_loop();
                        }
                    }
                    if r.0.take(&id, &r.1, &limit, now()).admitted {
                        admitted += 1;
                        refused = 0;
                    } else {
                        refused += 1;
                    }
                }
                admitted
            })
        })
        .collect();
    Ok(threads.into_iter().map(|t| t.join().unwrap_or(0)).sum())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let redis = Redis::start().await;
    println!("decision cost, {calls} takes over {SUBSCRIPTIONS} subscriptions, one thread:");
    let (p50, p99, rate) = tokio::task::block_in_place(|| decision_cost(&LocalQuotas, calls));
    println!("  local   p50 {p50:?}  p99 {p99:?}  {rate:.0}/s");
    let shared = SharedQuotas::start(&StoreConfig::new(redis.url()))?;
    let (p50, p99, rate) = tokio::task::block_in_place(|| decision_cost(&*shared, calls));
    println!("  shared  p50 {p50:?}  p99 {p99:?}  {rate:.0}/s  (sync task running)");
    drop(shared);

    println!("accuracy, 3 replicas on one redis-server, sync every 5 ms:");
    for (name, limit, gap) in [
        ("1,000/s per replica", 1_000, Some(Duration::from_millis(1))),
        ("10,000/s per replica", 1_000, Some(Duration::from_micros(100))),
        ("unpaced", 1_000, None),
        ("unpaced", 100_000, None),
    ] {
        let id = format!("acc-{name}-{limit}");
        let url = redis.url();
        let admitted = tokio::task::block_in_place(|| accuracy(&url, &id, limit, gap))?;
        println!(
            "  {name:>22}: limit {limit:>7}  admitted {admitted:>7}  over {:>6} ({:.2} %)",
            admitted.saturating_sub(limit),
            100.0 * admitted.saturating_sub(limit) as f64 / limit as f64
        );
    }
    Ok(())
}
