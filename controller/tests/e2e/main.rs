//! End-to-end tests: the controller in-process, the real pinned Envoy, and an echo upstream.
//! They reproduce the WSO2 gateway integration scenarios (reference §8) in our own code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed set-up step should panic

mod access_log;
mod admin;
mod basic_auth;
mod bypass;
mod cli;
mod config_env;
mod cors;
mod deploy;
mod grpc_tls;
mod hostile;
mod https;
mod isolation;
mod jwt;
mod keys;
mod managed_envoy;
mod management;
mod mediation;
mod metrics;
mod platform;
mod platform_subs;
mod quota_shared;
mod ratelimit;
mod replica;
mod replica_subs;
mod routing;
mod secrets;
mod stack;
mod subscriptions;
mod survival;
mod tls;

/// A minimal RestApi document with the given context and operations, upstream `url`.
pub fn api_yaml(name: &str, context: &str, url: &str, operations: &str) -> String {
    format!(
        "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata:\n  name: {name}\nspec:\n  displayName: {name}\n  version: v1.0\n  context: {context}\n  upstream:\n    main:\n      url: {url}\n  operations:\n{operations}"
    )
}
