//! Tollgate: a gateway controller for Envoy.
//!
//! - [`config`]: the typed TOML configuration.
//! - [`model`]: the WSO2-compatible `RestApi` document, its validation and the resolved [`model::Api`].
//! - [`db`]: SQLite persistence with forward migrations.
//! - [`translate`]: pure translation of APIs into Envoy listeners, routes, clusters and endpoints.
//! - [`gateway`]: the write path (validate → persist → translate → publish).
//! - [`auth`], [`api`], [`admin`]: the management and admin REST APIs.
//! - [`platform`]: the link to a WSO2 API Platform control plane (WebSocket events, REST sync).
//! - [`keys`]: per-API keys (rules, store, index, control-plane pushes).
//! - [`replica`]: the remote ext_authz replica feature, both sides (serving, publishing, token).
//! - [`clock`]: the one clock; [`origin`]: where a stored object came from.
//! - [`envoy`]: the managed Envoy child of `tollgate run`.
//! - [`runtime`]: wiring of it all, and shutdown.

pub mod admin;
pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod envoy;
pub mod gateway;
pub mod keys;
pub mod model;
pub mod origin;
pub mod platform;
pub mod replica;
pub mod runtime;
pub mod translate;
