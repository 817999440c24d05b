//! `envoy.service.auth.v3.Authorization/Check` over loopback gRPC: p50/p99 and checks per second with
//! 1 and 64 requests in flight. The controller's service (`AuthzServer`, TCP_NODELAY as in the
//! controller) runs on a one-thread runtime here, so checks/s is per core; the client on another.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin authz-grpc [-- CHECKS]` (default 50000).
//!
//! Two clients are measured one after the other against the same server: tonic's (a `Channel`, as a
//! Rust service would call it) and a lean one on the `h2` crate (one current-thread runtime, requests
//! encoded up front, each response decoded and checked), so the figures show how much of the round
//! trip is the client's.
//!
//! In one process it also times the floor: the same number of bytes bounced over loopback TCP between
//! two threads, with no HTTP/2 or gRPC.
//!
//! Or as two processes, so each can be pinned to its own core (`taskset`):
//! `authz-grpc serve ADDR` runs only the service; `authz-grpc client ADDR [CHECKS]` only the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use prost::Message;

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
            client(addr, checks(2), false)
        }
        _ => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            std::thread::spawn(move || serve(listener));
            client(addr.to_string(), checks(0), true)
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

/// Both clients against the server at `addr`; with `floor`, also the bare TCP round trip.
fn client(addr: String, checks: usize, floor: bool) -> anyhow::Result<()> {
    println!("| client | in flight | checks | p50 | p99 | checks/s (server on one core) |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, inflight: usize, mut lat: Vec<Duration>, elapsed: Duration| {
        lat.sort_unstable();
        println!(
            "| {name} | {inflight} | {checks} | {} | {} | {:.0} |",
            micros(percentile(&lat, 50.0)),
            micros(percentile(&lat, 99.0)),
            checks as f64 / elapsed.as_secs_f64()
        );
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = AuthorizationClient::connect(format!("http://{addr}")).await?;
        for inflight in [1usize, 64] {
            // Warm up.
            run(&client, 2000.min(checks), inflight).await?;
            let (lat, elapsed) = run(&client, checks, inflight).await?;
            row("tonic", inflight, lat, elapsed);
        }
        Ok::<_, anyhow::Error>(())
    })?;
    drop(rt);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let lean = Lean::connect(&addr).await?;
        for inflight in [1usize, 64] {
            lean.run(2000.min(checks), inflight).await?;
            let (lat, elapsed) = lean.run(checks, inflight).await?;
            row("h2", inflight, lat, elapsed);
        }
        Ok::<_, anyhow::Error>(())
    })?;
    if !floor {
        return Ok(());
    }
    // The floor under any of it: the same bytes bounced over loopback TCP with no HTTP/2 or gRPC,
    // between two threads.
    let size = orders_check(&key(0)).encoded_len() + 5;
    let (lat, elapsed) = ping_pong_tokio(size, checks)?;
    row("TCP ping-pong", 1, lat, elapsed);
    Ok(())
}

/// `rounds` round trips of `size` bytes over loopback TCP between two threads, each side on its own
/// current-thread tokio runtime.
fn ping_pong_tokio(size: usize, rounds: usize) -> anyhow::Result<(Vec<Duration>, Duration)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let (mut s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            let mut buf = vec![0u8; size];
            while s.read_exact(&mut buf).await.is_ok() {
                s.write_all(&buf).await?;
            }
            Ok(())
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let out = rt.block_on(async move {
        let mut c = tokio::net::TcpStream::connect(addr).await?;
        c.set_nodelay(true)?;
        let (out, mut back) = (vec![7u8; size], vec![0u8; size]);
        let mut lat = Vec::with_capacity(rounds);
        for _ in 0..2000 {
            c.write_all(&out).await?;
            c.read_exact(&mut back).await?;
        }
        let start = Instant::now();
        for _ in 0..rounds {
            let t0 = Instant::now();
            c.write_all(&out).await?;
            c.read_exact(&mut back).await?;
            lat.push(t0.elapsed());
        }
        Ok::<_, anyhow::Error>((lat, start.elapsed()))
    });
    let _ = echo.join();
    out
}

/// A minimal gRPC client on the `h2` crate: every request frame encoded before the clock starts,
/// one task per request in flight on a current-thread runtime, each answer decoded and checked.
struct Lean {
    send: h2::client::SendRequest<bytes::Bytes>,
    uri: http::Uri,
    /// Length-prefixed CheckRequests: keys 0..1000, then one unknown key.
    frames: Arc<Vec<bytes::Bytes>>,
}

impl Lean {
    async fn connect(addr: &str) -> anyhow::Result<Lean> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = h2::client::handshake(tcp).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let frames = (0..=1000)
            .map(|i| {
                let k = if i == 1000 { "apip_unknown".to_string() } else { key(i) };
                let body = orders_check(&k).encode_to_vec();
                let mut f = Vec::with_capacity(5 + body.len());
                f.push(0);
                f.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
                f.extend_from_slice(&body);
                bytes::Bytes::from(f)
            })
            .collect();
        let uri = format!("http://{addr}/envoy.service.auth.v3.Authorization/Check").parse()?;
        Ok(Lean {
            send,
            uri,
            frames: Arc::new(frames),
        })
    }

    async fn run(&self, checks: usize, inflight: usize) -> anyhow::Result<(Vec<Duration>, Duration)> {
        let (send, uri, frames) = (self.send.clone(), Arc::new(self.uri.clone()), self.frames.clone());
        closed_loop(checks, inflight, move |key| {
            let frame = frames[key.unwrap_or(1000)].clone();
            let (send, uri) = (send.clone(), uri.clone());
            async move { lean_check(send, &uri, frame).await }
        })
        .await
    }
}

/// One unary Check: true when the answer is OK (code 0).
async fn lean_check(
    send: h2::client::SendRequest<bytes::Bytes>,
    uri: &http::Uri,
    frame: bytes::Bytes,
) -> anyhow::Result<bool> {
    let mut send = send.ready().await?;
    let req = http::Request::builder()
        .method("POST")
        .uri(uri.clone())
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?;
    let (resp, mut stream) = send.send_request(req, false)?;
    stream.send_data(frame, true)?;
    let mut body = resp.await?.into_body();
    let mut buf = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await?;
    let grpc_status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .map(|v| v.as_bytes());
    anyhow::ensure!(grpc_status == Some(b"0"), "grpc-status {grpc_status:?}");
    anyhow::ensure!(buf.len() >= 5, "short answer");
    let answer = tollgate_proto::pb::envoy::service::auth::v3::CheckResponse::decode(&buf[5..])?;
    Ok(answer.status.is_some_and(|s| s.code == 0))
}

async fn run(
    client: &AuthorizationClient<tonic::transport::Channel>,
    checks: usize,
    inflight: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let client = client.clone();
    closed_loop(checks, inflight, move |key| {
        let req = orders_check(&key.map_or_else(|| "apip_unknown".to_string(), self::key));
        let mut c = client.clone();
        async move {
            let answer = c.check(req).await?.into_inner();
            Ok(answer.status.is_some_and(|s| s.code == 0))
        }
    })
    .await
}

/// `checks` checks from `inflight` tasks, each sending its next check once the last is answered.
/// `check(key)` prepares a check of key number `key` (`None`: a key nobody has) and returns the
/// future that sends it and says whether it was allowed; only awaiting that future is timed. Nine
/// checks in ten carry a valid key; every answer must be right.
async fn closed_loop<F, Fut>(checks: usize, inflight: usize, check: F) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(Option<usize>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send,
{
    let start = Instant::now();
    let per_task = checks / inflight;
    let mut tasks = Vec::new();
    for t in 0..inflight {
        let check = check.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let unknown = i % 10 == 9;
                let pending = check((!unknown).then_some((t * 31 + i) % 1000));
                let t0 = Instant::now();
                let allowed = pending.await?;
                lat.push(t0.elapsed());
                anyhow::ensure!(
                    allowed != unknown,
                    "check {i}: allowed {allowed}, unknown key {unknown}"
                );
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::with_capacity(checks);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all, start.elapsed()))
}
