//! The gRPC services: ADS (SotW and delta) and the per-type CDS/EDS/LDS/RDS services, one stream
//! task each, all reading the shared [`Store`].

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tollgate_proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tollgate_proto::wire::{DeltaResponse, SotwResponse};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Status, Streaming};
use tracing::{Instrument, info, info_span, warn};

mod limits;
mod stream;

pub use limits::Limits;

use crate::{Error, Flavour, StatusRegistry, Store, TypeKind};
use limits::OpenStreams;
use stream::{Incoming, Outbound, Refusals, Stream};

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
    limits: Limits,
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
    limits: Limits,
    open: Arc<OpenStreams>,
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

// === impl XdsServer ===

impl XdsServer {
    /// A server over `store`, reporting into `status`.
    pub fn new(store: Arc<Store>, status: Arc<StatusRegistry>) -> Self {
        XdsServer {
            store,
            status,
            rules: Default::default(),
            tls: None,
            limits: Limits::default(),
        }
    }

    /// Serves over TLS (with a client CA in `tls`: mutual TLS, every client presents a certificate
    /// it signed).
    pub fn with_tls(mut self, tls: tonic::transport::ServerTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Serves within `limits` instead of [`Limits::default`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
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
            limits: self.limits.clone(),
            open: Arc::new(OpenStreams::default()),
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
            // A client that ignores this is reset by HTTP/2; one that keeps to it and still opens
            // more than the per-connection limit gets RESOURCE_EXHAUSTED from us.
            .max_concurrent_streams(u32::try_from(self.limits.max_streams_per_connection.saturating_mul(2)).ok())
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
            let max = inner.limits.max_message_bytes;
            let res = if method == M::SOTW {
                let m = Method::<DiscoveryRequest, SotwResponse>::new(inner, Flavour::Sotw, M::ONLY);
                grpc::<DiscoveryRequest, SotwResponse>(max).streaming(m, req).await
            } else if method == M::DELTA {
                let m = Method::<DeltaDiscoveryRequest, DeltaResponse>::new(inner, Flavour::Delta, M::ONLY);
                grpc::<DeltaDiscoveryRequest, DeltaResponse>(max)
                    .streaming(m, req)
                    .await
            } else {
                Status::unimplemented(format!("no method {method}")).into_http()
            };
            Ok(res)
        })
    }
}

fn grpc<R: Incoming, O: Outbound>(max_decode: usize) -> Grpc<tonic_prost::ProstCodec<O, R>> {
    Grpc::new(tonic_prost::ProstCodec::default()).apply_max_message_size_config(Some(max_decode), None)
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
        let slot = match self.inner.open.admit(request.remote_addr(), &self.inner.limits) {
            Ok(slot) => slot,
            Err(refused) => {
                warn!(peer = ?request.remote_addr(), %refused, "xds stream refused");
                return std::future::ready(Err(refused));
            }
        };
        let metadata = request.metadata();
        let refusals: Refusals = self
            .inner
            .rules
            .each_ref()
            .map(|rule| rule.as_ref().and_then(|r| r.check(metadata).err()));
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let id = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        let span = info_span!("xds_stream", id, flavour = ?self.flavour, only = self.only.map(TypeKind::short));
        let stream = Stream {
            slot,
            inner: self.inner.clone(),
            tx,
            flavour: self.flavour,
            only: self.only,
            id,
            refusals,
        };
        tokio::spawn(stream.drive(request.into_inner()).instrument(span));
        std::future::ready(Ok(tonic::Response::new(ReceiverStream::new(rx))))
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
