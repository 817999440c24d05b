//! `basic-auth` on the hot path: the presented `Authorization: Basic` credential checked against
//! the route's verifier, a PHC string (argon2id or bcrypt, deliberately slow), never a fast hash.
//!
//! A verification costs milliseconds, so each outcome is remembered under the SHA-256 of the
//! verifier and the presented header: a client sending the same credential again costs one digest
//! and one lookup, and a changed password (a new verifier) never matches an old entry. The memory
//! is bounded (about [`MAX_ENTRIES`]): a full shard is emptied, so a flood of distinct
//! credentials costs CPU (each one verified once) but no memory.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine;
use bytes::Bytes;
use prost::Message;
use ring::digest::{Context, SHA256};
use tollgate_proto::pb::envoy::service::auth::v3::{CheckResponse, DeniedHttpResponse, check_response};
use tollgate_proto::pb::envoy::r#type::v3::HttpStatus;
use tollgate_proto::pb::google::rpc::Status as RpcStatus;

use super::answer::header;
use super::index::{Digest, DigestHasher};
use super::wire;
use crate::catalogue::basic_auth::BasicLine;

/// About how many outcomes are remembered.
pub const MAX_ENTRIES: usize = 16_384;
const SHARDS: usize = 16;
/// The 401 body.
pub const BASIC_BODY: &str = "{\"error\":\"Unauthorized\",\"message\":\"Valid credentials required\"}";

/// The remembered outcomes, by SHA-256 of verifier and presented header.
#[derive(Debug)]
pub struct BasicAuth {
    shards: Box<[Mutex<Outcomes>]>,
}

/// One shard: whether each (verifier, credential) opened.
type Outcomes = HashMap<Digest, bool, BuildHasherDefault<DigestHasher>>;

/// What a basic-auth check found.
#[derive(Debug)]
pub enum Basic {
    /// The configured user, with the right password.
    Authenticated,
    /// No or wrong credentials, let through (`allowUnauthenticated`).
    Anonymous,
    /// No or wrong credentials: the encoded 401 with `WWW-Authenticate`.
    Refused(Bytes),
}

impl Default for BasicAuth {
    fn default() -> Self {
        BasicAuth {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl BasicAuth {
    /// Checks the request (`http`, the encoded `HttpRequest`) against the route's line.
    pub fn check(&self, line: &str, http: &[u8]) -> Basic {
        let Some(line) = BasicLine::parse(line) else {
            return Basic::Refused(refusal("Restricted"));
        };
        let presented = wire::header(http, b"authorization").map(<[u8]>::trim_ascii);
        let ok = presented.is_some_and(|p| self.verified(&line, p));
        match (ok, line.allow_unauthenticated) {
            (true, _) => Basic::Authenticated,
            (false, true) => Basic::Anonymous,
            (false, false) => Basic::Refused(refusal(&line.realm)),
        }
    }

    /// Whether `presented` (the whole header value) opens `line`: remembered, or verified now.
    fn verified(&self, line: &BasicLine, presented: &[u8]) -> bool {
        let mut c = Context::new(&SHA256);
        c.update(line.verifier.as_bytes());
        c.update(&[0]);
        c.update(presented);
        let mut key = [0u8; 32];
        key.copy_from_slice(c.finish().as_ref());
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        if let Some(&ok) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return ok;
        }
        // Verified without the lock: it takes milliseconds.
        let ok = verify(line, presented);
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES / SHARDS {
            map.clear();
        }
        map.insert(key, ok);
        ok
    }
}

/// `Basic <base64(user:password)>` against the line's user and verifier.
fn verify(line: &BasicLine, presented: &[u8]) -> bool {
    let Some((scheme, encoded)) = presented.split_at_checked(6) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    if user != line.username.as_bytes() {
        return false;
    }
    let v = line.verifier.as_str();
    if v.starts_with("$2") {
        return std::str::from_utf8(password).is_ok_and(|p| bcrypt::verify(p, v).unwrap_or(false));
    }
    match PasswordHash::new(v) {
        Ok(h) => argon2::Argon2::default().verify_password(password, &h).is_ok(),
        Err(_) => false,
    }
}

/// 401 with `WWW-Authenticate: Basic realm="…"`, gRPC status UNAUTHENTICATED.
fn refusal(realm: &str) -> Bytes {
    let r = CheckResponse {
        status: Some(RpcStatus {
            code: 16,
            ..Default::default()
        }),
        http_response: Some(check_response::HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: 401 }),
            headers: vec![
                header("content-type", "application/json"),
                header("www-authenticate", &format!("Basic realm=\"{realm}\"")),
            ],
            body: BASIC_BODY.into(),
        })),
        ..Default::default()
    };
    Bytes::from(r.encode_to_vec())
}

#[cfg(test)]
mod tests;
