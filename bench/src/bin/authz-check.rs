//! The in-process API-key check: latency and heap allocations per `KeyIndex::decide` with 1,000
//! and 1,000,000 keys (hits, misses and other-API keys mixed), and resident memory per key; then
//! the whole decision the gRPC service makes, `AuthzService::respond` (read the encoded
//! `CheckRequest` Envoy sends, decide, produce the encoded `CheckResponse`), for refused and for
//! allowed requests separately; then the cost of one key write with 1,000,000 keys stored, as a
//! full index rebuild (how writes worked before) and as a change to the layered index (now).
//!
//! Usage: `cargo run --release -p tollgate-bench --bin authz-check [-- CHECKS]` (default 200000).
//! Each check is timed alone, so the figures include one `Instant::now()` pair (tens of ns).

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tollgate_bench::percentile;
use tollgate_policies::AuthzService;
use tollgate_policies::authz::{COMPACT_AT, Decision, IndexWriter, KeyIndex, KeyRecord, SharedIndex, ctx, digest_of};
use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn key(i: usize) -> String {
    format!(
        "apip_{:064x}",
        (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

fn main() {
    let checks: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    println!("| keys | checks | p50 | p99 | heap allocations per check | RSS per key |");
    println!("|---|---|---|---|---|---|");
    let mut service_rows = Vec::new();
    for n in [1_000usize, 1_000_000] {
        let api: Arc<str> = Arc::from("orders");
        let other: Arc<str> = Arc::from("billing");
        let rss0 = rss_bytes();
        let index = KeyIndex::new((0..n).map(|i| {
            let record = KeyRecord {
                api: if i % 10 == 0 { other.clone() } else { api.clone() },
                name: Arc::from(format!("key-{i}")),
                application: None,
                expires_at: None,
            };
            (digest_of(key(i).as_bytes()), record)
        }));
        let per_key = rss_bytes().saturating_sub(rss0) as f64 / n as f64;
        // Presented keys: 80% valid for "orders", 10% another API's, 10% unknown.
        let presented: Vec<String> = (0..4096)
            .map(|j| {
                if j % 10 == 9 {
                    format!("apip_unknown_{j}")
                } else {
                    key((j * 7919) % n)
                }
            })
            .collect();
        let mut times = Vec::with_capacity(checks);
        let mut allowed = 0usize;
        let region = Region::new(GLOBAL);
        for c in 0..checks {
            let p = presented[c % presented.len()].as_bytes();
            let t = Instant::now();
            let d = index.decide(black_box("orders"), black_box(p), black_box(1_000));
            times.push(t.elapsed());
            allowed += usize::from(matches!(d, Decision::Allow(_)));
        }
        let stats = region.change();
        // `times` was allocated before the region; pushing within capacity does not allocate.
        let allocs = stats.allocations as f64 / checks as f64;
        times.sort_unstable();
        black_box(allowed);
        println!(
            "| {n} | {checks} | {} | {} | {allocs:.3} | {per_key:.0} B |",
            ns(percentile(&times, 50.0)),
            ns(percentile(&times, 99.0))
        );
        let shared = Arc::new(SharedIndex::default());
        shared.store(index);
        // The same decisions, bare and with the controller's metrics observer (issue #19: the hot
        // path pays a counter increment, and a clock read on one check in 64).
        let bare = AuthzService::new(shared.clone());
        let counted = AuthzService::new(shared).with_observer(Arc::new(tollgate::metrics::AuthzCounters::default()));
        let cases = [
            ("refused (unknown key)", true, &bare),
            ("allowed", false, &bare),
            ("refused (unknown key), with metrics", true, &counted),
            ("allowed, with metrics", false, &counted),
        ];
        for (case, denied, service) in cases {
            // What Envoy sends for a protected route: the route's context extensions, the
            // pseudo-headers and the key header.
            let requests: Vec<Vec<u8>> = (0..1024)
                .map(|j| {
                    let presented = if denied {
                        format!("apip_unknown_{j}")
                    } else {
                        key((j * 10 + 1) % n)
                    };
                    check_request(&presented)
                })
                .collect();
            let mut times = Vec::with_capacity(checks);
            let mut bytes = 0usize;
            let region = Region::new(GLOBAL);
            for c in 0..checks {
                let req = &requests[c % requests.len()];
                let t = Instant::now();
                let answer = service.respond(black_box(req), black_box(1_000));
                times.push(t.elapsed());
                bytes += answer.len();
            }
            let stats = region.change();
            let allocs = stats.allocations as f64 / checks as f64;
            times.sort_unstable();
            black_box(bytes);
            service_rows.push(format!(
                "| {n} | {case} | {checks} | {} | {} | {allocs:.3} |",
                ns(percentile(&times, 50.0)),
                ns(percentile(&times, 99.0))
            ));
        }
    }
    println!();
    println!("`AuthzService::respond` (encoded request in, encoded response out):");
    println!();
    println!("| keys | requests | checks | p50 | p99 | heap allocations per check |");
    println!("|---|---|---|---|---|---|");
    for row in service_rows {
        println!("{row}");
    }
    writes();
}

/// One key write with 1,000,000 keys stored: rebuilding the whole index vs a layered change.
fn writes() {
    let n = 1_000_000usize;
    let record = |i: usize| KeyRecord {
        api: Arc::from(if i.is_multiple_of(10) { "billing" } else { "orders" }),
        name: Arc::from(format!("key-{i}")),
        application: None,
        expires_at: None,
    };
    // Digests and records ready, so only building the index is timed.
    let all: Vec<_> = (0..n + 10).map(|i| (digest_of(key(i).as_bytes()), record(i))).collect();
    let mut rebuilds = Vec::new();
    for w in 0..10 {
        let t = Instant::now();
        let index = KeyIndex::new(all[..n + w].iter().cloned());
        rebuilds.push(t.elapsed());
        black_box(index.len());
    }
    drop(all);
    let shared = Arc::new(SharedIndex::default());
    let mut writer = IndexWriter::new(
        shared.clone(),
        (0..n).map(|i| (digest_of(key(i).as_bytes()), record(i))),
    );
    let mut changes = Vec::new();
    let mut merges = Vec::new();
    // Enough writes to fill the layer twice: every write is timed, merges included.
    for w in 0..2 * (COMPACT_AT + 1) {
        let i = n + w;
        let before = shared.load().layered();
        let t = Instant::now();
        writer.change([], [(digest_of(key(i).as_bytes()), record(i))]);
        let took = t.elapsed();
        if shared.load().layered() < before {
            merges.push(took);
        } else {
            changes.push(took);
        }
    }
    assert!(matches!(
        shared.load().decide("orders", key(n + 1).as_bytes(), 0),
        Decision::Allow(_)
    ));
    rebuilds.sort_unstable();
    changes.sort_unstable();
    merges.sort_unstable();
    println!();
    println!("One key write with {n} keys stored:");
    println!();
    println!("| how | writes | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (how, t) in [
        ("full rebuild (before)", &rebuilds),
        ("layered change (now)", &changes),
        ("layered: the writes that merged the layer", &merges),
    ] {
        println!(
            "| {how} | {} | {} | {} | {} |",
            t.len(),
            human(percentile(t, 50.0)),
            human(percentile(t, 99.0)),
            human(*t.last().unwrap_or(&Duration::ZERO))
        );
    }
}

fn human(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    }
}

/// An encoded `CheckRequest` as Envoy sends it for a route protected by a header key.
fn check_request(presented: &str) -> Vec<u8> {
    let ext = [
        (ctx::API, "orders"),
        (ctx::KEY_IN, "header"),
        (ctx::KEY_NAME, "x-api-key"),
    ];
    let headers = [
        (":authority", "localhost:8080"),
        (":method", "GET"),
        (":path", "/orders/items?page=2"),
        (":scheme", "http"),
        ("x-api-key", presented),
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
