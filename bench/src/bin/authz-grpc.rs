//! `envoy.service.auth.v3.Authorization/Check` over loopback gRPC: p50/p99 and checks per second with
//! 1 and 64 requests in flight. The service runs on its own one-thread runtime (one core), as in the
//! controller; the client on another.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin authz-grpc [-- CHECKS]` (default 50000).
//!
//! Or as two processes, so each can be pinned to its own core (`taskset`):
//! `authz-grpc serve ADDR` runs only the service; `authz-grpc client ADDR [CHECKS]` only the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use tollgate_bench::{micros, orders_check, percentile};
use tollgate_policies::AuthzServer;
use tollgate_policies::authz::{KeyIndex, KeyRecord, SharedIndex, digest_of};
use tollgate_proto::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;

fn key(i: usize) -> String {
    format!("apip_{i:064x}")
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let checks = |i: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(50_000usize);
    match args.first().map(String::as_str) {
        Some("serve") => {
            let addr = args.get(1).context("serve ADDR")?;
            let listener = std::net::TcpListener::bind(addr.as_str())?;
            serve(listener)
        }
        Some("client") => {
            let addr = args.get(1).context("client ADDR [CHECKS]")?.clone();
            client(addr, checks(2))
        }
        _ => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            std::thread::spawn(move || serve(listener));
            client(addr.to_string(), checks(0))
        }
    }
}

/// The service on a one-thread runtime (one core), with 1,000 keys.
fn serve(listener: std::net::TcpListener) -> anyhow::Result<()> {
    let index = Arc::new(SharedIndex::default());
    index.store(KeyIndex::new((0..1000).map(|i| {
        let r = KeyRecord {
            api: "orders".into(),
            name: format!("k{i}").into(),
            application: None,
            expires_at: None,
        };
        (digest_of(key(i).as_bytes()), r)
    })));
    listener.set_nonblocking(true)?;
    let server_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    server_rt.block_on(async move {
        let l = tokio::net::TcpListener::from_std(listener)?;
        tonic::transport::Server::builder()
            .add_service(AuthzServer::new(index))
            // As in the controller: no Nagle delay on answers.
            .serve_with_incoming(tollgate_xds::nodelay_incoming(l))
            .await?;
        Ok(())
    })
}

fn client(addr: String, checks: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = AuthorizationClient::connect(format!("http://{addr}")).await?;
        println!("| in flight | checks | p50 | p99 | checks/s (server on one core) |");
        println!("|---|---|---|---|---|");
        for inflight in [1usize, 64] {
            // Warm up.
            run(&client, 2000.min(checks), inflight).await?;
            let (mut lat, elapsed) = run(&client, checks, inflight).await?;
            lat.sort_unstable();
            println!(
                "| {inflight} | {checks} | {} | {} | {:.0} |",
                micros(percentile(&lat, 50.0)),
                micros(percentile(&lat, 99.0)),
                checks as f64 / elapsed.as_secs_f64()
            );
        }
        Ok::<_, anyhow::Error>(())
    })
}

async fn run(
    client: &AuthorizationClient<tonic::transport::Channel>,
    checks: usize,
    inflight: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let start = Instant::now();
    let per_task = checks / inflight;
    let mut tasks = Vec::new();
    for t in 0..inflight {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for i in 0..per_task {
                // Nine in ten valid, one unknown.
                let k = if i % 10 == 9 {
                    "apip_unknown".to_string()
                } else {
                    key((t * 31 + i) % 1000)
                };
                let req = orders_check(&k);
                let t0 = Instant::now();
                c.check(req).await?;
                lat.push(t0.elapsed());
            }
            Ok::<_, tonic::Status>(lat)
        }));
    }
    let mut all = Vec::with_capacity(checks);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all, start.elapsed()))
}
