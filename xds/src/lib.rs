//! The xDS protocol server: a store of typed, pre-encoded, content-versioned resources per gateway
//! group, served to Envoy over ADS (SotW and delta) and the per-type SotW and delta services.
//!
//! - [`Store`] holds resources per group; [`Store::publish`] applies an [`Update`] atomically and
//!   wakes the group's streams.
//! - [`Resource`] is one resource encoded once (as an `Any` and as a delta `Resource`), versioned by
//!   a canonical content hash, with the [`Dep`]s Envoy must hold before it (make-before-break).
//! - [`XdsServer`] serves the store; [`StatusRegistry`] tells callers, per connected node and type,
//!   what Envoy ACKed and the last NACK.
//!
//! This crate knows nothing about APIs: the controller translates its model into resources.
//!
//! Feature `server` (default) brings the gRPC server and per-stream state; without it the crate is
//! the store alone, whose stream-facing parts are then unused.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

#[cfg(feature = "fixtures")]
pub mod fixtures;
mod kind;
mod resource;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod state;
#[cfg(feature = "server")]
mod status;
mod store;

pub use kind::{TypeKind, XdsMessage};
pub use resource::{Dep, Resource};
#[cfg(feature = "server")]
pub use server::{REPLICA_TOKEN_HEADER, ServerHandle, XdsServer, nodelay_incoming};
#[cfg(feature = "server")]
pub use state::{Flavour, Nack, TypeReport};
#[cfg(feature = "server")]
pub use status::{NodeStatus, StatusRegistry};
pub use store::{DEFAULT_GROUP, Group, Store, Update};

/// Errors of the xDS crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource could not be canonically encoded (its encoding is malformed).
    #[error("resource {name:?} could not be encoded canonically")]
    Encode {
        /// The resource name.
        name: String,
    },
    /// The listening socket failed.
    #[error("xds listener: {0}")]
    Io(#[source] std::io::Error),
    /// The gRPC server failed to bind or serve.
    #[error("xds server: {0}")]
    Transport(#[from] tonic::transport::Error),
}
