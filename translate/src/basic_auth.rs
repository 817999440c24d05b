//! `basic-auth` on a route: the line the ext_authz service checks (`tollgate.basic`, see
//! `tollgate_policies::catalogue::basic_auth`). The operation's policy wins over the API's, as
//! for `api-key-auth`. A plaintext password never reaches Envoy: it becomes an argon2id PHC
//! string, with a salt derived from the API and user so the same document always translates to
//! the same route (an unchanged route is never pushed again). Hashing takes milliseconds, so the
//! verifiers made are remembered (bounded) across translations.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use argon2::password_hash::{PasswordHasher, SaltString};
use ring::digest::{Context, SHA256};
use tollgate_model::Api;
use tollgate_policies::catalogue::basic_auth::{BasicLine, DEFAULT_REALM, is_phc};

/// Verifiers remembered, at most.
const MEMO_MAX: usize = 1024;

/// The basic-auth line of operation `i` of `api`; `None` when it has none (or, never for a
/// validated document, when its password cannot be hashed).
pub fn route_basic_auth(api: &Api, i: usize) -> Option<String> {
    let p = &api.policies_of(i).filter(|p| p.name == "basic-auth").last()?.params;
    let text = |k: &str| p.get(k).and_then(|v| v.as_str());
    let (username, password) = (text("username")?, text("password")?);
    let verifier = if is_phc(password) {
        password.to_string()
    } else {
        hashed(&api.handle, username, password)?
    };
    let line = BasicLine {
        realm: text("realm").unwrap_or(DEFAULT_REALM).to_string(),
        allow_unauthenticated: p.get("allowUnauthenticated").and_then(|v| v.as_bool()) == Some(true),
        username: username.to_string(),
        verifier,
    };
    Some(line.encode())
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut c = Context::new(&SHA256);
    for p in parts {
        c.update(p.as_bytes());
        c.update(&[0]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

/// The argon2id verifier of `password` for `user` of `api`, remembered.
fn hashed(api: &str, user: &str, password: &str) -> Option<String> {
    static MEMO: OnceLock<Mutex<HashMap<[u8; 32], String>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Mutex::default);
    let key = digest(&[api, user, password]);
    if let Some(v) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Some(v.clone());
    }
    let salt_bytes = digest(&["tollgate basic-auth salt", api, user]);
    let salt = SaltString::encode_b64(&salt_bytes[..16]).ok()?;
    let verifier = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .ok()?
        .to_string();
    let mut memo = memo.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= MEMO_MAX {
        memo.clear();
    }
    memo.insert(key, verifier.clone());
    Some(verifier)
}

#[cfg(test)]
mod tests;
