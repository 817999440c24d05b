//! Tollgate's own protobuf messages, canonical encoding for content hashes, and a re-export of
//! `envoy-types`.
//!
//! - [`canonical`] re-encodes any Envoy message with map entries in a stable order, so the same
//!   content always hashes to the same version (prost encodes `HashMap`s in iteration order).
//! - [`wire`] holds response messages that are wire-compatible with Envoy's discovery responses but
//!   carry pre-encoded resources as shared [`bytes::Bytes`], so one encoding serves every stream.
//! - [`keys`] is our own resource: the API keys of one API, as digests, for remote authz replicas,
//!   with its codec (set names, shards, validation).
//! - [`subs`] is the usable subscriptions of one API (token digests only, plan limits), for
//!   remote authz replicas, with its codec.
//! - [`hex`] is the one lower-case hex encoder.

pub mod canonical;
pub mod hex;
pub mod keys;
pub mod subs;
pub mod wire;

pub use envoy_types;
pub use envoy_types::pb;
