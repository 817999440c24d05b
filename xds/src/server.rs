//! The gRPC services: ADS (SotW and delta) and the per-type CDS/EDS/LDS/RDS services, one stream
//! task each, all reading the shared [`Store`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tollgate_proto::pb::envoy::config::core::v3::Node;
use tollgate_proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tollgate_proto::wire::{DeltaResponse, SotwResponse};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Status, Streaming};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::state::{Outgoing, StreamState};
use crate::store::GroupState;
use crate::{Error, Flavour, NodeStatus, StatusRegistry, Store, TypeKind};

/// Largest request we decode: a delta reconnect lists every resource it holds.
const MAX_DECODE: usize = 64 * 1024 * 1024;
/// Responses queued per stream beyond the one per type in flight.
const STREAM_QUEUE: usize = 8;

/// Who may read one resource type: the application installs it with
/// [`XdsServer::with_access_rule`]. It is asked once, when a stream opens, with the stream's
/// request metadata; a stream that is refused a type and asks for it is ended with the rule's
/// status, and its other types are unaffected until then.
pub trait AccessRule: Send + Sync + std::fmt::Debug + 'static {
    /// `Ok` when the stream may read the type, else the status that ends it.
    fn check(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status>;
}

/// Serves a [`Store`] over xDS.
#[derive(Clone, Debug)]
pub struct XdsServer {
    store: Arc<Store>,
    status: Arc<StatusRegistry>,
    rules: Rules,
    tls: Option<tonic::transport::ServerTlsConfig>,
}

/// The access rule of each type; `None`: every stream may read it.
type Rules = [Option<Arc<dyn AccessRule>>; TypeKind::COUNT];

/// A running server: its address, and the means to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<Store>,
    status: Arc<StatusRegistry>,
    rules: Rules,
    shutdown: watch::Receiver<bool>,
    next_stream: AtomicU64,
}

/// One gRPC service name and its two methods.
trait Methods: Send + Sync + 'static {
    const NAME: &'static str;
    const SOTW: &'static str;
    const DELTA: &'static str;
    const ONLY: Option<TypeKind>;
}

struct Ads;
struct Cds;
struct Eds;
struct Lds;
struct Rds;

struct Service<M> {
    inner: Arc<Inner>,
    _m: PhantomData<M>,
}

/// One method call: opens a stream task.
struct Method<R, O> {
    inner: Arc<Inner>,
    flavour: Flavour,
    only: Option<TypeKind>,
    _m: PhantomData<fn(R) -> O>,
}

/// What the stream task needs from a request of either flavour.
trait Incoming: prost::Message + Default + Send + 'static {
    fn node(&self) -> Option<&Node>;
    fn type_url(&self) -> &str;
    fn apply(self, state: &mut StreamState, kind: TypeKind, group: &GroupState);
}

/// Converts a built response to the wire type of a flavour.
trait Outbound: prost::Message + Sized + Send + 'static {
    fn from_outgoing(o: Outgoing) -> Option<Self>;
}

// === impl XdsServer ===

impl XdsServer {
    /// A server over `store`, reporting into `status`.
    pub fn new(store: Arc<Store>, status: Arc<StatusRegistry>) -> Self {
        XdsServer {
            store,
            status,
            rules: Default::default(),
            tls: None,
        }
    }

    /// Serves over TLS (with a client CA in `tls`: mutual TLS, every client presents a certificate
    /// it signed).
    pub fn with_tls(mut self, tls: tonic::transport::ServerTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Serves resources of type `kind` only on streams that `rule` lets read them (replacing an
    /// earlier rule of that type).
    pub fn with_access_rule(mut self, kind: TypeKind, rule: Arc<dyn AccessRule>) -> Self {
        self.rules[kind.index()] = Some(rule);
        self
    }

    /// Serves on `listener` until [`ServerHandle::shutdown`]; open streams end cleanly then.
    pub fn serve(self, listener: TcpListener) -> Result<ServerHandle, Error> {
        let addr = listener.local_addr().map_err(Error::Io)?;
        let (shutdown, stopped) = watch::channel(false);
        let mut stop = stopped.clone();
        let inner = Arc::new(Inner {
            store: self.store,
            status: self.status,
            rules: self.rules,
            shutdown: stopped,
            next_stream: AtomicU64::new(1),
        });
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls)?;
        }
        let router = builder
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(service::<Ads>(&inner))
            .add_service(service::<Cds>(&inner))
            .add_service(service::<Eds>(&inner))
            .add_service(service::<Lds>(&inner))
            .add_service(service::<Rds>(&inner));
        // Small xDS responses must not wait for the peer's delayed ACK (Nagle): up to 40 ms each.
        let incoming = nodelay_incoming(listener);
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .map_err(Error::from)
        });
        info!(%addr, "xds server listening");
        Ok(ServerHandle {
            addr,
            shutdown: Arc::new(shutdown),
            task,
        })
    }
}

fn service<M: Methods>(inner: &Arc<Inner>) -> Service<M> {
    Service {
        inner: inner.clone(),
        _m: PhantomData,
    }
}

// === impl ServerHandle ===

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends every stream and stops the server, waiting at most `grace` for connections to close.
    pub async fn shutdown(self, grace: Duration) -> Result<(), Error> {
        self.shutdown.send_replace(true);
        match tokio::time::timeout(grace, self.task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => {
                warn!(error = %join, "xds server task failed");
                Ok(())
            }
            Err(_) => {
                warn!("xds server did not stop within the grace period");
                Ok(())
            }
        }
    }
}

// === impl Methods ===

impl Methods for Ads {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
    const SOTW: &'static str = "StreamAggregatedResources";
    const DELTA: &'static str = "DeltaAggregatedResources";
    const ONLY: Option<TypeKind> = None;
}
impl Methods for Cds {
    const NAME: &'static str = "envoy.service.cluster.v3.ClusterDiscoveryService";
    const SOTW: &'static str = "StreamClusters";
    const DELTA: &'static str = "DeltaClusters";
    const ONLY: Option<TypeKind> = Some(TypeKind::Cluster);
}
impl Methods for Eds {
    const NAME: &'static str = "envoy.service.endpoint.v3.EndpointDiscoveryService";
    const SOTW: &'static str = "StreamEndpoints";
    const DELTA: &'static str = "DeltaEndpoints";
    const ONLY: Option<TypeKind> = Some(TypeKind::Endpoint);
}
impl Methods for Lds {
    const NAME: &'static str = "envoy.service.listener.v3.ListenerDiscoveryService";
    const SOTW: &'static str = "StreamListeners";
    const DELTA: &'static str = "DeltaListeners";
    const ONLY: Option<TypeKind> = Some(TypeKind::Listener);
}
impl Methods for Rds {
    const NAME: &'static str = "envoy.service.route.v3.RouteDiscoveryService";
    const SOTW: &'static str = "StreamRoutes";
    const DELTA: &'static str = "DeltaRoutes";
    const ONLY: Option<TypeKind> = Some(TypeKind::Route);
}

// === impl Service ===

impl<M> Clone for Service<M> {
    fn clone(&self) -> Self {
        Service {
            inner: self.inner.clone(),
            _m: PhantomData,
        }
    }
}

impl<M: Methods> NamedService for Service<M> {
    const NAME: &'static str = M::NAME;
}

impl<M, B> tower_service::Service<http::Request<B>> for Service<M>
where
    M: Methods,
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().rsplit('/').next().unwrap_or_default().to_string();
        let inner = self.inner.clone();
        Box::pin(async move {
            let res = if method == M::SOTW {
                let m = Method::<DiscoveryRequest, SotwResponse>::new(inner, Flavour::Sotw, M::ONLY);
                grpc::<DiscoveryRequest, SotwResponse>().streaming(m, req).await
            } else if method == M::DELTA {
                let m = Method::<DeltaDiscoveryRequest, DeltaResponse>::new(inner, Flavour::Delta, M::ONLY);
                grpc::<DeltaDiscoveryRequest, DeltaResponse>().streaming(m, req).await
            } else {
                Status::unimplemented(format!("no method {method}")).into_http()
            };
            Ok(res)
        })
    }
}

fn grpc<R: Incoming, O: Outbound>() -> Grpc<tonic_prost::ProstCodec<O, R>> {
    Grpc::new(tonic_prost::ProstCodec::default()).apply_max_message_size_config(Some(MAX_DECODE), None)
}

// === impl Method ===

impl<R, O> Method<R, O> {
    fn new(inner: Arc<Inner>, flavour: Flavour, only: Option<TypeKind>) -> Self {
        Method {
            inner,
            flavour,
            only,
            _m: PhantomData,
        }
    }
}

impl<R: Incoming, O: Outbound> StreamingService<R> for Method<R, O> {
    type Response = O;
    type ResponseStream = ReceiverStream<Result<O, Status>>;
    type Future = std::future::Ready<Result<tonic::Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: tonic::Request<Streaming<R>>) -> Self::Future {
        let metadata = request.metadata();
        let refusals: Refusals = self
            .inner
            .rules
            .each_ref()
            .map(|rule| rule.as_ref().and_then(|r| r.check(metadata).err()));
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let id = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        let span = info_span!("xds_stream", id, flavour = ?self.flavour, only = self.only.map(TypeKind::short));
        let task = drive(
            self.inner.clone(),
            request.into_inner(),
            tx,
            self.flavour,
            self.only,
            id,
            refusals,
        );
        tokio::spawn(task.instrument(span));
        std::future::ready(Ok(tonic::Response::new(ReceiverStream::new(rx))))
    }
}

/// Per type, the status that ends the stream if it asks for that type (from the access rules).
type Refusals = [Option<Status>; TypeKind::COUNT];

/// Runs one stream until the client goes away or the server shuts down.
async fn drive<R: Incoming, O: Outbound>(
    inner: Arc<Inner>,
    mut inbound: Streaming<R>,
    tx: mpsc::Sender<Result<O, Status>>,
    flavour: Flavour,
    only: Option<TypeKind>,
    id: u64,
    mut refusals: Refusals,
) {
    let mut shutdown = inner.shutdown.clone();
    let first = tokio::select! {
        m = inbound.message() => m,
        _ = shutdown.wait_for(|s| *s) => return,
    };
    let Ok(Some(first)) = first else { return };
    let node = first.node().cloned().unwrap_or_default();
    let group = inner.store.resolve(&node.cluster);
    let mut changed = group.subscribe();
    let mut state = StreamState::new(flavour, only.is_none());
    info!(node = %node.id, cluster = %node.cluster, group = group.name(), "stream opened");
    inner.status.put(NodeStatus {
        stream_id: id,
        node_id: node.id.clone(),
        node_cluster: node.cluster.clone(),
        group: group.name().to_string(),
        flavour,
        only,
        connected_at: SystemTime::now(),
        types: Default::default(),
    });
    let kinds: Vec<TypeKind> = match only {
        Some(k) => vec![k],
        None => TypeKind::ALL.to_vec(),
    };
    let mut next = Some(first);
    'stream: loop {
        if let Some(req) = next.take() {
            let kind = only.or_else(|| TypeKind::from_type_url(req.type_url()));
            if let Some(refusal) = kind.and_then(|k| refusals[k.index()].take()) {
                warn!(node = %node.id, type_url = req.type_url(), "refused by the type's access rule: stream ended");
                let _ = tx.send(Err(refusal)).await;
                break 'stream;
            }
            match kind {
                Some(kind) => req.apply(&mut state, kind, &group.read()),
                None => debug!(type_url = req.type_url(), "ignoring request for a type we do not serve"),
            }
        }
        let (out, reports) = {
            let g = group.read();
            let out: Vec<Outgoing> = kinds.iter().filter_map(|k| state.next_response(*k, &g)).collect();
            (out, TypeKind::ALL.map(|k| state.report(k, &g)))
        };
        for o in out {
            let Some(msg) = O::from_outgoing(o) else { continue };
            if tx.send(Ok(msg)).await.is_err() {
                break 'stream;
            }
        }
        inner.status.update(id, reports);
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            m = inbound.message() => match m {
                Ok(Some(r)) => next = Some(r),
                Ok(None) => break,
                Err(status) => {
                    debug!(%status, "stream error");
                    break;
                }
            },
            r = changed.changed() => if r.is_err() { break },
        }
    }
    inner.status.remove(id);
    info!(node = %node.id, "stream closed");
}

// === impl Incoming ===

impl Incoming for DiscoveryRequest {
    fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    fn type_url(&self) -> &str {
        &self.type_url
    }

    fn apply(self, state: &mut StreamState, kind: TypeKind, group: &GroupState) {
        let error = self.error_detail.map(|e| e.message);
        state.on_sotw_request(
            kind,
            self.resource_names,
            &self.version_info,
            &self.response_nonce,
            error,
            group,
        );
    }
}

impl Incoming for DeltaDiscoveryRequest {
    fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    fn type_url(&self) -> &str {
        &self.type_url
    }

    fn apply(self, state: &mut StreamState, kind: TypeKind, group: &GroupState) {
        let error = self.error_detail.map(|e| e.message);
        let initial: HashMap<String, String> = self.initial_resource_versions;
        state.on_delta_request(
            kind,
            self.resource_names_subscribe,
            self.resource_names_unsubscribe,
            initial,
            &self.response_nonce,
            error,
            group,
        );
    }
}

// === impl Outbound ===

impl Outbound for SotwResponse {
    fn from_outgoing(o: Outgoing) -> Option<Self> {
        match o {
            Outgoing::Sotw(m) => Some(m),
            Outgoing::Delta(_) => None,
        }
    }
}

impl Outbound for DeltaResponse {
    fn from_outgoing(o: Outgoing) -> Option<Self> {
        match o {
            Outgoing::Delta(m) => Some(m),
            Outgoing::Sotw(_) => None,
        }
    }
}

/// The connections `listener` accepts, with TCP_NODELAY set: for gRPC servers whose small answers
/// must not wait for the peer's delayed ACK.
pub fn nodelay_incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send + 'static {
    tokio_stream::StreamExt::map(TcpListenerStream::new(listener), |conn| {
        if let Ok(c) = &conn {
            let _ = c.set_nodelay(true);
        }
        conn
    })
}
