//! The gRPC side of `envoy.service.auth.v3.Authorization/Check`, without decoding messages.
//!
//! The generated server would decode every `CheckRequest` into maps of owned strings and clone a
//! `CheckResponse` to answer. Here the codec hands the request's bytes, in place, to
//! [`AuthzService::respond`] and writes the encoded answer it returns; a refusal is the shared
//! pre-encoded 401, so the decision and its answer allocate nothing on the deny path.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::{AuthzService, SharedIndex, unix_now};

/// The service's full name.
pub const SERVICE: &str = "envoy.service.auth.v3.Authorization";
/// The path of its one method.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// A tower service answering `Check`, for `tonic::transport::Server::add_service`.
#[derive(Clone, Debug)]
pub struct AuthzServer {
    authz: Arc<AuthzService>,
}

impl AuthzServer {
    /// Keys only (see [`AuthzService::new`]).
    pub fn new(index: Arc<SharedIndex>) -> Self {
        AuthzServer::from_service(AuthzService::new(index))
    }

    /// Serves `authz` (e.g. [`AuthzService::with_subscriptions`] with its header names).
    pub fn from_service(authz: AuthzService) -> Self {
        AuthzServer { authz: Arc::new(authz) }
    }
}

impl NamedService for AuthzServer {
    const NAME: &'static str = SERVICE;
}

impl<B> Service<http::Request<B>> for AuthzServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != CHECK_PATH {
            return Box::pin(ready(Ok(Status::unimplemented("").into_http())));
        }
        let codec = CheckCodec {
            authz: Arc::clone(&self.authz),
        };
        Box::pin(async move { Ok(Grpc::new(codec).unary(Answer, req).await) })
    }
}

/// The unary handler: the decoder already produced the answer.
struct Answer;

impl UnaryService<Bytes> for Answer {
    type Response = Bytes;
    type Future = Ready<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        ready(Ok(Response::new(request.into_inner())))
    }
}

/// Decodes a request into its encoded answer; encodes by copying those bytes.
struct CheckCodec {
    authz: Arc<AuthzService>,
}

impl Codec for CheckCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Copying;
    type Decoder = Deciding;

    fn encoder(&mut self) -> Copying {
        Copying
    }

    fn decoder(&mut self) -> Deciding {
        Deciding {
            authz: Arc::clone(&self.authz),
        }
    }
}

struct Copying;

impl Encoder for Copying {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

struct Deciding {
    authz: Arc<AuthzService>,
}

impl Decoder for Deciding {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        let now = unix_now();
        // The frame is one contiguous buffer in practice; copy only if it ever is not.
        let answer = match src.chunk().get(..len) {
            Some(msg) => self.authz.respond(msg, now),
            None => self.authz.respond(&src.copy_to_bytes(len), now),
        };
        src.advance(src.remaining());
        Ok(Some(answer))
    }
}
