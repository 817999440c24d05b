//! The in-process subscription check with quota accounting: latency and heap allocations of
//! `AuthzService::respond` on a route validating subscriptions with 1,000 and 1,000,000
//! subscriptions indexed (each with a token and a plan quota), for allowed requests (token found,
//! one count taken), refused ones (unknown token: 403) and limited ones (quota spent: 429); the
//! resident memory per subscription; and the cost of one subscription write with 1,000,000 stored.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin authz-subs [-- CHECKS]` (default 200000).
//! Each check is timed alone, so the figures include one `Instant::now()` pair (tens of ns).

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tollgate_bench::percentile;
use tollgate_policies::AuthzService;
use tollgate_policies::authz::{
    PlanLimit, QuotaUnit, SharedIndex, SharedSubscriptions, SubscriptionRecord, SubscriptionWriter, ctx, digest_of,
};
use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};

/// Which token the j-th request presents.
type Presented = Box<dyn Fn(usize) -> String>;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn token(i: usize) -> String {
    format!(
        "tgsub_{:064x}",
        (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

/// How many subscriptions (the first ones) are on a one-a-day plan, spent before measuring.
const SPENT: usize = 100;

/// Subscription `i`: every tenth on another API; the first [`SPENT`] on a spent one-a-day plan
/// (the 429 case), the rest on a plan too large to reach here.
fn record(i: usize) -> SubscriptionRecord {
    let count = if i < SPENT { 1 } else { 1 << 30 };
    SubscriptionRecord {
        id: Arc::from(format!("{i:08x}-0000-4000-8000-000000000000")),
        api: Arc::from(if i % 10 == 5 { "billing" } else { "orders" }),
        application: None,
        plan_expires_at: None,
        limit: Some(PlanLimit {
            count,
            unit: QuotaUnit::Day,
            stop_on_reach: true,
        }),
    }
}

fn main() {
    let checks: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    println!("| subscriptions | requests | checks | p50 | p99 | heap allocations per check | RSS per subscription |");
    println!("|---|---|---|---|---|---|---|");
    for n in [1_000usize, 1_000_000] {
        let rss0 = rss_bytes();
        let subs = Arc::new(SharedSubscriptions::default());
        let mut writer = SubscriptionWriter::new(subs.clone());
        writer.replace_all((0..n).map(|i| (Some(digest_of(token(i).as_bytes())), record(i))));
        let per_sub = rss_bytes().saturating_sub(rss0) as f64 / n as f64;
        let service = AuthzService::with_subscriptions(Arc::new(SharedIndex::default()), subs);
        let now = tollgate_bench_now();
        // Spend the one-a-day plans.
        for i in 0..SPENT {
            if i % 10 != 5 {
                black_box(service.respond(&check_request(&token(i)), now));
            }
        }
        let pick = move |j: usize| {
            let i = SPENT + (j * 7919) % (n - SPENT);
            if i % 10 == 5 { i + 1 } else { i }
        };
        let cases: [(&str, Presented); 3] = [
            ("allowed (quota counted)", Box::new(move |j| token(pick(j)))),
            (
                "refused (unknown token, 403)",
                Box::new(|j| format!("tgsub_unknown_{j}")),
            ),
            ("limited (quota spent, 429)", Box::new(|j| token((j * 10) % SPENT))),
        ];
        for (case, presented) in cases {
            let requests: Vec<Vec<u8>> = (0..1024).map(|j| check_request(&presented(j))).collect();
            let mut times = Vec::with_capacity(checks);
            let mut bytes = 0usize;
            let region = Region::new(GLOBAL);
            for c in 0..checks {
                let req = &requests[c % requests.len()];
                let t = Instant::now();
                let answer = service.respond(black_box(req), black_box(now));
                times.push(t.elapsed());
                bytes += answer.len();
            }
            let allocs = region.change().allocations as f64 / checks as f64;
            times.sort_unstable();
            black_box(bytes);
            println!(
                "| {n} | {case} | {checks} | {} | {} | {allocs:.3} | {per_sub:.0} B |",
                ns(percentile(&times, 50.0)),
                ns(percentile(&times, 99.0))
            );
        }
        if n == 1_000_000 {
            writes(&mut writer, n);
        }
    }
}

fn tollgate_bench_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One subscription write (a new subscription) with `n` stored, merges included.
fn writes(writer: &mut SubscriptionWriter, n: usize) {
    let mut times = Vec::new();
    for w in 0..10_000 {
        let i = n + w;
        let t = Instant::now();
        writer.upsert(Some(digest_of(token(i).as_bytes())), record(i));
        times.push(t.elapsed());
    }
    times.sort_unstable();
    println!();
    println!(
        "One subscription write with {n} stored ({} writes, merges included): p50 {}, p99 {}, max {}",
        times.len(),
        human(percentile(&times, 50.0)),
        human(percentile(&times, 99.0)),
        human(*times.last().unwrap_or(&Duration::ZERO))
    );
}

fn human(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

/// An encoded `CheckRequest` as Envoy sends it for a route validating subscriptions in the
/// `subscription-key` header.
fn check_request(presented: &str) -> Vec<u8> {
    let ext = [
        (ctx::API, "orders"),
        (ctx::SUB, "true"),
        (ctx::SUB_HEADER, "subscription-key"),
    ];
    let headers = [
        (":authority", "localhost:8080"),
        (":method", "GET"),
        (":path", "/orders/items?page=2"),
        (":scheme", "http"),
        ("subscription-key", presented),
    ];
    CheckRequest {
        attributes: Some(AttributeContext {
            context_extensions: ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    id: "12345678901234567890".into(),
                    method: "GET".into(),
                    path: "/orders/items?page=2".into(),
                    host: "localhost:8080".into(),
                    scheme: "http".into(),
                    protocol: "HTTP/1.1".into(),
                    headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

fn ns(d: Duration) -> String {
    format!("{} ns", d.as_nanos())
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0)
        * 1024
}
