//! Tollgate: a gateway controller for Envoy. This crate is the application: storage, the write paths,
//! the REST and admin APIs, keys, the platform link and the wiring. The API model and its validation
//! (`tollgate-model`), the translation to Envoy resources (`tollgate-translate`), the xDS server
//! (`tollgate-xds`) and the ext_authz service (`tollgate-policies`) are crates of their own.
//!
//! - [`config`]: the typed TOML configuration.
//! - [`db`]: SQLite persistence with forward migrations.
//! - [`app`]: the application layer, the one owner of every write path (validate → persist →
//!   translate → publish), and the API repository.
//! - [`origin`], [`clock`]: where a stored thing came from; the one clock.
//! - [`auth`], [`api`], [`admin`]: the management and admin REST APIs; [`openapi`]: their OpenAPI
//!   document, generated from the handlers.
//! - [`platform`]: the link to a WSO2 API Platform control plane (WebSocket events, REST sync).
//! - [`keys`]: per-API keys (rules, store, index, control-plane pushes).
//! - [`replica`]: the remote ext_authz replica feature, both sides (serving, publishing, token).
//! - [`managed_envoy`]: the managed Envoy of `tollgate run`, which outlives the controller.
//! - [`runtime`]: wiring of it all, and shutdown.
//! - [`cli`]: the `tollgate` command line, its commands and exit codes.
//! - [`secret`]: random secrets and owner-only files (admin password, replica token).
//! - [`secrets`]: the secrets API documents reference (`{{ secret "id" }}`), sealed at rest, and
//!   the templates that render them into documents at deploy time.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod https;
pub mod keys;
pub mod managed_envoy;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod platform;
pub mod replica;
pub mod request_log;
pub mod runtime;
pub mod secret;
pub mod secrets;
pub mod subs;
