use argon2::password_hash::{PasswordHasher, SaltString};
use base64::engine::general_purpose::STANDARD;
use tollgate_proto::pb::envoy::service::auth::v3::attribute_context::HttpRequest;

use super::*;

fn line(verifier: &str, allow: bool) -> String {
    BasicLine {
        realm: "Shop API".into(),
        allow_unauthenticated: allow,
        username: "alice".into(),
        verifier: verifier.into(),
    }
    .encode()
}

/// A cheap argon2id verifier (tests only: the translator uses the defaults).
fn argon(password: &str) -> String {
    let params = argon2::Params::new(64, 1, 1, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(
            password.as_bytes(),
            &SaltString::encode_b64(b"0123456789abcdef").unwrap(),
        )
        .unwrap()
        .to_string()
}

fn http(authorization: Option<&str>) -> Vec<u8> {
    HttpRequest {
        headers: authorization
            .map(|a| ("authorization".to_string(), a.to_string()))
            .into_iter()
            .collect(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(user_pass))
}

fn refused_with(b: Basic) -> (u32, String) {
    let Basic::Refused(bytes) = b else {
        panic!("refused: {b:?}")
    };
    let r = CheckResponse::decode(bytes).unwrap();
    let Some(check_response::HttpResponse::DeniedResponse(d)) = r.http_response else {
        panic!()
    };
    let www = d
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == "www-authenticate")
        .map(|h| h.value.clone())
        .unwrap_or_default();
    (d.status.map_or(0, |s| s.code as u32), www)
}

#[test]
fn the_right_user_and_password_pass_and_anything_else_gets_401_with_the_realm() {
    for verifier in [argon("s3cret"), bcrypt::hash("s3cret", 4).unwrap()] {
        let b = BasicAuth::default();
        let l = line(&verifier, false);
        assert!(matches!(
            b.check(&l, &http(Some(&basic("alice:s3cret")))),
            Basic::Authenticated
        ));
        // Remembered: the same credential again is one lookup.
        assert!(matches!(
            b.check(&l, &http(Some(&basic("alice:s3cret")))),
            Basic::Authenticated
        ));
        assert!(matches!(
            b.check(&l, &http(Some(&basic("alice:s3cret:x")))),
            Basic::Refused(_)
        ));
        for bad in [
            Some(basic("alice:wrong")),
            Some(basic("bob:s3cret")),
            Some(basic("alice")),
            Some(format!("Bearer {}", STANDARD.encode("alice:s3cret"))),
            Some("Basic !!!".into()),
            None,
        ] {
            let got = refused_with(b.check(&l, &http(bad.as_deref())));
            assert_eq!(got, (401, "Basic realm=\"Shop API\"".into()), "{bad:?}");
        }
    }
}

#[test]
fn allow_unauthenticated_lets_failures_through_and_a_new_password_forgets_the_old() {
    let b = BasicAuth::default();
    let l = line(&argon("one"), true);
    assert!(matches!(b.check(&l, &http(None)), Basic::Anonymous));
    assert!(matches!(
        b.check(&l, &http(Some(&basic("alice:one")))),
        Basic::Authenticated
    ));
    let changed = line(&argon("two"), false);
    assert!(matches!(
        b.check(&changed, &http(Some(&basic("alice:one")))),
        Basic::Refused(_)
    ));
    assert!(matches!(b.check("garbage", &http(None)), Basic::Refused(_)));
}

#[test]
fn remembered_outcomes_stay_bounded() {
    let b = BasicAuth::default();
    let l = line(&argon("x"), false);
    // Wrong users fail before any hashing: cheap to flood with.
    for i in 0..(MAX_ENTRIES * 2) {
        let _ = b.check(&l, &http(Some(&basic(&format!("u{i}:x")))));
    }
    let held: usize = b.shards.iter().map(|s| s.lock().unwrap().len()).sum();
    assert!(held <= MAX_ENTRIES, "{held}");
}
