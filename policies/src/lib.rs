//! Tollgate's policy catalogue and the ext_authz service for API keys, subscriptions and plan
//! quotas (the hot path).
//!
//! - [`catalogue`]: the policies documents may name, with their parameter schemas; no I/O and no
//!   protobuf, so the API model can depend on it.
//! - [`authz`] (feature `authz`, on by default): the gRPC `Check` service, its key index, its
//!   subscription index and quota counters. It runs on its own threads and never touches SQLite,
//!   REST or xDS; the controller feeds it.
//! - [`regex`]: regular expressions as Envoy's RE2 judges them, for every regex a document gives.
//! - [`ctx`]: the per-route facts the translator puts in routes and the service reads back.

#[cfg(feature = "authz")]
pub mod authz;
pub mod catalogue;
pub mod regex;

#[cfg(feature = "authz")]
pub use authz::{AuthzServer, AuthzService};
pub use catalogue::Catalogue;

/// The namespace of the request headers ext_authz adds for the upstream by default
/// (`x-tollgate-key-name`, `x-tollgate-application`, `x-tollgate-subscription`): the listeners
/// remove every header in it that a client sends.
pub const IDENTITY_HEADER_PREFIX: &str = "x-tollgate-";

/// The `context_extensions` keys a protected route carries: [`API`](ctx::API) always, the key
/// facts when it has `api-key-auth`, the subscription facts when it has `subscription-validation`.
pub mod ctx {
    /// The API the route belongs to.
    pub const API: &str = "tollgate.api";
    /// Where the key is: `header` or `query` (absent: no key check).
    pub const KEY_IN: &str = "tollgate.key_in";
    /// The header (lower-case) or query parameter name (absent: no key check).
    pub const KEY_NAME: &str = "tollgate.key_name";
    /// `true` to remove the key before the request goes upstream.
    pub const STRIP: &str = "tollgate.strip";
    /// `true` when the route validates subscriptions.
    pub const SUB: &str = "tollgate.sub";
    /// The header (lower-case) carrying the subscription token.
    pub const SUB_HEADER: &str = "tollgate.sub_header";
    /// The cookie carrying the subscription token, when one is configured.
    pub const SUB_COOKIE: &str = "tollgate.sub_cookie";
    /// The route's rate-limit quota lines (`catalogue::ratelimit`), when it has such policies.
    pub const RATE_LIMIT: &str = "tollgate.rl";
    /// The route's basic-auth line (`catalogue::basic_auth`), when it has that policy.
    pub const BASIC: &str = "tollgate.basic";
    /// The route's method and in-place query rewrites (`catalogue::mediation::service`).
    pub const REWRITE: &str = "tollgate.rw";
}
