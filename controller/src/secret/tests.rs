//! The redacting wrapper and private files.

use super::*;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-secret-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn debug_never_shows_the_value() {
    let s: Secret<String> = "hunter2".into();
    assert_eq!(format!("{s:?}"), "[redacted]");
    assert_eq!(format!("{:?}", Secret::new(String::new())), "\"\"");
    assert_eq!(s.expose(), "hunter2");
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(
        json, "\"hunter2\"",
        "serde sees the plain value (the config file holds it)"
    );
    let logged = redacting(|| serde_json::to_string(&(&s, Secret::new(String::new())))).unwrap();
    assert_eq!(logged, "[\"[redacted]\",\"\"]", "except while redacting");
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2\"", "and only then");
}

/// Issue #13: a symbolic link where a secret goes is refused; the file it points at is untouched.
#[cfg(unix)]
#[test]
fn write_private_refuses_a_symbolic_link() {
    let dir = scratch("symlink");
    let target = dir.join("elsewhere");
    std::fs::write(&target, "old\n").unwrap();
    let link = dir.join("token");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(write_private(&link, "s3cret").is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #13: an existing file readable by others is set back to 0600 when a secret is written.
#[cfg(unix)]
#[test]
fn write_private_fixes_the_mode_of_an_existing_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("mode");
    let path = dir.join("token");
    std::fs::write(&path, "old\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_private(&path, "s3cret").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "s3cret\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #13: `Debug` of every type that holds a password, token or private key shows none of them
/// (neither as text nor as the list of numbers a byte vector prints). The TLS key is no longer held
/// in memory (only its path travels over xDS), so `TlsMaterial` needs nothing.
#[tokio::test]
async fn debug_of_every_type_holding_a_secret_hides_it() {
    use std::sync::Arc;

    use crate::api::AppState;
    use crate::auth::Authenticator;
    use crate::config::{Config, Role, User};

    const S: &str = "s3cret-in-debug";
    let as_numbers = format!("{:?}", S.as_bytes());
    let as_numbers = as_numbers.trim_matches(['[', ']']);
    let hidden = |what: &str, text: String| {
        assert!(!text.contains(S), "{what} shows the secret: {text}");
        assert!(!text.contains(as_numbers), "{what} shows the secret's bytes: {text}");
    };
    let user = User {
        username: "ops".into(),
        password: S.into(),
        password_hashed: false,
        roles: vec![Role::Admin],
    };
    hidden("User", format!("{user:?}"));
    let mut config = Config::default();
    config.auth.users.push(user.clone());
    config.control_plane.token = S.into();
    hidden("Config", format!("{config:?}"));

    let p = crate::api::tests::parts().await;
    let (auth, _) = Authenticator::with_admin_password(true, vec![user], &p.db, &std::env::temp_dir(), None).unwrap();
    let login = crate::api::tests::basic("ops", S);
    assert!(auth.check(Some(&login), &[Role::Admin]).await.is_ok());
    hidden("Authenticator", format!("{auth:?}"));
    let (generated, _) =
        Authenticator::with_admin_password(true, vec![], &p.db, &scratch("gen"), Some(S.into())).unwrap();
    hidden("Authenticator (admin from env)", format!("{generated:?}"));
    let state = AppState {
        app: p.app,
        auth: Arc::new(auth),
        max_body: 1,
        http_port: 1,
        public_url: None,
        replicas: None,
    };
    hidden("AppState", format!("{state:?}"));

    let replica = crate::replica::ReplicaConfig {
        xds: "http://127.0.0.1:1".into(),
        listen: "127.0.0.1:1".parse().unwrap(),
        node_id: "n".into(),
        token: S.into(),
        max_staleness: None,
        header_names: Default::default(),
        tls: Some(crate::replica::ReplicaTls {
            ca_pem: b"ca".to_vec(),
            server_name: "x".into(),
            identity: Some((b"cert".to_vec(), S.as_bytes().to_vec())),
        }),
        serve_tls: Some(crate::replica::ServeTls {
            cert_pem: b"cert".to_vec(),
            key_pem: S.as_bytes().to_vec(),
            client_ca_pem: None,
        }),
    };
    hidden("ReplicaConfig", format!("{replica:?}"));
}
