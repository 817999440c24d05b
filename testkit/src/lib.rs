//! Test support shared by Tollgate's integration tests: start the real pinned Envoy on ephemeral
//! loopback ports and read its admin API ([`envoy`]), and an HTTP upstream that echoes what it
//! received ([`echo`]), and a fake of WSO2's platform-api control plane ([`platform`]), and a real redis-server for the
//! shared quota store ([`redis`]).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed set-up step should panic

pub mod echo;
pub mod envoy;
pub mod platform;
pub mod redis;
pub mod tls;

pub use echo::Echo;
pub use envoy::{Envoy, client, free_port, get, wait_for};
pub use platform::FakePlatform;
pub use redis::Redis;
