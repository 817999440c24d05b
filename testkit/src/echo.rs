//! An HTTP/1.1 upstream that answers with what it received, as JSON: `upstream` (its name),
//! `method`, `path`, `query`, `headers` and `body`. `?statusCode=N` chooses the status;
//! `?delayMs=N` or a path ending in `/delay/N` (seconds, as httpbin) delays the answer. Over TLS
//! ([`Echo::start_tls`]) the answer also carries `sni`, the server name the client asked for.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// An echo upstream on a loopback port, stopped on drop.
#[derive(Debug)]
pub struct Echo {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Echo {
    /// Starts an echo upstream named `name`.
    pub async fn start(name: &str) -> Echo {
        Self::spawn(name, None).await
    }

    /// Starts an HTTPS echo upstream named `name` serving a fresh self-signed certificate for
    /// `names`; returns it and the certificate (PEM) to trust.
    pub async fn start_tls(name: &str, names: &[&str]) -> (Echo, String) {
        let (cert, key) = crate::tls::self_signed(names);
        let echo = Self::spawn(name, Some(crate::tls::acceptor(&cert, &key))).await;
        (echo, cert)
    }

    async fn spawn(name: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let port = listener.local_addr().expect("addr").port();
        let name = name.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (name, tls) = (name.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => {
                            let svc = service_fn(move |req| answer_with(name.clone(), None, req));
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(sock), svc).await;
                        }
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(sock).await else { return };
                            let sni = tls.get_ref().1.server_name().map(str::to_string);
                            let svc = service_fn(move |req| answer_with(name.clone(), sni.clone(), req));
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
                        }
                    }
                });
            }
        });
        Echo { port, task }
    }
}

async fn answer_with(
    name: String,
    sni: Option<String>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let mut headers = Map::new();
    for (k, v) in req.headers() {
        headers.insert(
            k.as_str().to_string(),
            Value::String(v.to_str().unwrap_or("").to_string()),
        );
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let param = |key: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mut delay = param("delayMs").map(Duration::from_millis);
    if let Some(secs) = path.rsplit_once("/delay/").and_then(|(_, n)| n.parse::<u64>().ok()) {
        delay = Some(Duration::from_secs(secs));
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let status = param("statusCode").and_then(|s| u16::try_from(s).ok()).unwrap_or(200);
    let out = json!({
        "upstream": name,
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "sni": sni,
    });
    let resp = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-echo-upstream", name.as_str())
        .body(Full::new(Bytes::from(out.to_string())))
        .expect("response");
    Ok(resp)
}
