//! Control-plane deploy-to-serving latency: from pushing an `api.deployed` frame on the platform
//! API's WebSocket to the first 200 through the real Envoy. The fake platform API (testkit) serves
//! the artifact ZIP over HTTPS on loopback; the controller fetches it, applies it, publishes it
//! over xDS and acks. Also reports when the `deployment.ack` arrived.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin platform-deploy [-- --samples N]`
//! (default 100 samples). Needs Envoy (`make envoy`).

use std::time::{Duration, Instant};

use tollgate::config::{Config, ControlPlane};
use tollgate::runtime;
use tollgate_bench::percentile;
use tollgate_testkit::platform::FakePlatform;
use tollgate_testkit::{Echo, Envoy, envoy::TempDir, free_port};

const TOKEN: &str = "bench-gateway-token-0123456789abcdefghijklm";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let samples = args
        .iter()
        .position(|a| a == "--samples")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(100usize);
    let echo = Echo::start("backend").await;
    let fake = FakePlatform::start(TOKEN).await;
    let dir = std::env::temp_dir().join(format!("tollgate-bench-cp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let _data = TempDir(dir.clone());
    let ca = dir.join("platform-ca.pem");
    std::fs::write(&ca, fake.ca_pem())?;
    let mut c = Config::loopback(dir.clone(), free_port(), "bench", "bench");
    c.control_plane = ControlPlane {
        host: fake.host(),
        token: TOKEN.into(),
        ca_cert_path: Some(ca),
        ..ControlPlane::default()
    };
    let running = runtime::start(&c).await?;
    let _envoy = Envoy::start("delta", "bench", "default", running.xds).await;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let port = c.router.http_port;
    let get = |path: String| {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let t = Instant::now();
    while get("/_gateway-health/ready".into()).await != 200 || fake.manifests().is_empty() {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(30),
            "envoy or the link never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (mut served, mut acked) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let name = format!("cp-{i}");
        let yaml = format!(
            "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata: {{name: {name}}}\nspec:\n  displayName: {name}\n  version: v1\n  context: /{name}\n  vhosts: {{main: _gateway_default_}}\n  upstream: {{main: {{url: \"http://127.0.0.1:{}\"}}}}\n  operations:\n    - {{method: GET, path: /*}}\n",
            echo.port
        );
        let d = fake.deploy(&id, &yaml);
        let event = fake.deployed_event(&d);
        let acks_before = fake.acks().len();
        let t0 = Instant::now();
        anyhow::ensure!(fake.push(&event) == 1, "no live connection");
        let mut ack_at = None;
        loop {
            if ack_at.is_none() && fake.acks().len() > acks_before {
                ack_at = Some(t0.elapsed());
            }
            if get(format!("/{name}/x")).await == 200 {
                served.push(t0.elapsed());
                break;
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(30), "{name} never served");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let ack = match ack_at {
            Some(a) => a,
            None => {
                fake.wait_acks(acks_before + 1, Duration::from_secs(10)).await;
                t0.elapsed()
            }
        };
        acked.push(ack);
    }
    served.sort_unstable();
    acked.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| samples | first 200 p50 | first 200 p99 | max | ack seen p50 | ack seen p99 |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {samples} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        ms(percentile(&served, 50.0)),
        ms(percentile(&served, 99.0)),
        ms(*served.last().unwrap_or(&Duration::ZERO)),
        ms(percentile(&acked, 50.0)),
        ms(percentile(&acked, 99.0)),
    );
    let failed = fake
        .acks()
        .iter()
        .filter(|a| a["payload"]["status"] != "success")
        .count();
    anyhow::ensure!(failed == 0, "{failed} failed acks");
    running.shutdown().await;
    Ok(())
}
