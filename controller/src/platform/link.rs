//! The WebSocket link (reference §2): connect with the gateway token, require `connection.ack`
//! within 5 s, answer pings, treat a silent link as dead, reconnect with exponential backoff and
//! jitter, and give up for good on 401/403/404/409/422. One worker applies sync runs and events in
//! the order they arrive, so a stale-event check and the write it guards never interleave.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, connect_async_tls_with_config};
use tracing::{error, info, warn};

use super::LinkError;
use super::client::PlatformClient;
use super::events::Dispatcher;
use super::status::{Counter, LinkPhase, LinkStatus};
use super::sync::SyncSettings;
use crate::app::App;
use crate::clock;
use crate::config::ControlPlane;

/// How long the platform API has to send `connection.ack`.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Upgrade handshake limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Envelopes are at most 1 MiB; leave room.
const MAX_FRAME: usize = 2 * 1024 * 1024;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A running link.
#[derive(Debug)]
pub struct Link {
    pub status: Arc<LinkStatus>,
    task: Option<JoinHandle<()>>,
}

enum Job {
    Sync {
        gateway_id: String,
        permanent: oneshot::Sender<String>,
    },
    Event {
        text: String,
        out: mpsc::UnboundedSender<Message>,
    },
}

enum Ended {
    Stop,
    Permanent(String),
    Lost { connected: bool, why: String },
}

// === impl Link ===

impl Link {
    /// A link that is off (no control plane configured).
    pub fn disabled() -> Link {
        let status = Arc::new(LinkStatus::default());
        status.update(|s| s.state = LinkPhase::Disabled);
        Link { status, task: None }
    }

    /// Starts the link in the background; it runs until `stop` turns true.
    pub fn start(cp: &ControlPlane, app: Arc<App>, stop: watch::Receiver<bool>) -> Result<Link, LinkError> {
        let tls = super::tls::client_config(cp)?;
        let client = PlatformClient::new(cp, tls.clone())?;
        let status = Arc::new(LinkStatus::default());
        status.update(|s| {
            s.enabled = true;
            s.host = cp.host.clone();
            s.state = LinkPhase::Connecting;
        });
        let manifest = super::manifest(app.catalogue(), &cp.gateway_version);
        let dispatcher = Arc::new(Dispatcher {
            app,
            client: client.clone(),
            status: status.clone(),
        });
        let (jobs, queue) = mpsc::unbounded_channel();
        let worker = tokio::spawn(work(dispatcher, queue, manifest, SyncSettings::of(cp)));
        let ctx = Ctx {
            cp: cp.clone(),
            tls,
            client,
            status: status.clone(),
            jobs,
        };
        let task = tokio::spawn(async move {
            run(ctx, stop).await;
            let _ = worker.await;
        });
        info!(host = %cp.host, "control-plane link started");
        Ok(Link {
            status,
            task: Some(task),
        })
    }

    /// Waits (at most `grace`) for the link to wind down after the stop signal.
    pub async fn stopped(mut self, grace: Duration) {
        if let Some(t) = self.task.take()
            && tokio::time::timeout(grace, t).await.is_err()
        {
            warn!("control-plane link did not stop within the grace period");
        }
    }
}

struct Ctx {
    cp: ControlPlane,
    tls: Arc<rustls::ClientConfig>,
    client: PlatformClient,
    status: Arc<LinkStatus>,
    jobs: mpsc::UnboundedSender<Job>,
}

async fn work(
    dispatcher: Arc<Dispatcher>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    manifest: Value,
    set: SyncSettings,
) {
    while let Some(job) = queue.recv().await {
        match job {
            Job::Sync { gateway_id, permanent } => {
                dispatcher.status.update(|s| s.state = LinkPhase::Syncing);
                let started = Instant::now();
                let synced = dispatcher.sync(&gateway_id, &manifest, set).await;
                dispatcher.status.metrics().synced(started.elapsed());
                match synced {
                    Ok(report) => {
                        let shown = serde_json::to_value(&report)
                            .inspect_err(|e| warn!(error = %e, "cannot show the sync report"))
                            .ok();
                        dispatcher.status.update(|s| {
                            if s.state == LinkPhase::Syncing {
                                s.state = LinkPhase::Connected;
                            }
                            s.last_sync = shown;
                        })
                    }
                    Err(p) => {
                        let _ = permanent.send(p.0);
                    }
                }
            }
            Job::Event { text, out } => {
                let (_, ack) = dispatcher.handle(&text).await;
                if let Some(ack) = ack
                    && out.send(Message::text(ack.frame())).is_ok()
                {
                    dispatcher.status.count(Counter::AckSent);
                }
            }
        }
    }
}

async fn run(ctx: Ctx, mut stop: watch::Receiver<bool>) {
    let mut delay = ctx.cp.reconnect_initial;
    loop {
        if *stop.borrow() {
            break;
        }
        ctx.status.update(|s| s.state = LinkPhase::Connecting);
        match connect_once(&ctx, &mut stop).await {
            Ended::Stop => break,
            Ended::Permanent(why) => {
                error!(reason = %why, "control-plane link stopped for good; serving what is already deployed");
                ctx.status.update(|s| {
                    s.state = LinkPhase::Stopped;
                    s.stopped_reason = Some(why);
                    s.gateway_id = None;
                    s.connection_id = None;
                });
                break;
            }
            Ended::Lost { connected, why } => {
                if connected {
                    delay = ctx.cp.reconnect_initial;
                }
                let wait = jitter(delay);
                warn!(reason = %why, retry_in_ms = wait.as_millis() as u64, "control-plane link down");
                ctx.status.update(|s| {
                    s.state = LinkPhase::Waiting;
                    s.last_error = Some(why);
                    s.connection_id = None;
                });
                delay = (delay * 2).min(ctx.cp.reconnect_max);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
    }
}

/// One connection: open it, wait for `connection.ack`, queue a sync, then pass events to the
/// worker until the link ends.
async fn connect_once(ctx: &Ctx, stop: &mut watch::Receiver<bool>) -> Ended {
    if let Some(path) = ctx.client.well_known().await {
        warn!(gateway_path = %path, "the control plane is an on-prem API Manager; Tollgate speaks the platform-api protocol only");
    }
    let ws = match open(ctx, stop).await {
        Ok(ws) => ws,
        Err(ended) => return ended,
    };
    let (sink, mut stream) = ws.split();
    let (gateway_id, connection_id) = match connection_ack(&mut stream).await {
        Ok(ids) => ids,
        Err(ended) => return ended,
    };
    info!(%gateway_id, %connection_id, "connected to the control plane");
    ctx.status.update(|s| {
        s.state = LinkPhase::Connected;
        s.gateway_id = Some(gateway_id.clone());
        s.connection_id = Some(connection_id.clone());
        s.connected_at = Some(clock::rfc3339_now());
        s.connections += 1;
    });
    let (out, writer) = spawn_writer(sink);
    let (perm_tx, perm_rx) = oneshot::channel();
    let _ = ctx.jobs.send(Job::Sync {
        gateway_id,
        permanent: perm_tx,
    });
    let ended = pump(ctx, stream, &out, perm_rx, stop).await;
    drop(out);
    if matches!(ended, Ended::Lost { .. }) {
        writer.abort();
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    }
    ended
}

/// The WebSocket upgrade with the gateway token.
async fn open(ctx: &Ctx, stop: &mut watch::Receiver<bool>) -> Result<Socket, Ended> {
    let lost = |why: String| Ended::Lost { connected: false, why };
    let url = format!("wss://{}/api/internal/v1/ws/gateways/connect", ctx.cp.host);
    let mut req = url
        .into_client_request()
        .map_err(|e| Ended::Permanent(format!("bad control-plane URL: {e}")))?;
    let mut token = HeaderValue::from_str(ctx.cp.token.expose())
        .map_err(|_| Ended::Permanent("the gateway token is not a valid header value".into()))?;
    token.set_sensitive(true);
    req.headers_mut().insert("api-key", token);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let connector = Connector::Rustls(ctx.tls.clone());
    let connecting = connect_async_tls_with_config(req, Some(config), false, Some(connector));
    tokio::select! {
        r = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => match r {
            Err(_) => Err(lost("WebSocket upgrade timed out".into())),
            Ok(Err(WsError::Http(resp))) => {
                let code = resp.status().as_u16();
                let body = resp.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().to_string();
                let why = format!("WebSocket upgrade refused with HTTP {code}: {}", body.trim());
                Err(if super::is_permanent(code) { Ended::Permanent(why) } else { lost(why) })
            }
            Ok(Err(e)) => Err(lost(format!("WebSocket connect failed: {e}"))),
            Ok(Ok((ws, _))) => Ok(ws),
        },
        _ = stop.wait_for(|s| *s) => Err(Ended::Stop),
    }
}

/// The first frame must be `connection.ack` (within 5 s); its gateway and connection ids.
async fn connection_ack(stream: &mut SplitStream<Socket>) -> Result<(String, String), Ended> {
    let lost = |why: String| Ended::Lost { connected: false, why };
    let first = tokio::time::timeout(ACK_TIMEOUT, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => return Err(lost(format!("unexpected first frame {other:?}"))),
                Some(Err(e)) => return Err(lost(e.to_string())),
                None => return Err(lost("closed before connection.ack".into())),
            }
        }
    })
    .await
    .map_err(|_| lost("no connection.ack within 5 s".into()))??;
    let ack: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
    if ack.get("type").and_then(Value::as_str) != Some("connection.ack") {
        let msg = ack.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(lost(format!(
            "expected connection.ack, got {:?} {msg}",
            ack.get("type")
        )));
    }
    let field = |name: &str| ack.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    Ok((field("gatewayId"), field("connectionId")))
}

/// Outgoing frames (acks, close) go through one writer task.
fn spawn_writer(mut sink: SplitSink<Socket, Message>) -> (mpsc::UnboundedSender<Message>, JoinHandle<()>) {
    let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(m) = outgoing.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    (out, writer)
}

/// Passes incoming events to the worker until the link drops, goes silent, the sync says stop
/// for good, or the controller stops.
async fn pump(
    ctx: &Ctx,
    mut stream: SplitStream<Socket>,
    out: &mpsc::UnboundedSender<Message>,
    mut perm_rx: oneshot::Receiver<String>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let mut last_ping = Instant::now();
    let mut sync_done = false;
    loop {
        let deadline = last_ping + ctx.cp.ping_timeout;
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let _ = ctx.jobs.send(Job::Event { text: t.to_string(), out: out.clone() });
                }
                Some(Ok(Message::Ping(_))) => last_ping = Instant::now(),
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map(|f| format!("closed by the platform API ({} {})", u16::from(f.code), f.reason))
                        .unwrap_or_else(|| "closed by the platform API".into());
                    return Ended::Lost { connected: true, why };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ended::Lost { connected: true, why: format!("WebSocket error: {e}") },
                None => return Ended::Lost { connected: true, why: "connection dropped".into() },
            },
            _ = tokio::time::sleep_until(deadline) => {
                return Ended::Lost { connected: true, why: format!("no ping for {} s", ctx.cp.ping_timeout.as_secs()) };
            }
            why = &mut perm_rx, if !sync_done => {
                sync_done = true;
                if let Ok(why) = why {
                    let _ = out.send(Message::Close(None));
                    return Ended::Permanent(why);
                }
            }
            _ = stop.wait_for(|s| *s) => {
                let _ = out.send(Message::Close(None));
                return Ended::Stop;
            }
        }
    }
}

/// `base` ± 25 %.
fn jitter(base: Duration) -> Duration {
    let mut b = [0u8; 4];
    let r = if SystemRandom::new().fill(&mut b).is_ok() {
        u32::from_le_bytes(b) as f64 / u32::MAX as f64
    } else {
        0.5
    };
    base.mul_f64(0.75 + 0.5 * r)
}

#[cfg(test)]
mod tests;
