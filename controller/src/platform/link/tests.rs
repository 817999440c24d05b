//! The link's reconnect jitter, and the gateway token kept out of every log line.

use std::io::Write;
use std::sync::Mutex;

use tollgate_testkit::FakePlatform;
use tracing_subscriber::EnvFilter;

use super::*;

#[test]
fn jitter_stays_within_a_quarter() {
    for _ in 0..200 {
        let d = jitter(Duration::from_secs(8));
        assert!(d >= Duration::from_secs(6) && d <= Duration::from_secs(10), "{d:?}");
    }
}

/// Everything a subscriber writes, kept for the test to search.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Issue #13: with everything logged at TRACE (what `RUST_LOG=trace` asks for) through the filter
/// the commands install, the token appears nowhere: not in tungstenite's record of the upgrade
/// request, not in any REST call of the sync that follows. The subscriber is this thread's (the
/// test runs on one thread), and `log` records (tungstenite's) reach it through `LogTracer`.
#[tokio::test]
async fn the_gateway_token_never_appears_in_trace_logs() {
    const TOKEN: &str = "trace-test-gateway-token-7c41e9";
    let _ = tracing_log::LogTracer::init();
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(crate::cli::capped(EnvFilter::new("trace")))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakePlatform::start(TOKEN).await;
    let ca = std::env::temp_dir().join(format!("tollgate-link-trace-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, fake.ca_pem()).unwrap();
    let cp = ControlPlane {
        host: fake.host(),
        token: TOKEN.into(),
        ca_cert_path: Some(ca.clone()),
        ..ControlPlane::default()
    };
    let parts = crate::api::tests::parts().await;
    let (stop_tx, stop) = watch::channel(false);
    let link = Link::start(&cp, parts.app, stop).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.manifests().is_empty() {
        assert!(Instant::now() < deadline, "the link never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    drop(link);
    let _ = std::fs::remove_file(&ca);

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("Doing handshake round"),
        "tungstenite's trace records are captured"
    );
    assert!(!logs.contains(TOKEN), "the token is in the logs");
}
