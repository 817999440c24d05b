//! Tests of the command line: every command and flag, and the exit code of every refusal.

use std::time::Duration;

use super::*;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(line: &str) -> Result<Command, CliError> {
    Command::parse(args(line), &no_env)
}

fn exit(line: &str) -> u8 {
    parse(line).unwrap_err().exit_code()
}

#[test]
fn serve_run_and_hash_password_take_a_config_file() {
    assert_eq!(
        parse("serve").unwrap(),
        Command::Serve {
            config: None,
            envoy: false,
            sets: vec![]
        }
    );
    assert_eq!(
        parse("run --config t.toml").unwrap(),
        Command::Serve {
            config: Some(PathBuf::from("t.toml")),
            envoy: true,
            sets: vec![]
        }
    );
    assert_eq!(
        parse("serve -c t.toml").unwrap(),
        Command::Serve {
            config: Some(PathBuf::from("t.toml")),
            envoy: false,
            sets: vec![]
        }
    );
    let Command::Serve { sets, .. } = parse("serve --set router.http_port=9 --set server.data_dir=/x=y").unwrap()
    else {
        panic!("not serve");
    };
    let got: Vec<_> = sets
        .iter()
        .map(|s| (s.key.as_str(), s.flag.as_str(), s.value.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("router.http_port", "--set router.http_port", "9"),
            ("server.data_dir", "--set server.data_dir", "/x=y")
        ]
    );
    assert_eq!(exit("serve --set novalue"), 64);
    assert_eq!(exit("serve --set =1"), 64);
    assert_eq!(parse("hash-password").unwrap(), Command::HashPassword);
    assert_eq!(parse("hash-password -c t.toml").unwrap(), Command::HashPassword);
}

#[test]
fn usage_errors_exit_64() {
    for line in [
        "",
        "bogus",
        "serve --config",
        "serve --verbose x",
        "run extra",
        "hash-password -x y",
    ] {
        assert!(matches!(parse(line), Err(CliError::Usage)), "{line:?}");
        assert_eq!(exit(line), 64, "{line:?}");
    }
}

#[test]
fn the_replica_needs_xds_and_a_token() {
    assert!(matches!(parse("authz-replica --token-file t"), Err(CliError::Usage)));
    assert!(matches!(
        parse("authz-replica --xds http://c:18000 --bogus x"),
        Err(CliError::Usage)
    ));
    assert!(matches!(
        parse("authz-replica --xds http://c:18000"),
        Err(CliError::NoToken)
    ));
    assert_eq!(exit("authz-replica --xds http://c:18000"), 64);
    let blank = |_: &str| Some("  ".to_string());
    let err = Command::parse(args("authz-replica --xds http://c:18000"), &blank).unwrap_err();
    assert!(matches!(err, CliError::NoToken));
}

#[test]
fn an_unreadable_token_file_exits_66() {
    let missing = std::env::temp_dir().join(format!("tollgate-no-token-{}", std::process::id()));
    let line = format!("authz-replica --xds http://c:18000 --token-file {}", missing.display());
    let err = parse(&line).unwrap_err();
    assert!(matches!(err, CliError::TokenFile { .. }), "{err}");
    assert_eq!(err.exit_code(), 66);
    assert!(err.to_string().contains("--token-file"), "{err}");
}

#[test]
fn the_replica_token_comes_from_the_file_or_the_environment() {
    let file = std::env::temp_dir().join(format!("tollgate-token-{}", std::process::id()));
    std::fs::write(&file, "  from-file\n").unwrap();
    let line = format!(
        "authz-replica --xds http://c:18000 --token-file {} --listen 127.0.0.1:9 --node n1",
        file.display()
    );
    let Command::AuthzReplica(a) = parse(&line).unwrap() else {
        panic!("not a replica")
    };
    assert_eq!(a.token.expose(), "from-file");
    assert_eq!((a.xds.as_str(), a.node_id.as_str()), ("http://c:18000", "n1"));
    assert_eq!(a.listen, "127.0.0.1:9".parse().unwrap());
    assert!(!format!("{a:?}").contains("from-file"), "the token is never shown");
    let _ = std::fs::remove_file(&file);
    let env = |var: &str| (var == "TOLLGATE_REPLICA_TOKEN").then(|| "from-env\n".to_string());
    let Command::AuthzReplica(a) = Command::parse(args("authz-replica --xds http://c:18000"), &env).unwrap() else {
        panic!("not a replica")
    };
    assert_eq!(a.token.expose(), "from-env");
    // Issue #13: ext_authz answers only on loopback unless `--listen` says otherwise.
    assert_eq!(a.listen, "127.0.0.1:18001".parse().unwrap());
    assert!(a.node_id.starts_with("authz-replica-"));
}

/// Issue #13: a replica refuses checks after 5 minutes without the controller unless told otherwise.
#[test]
fn the_replica_staleness_defaults_to_five_minutes_and_zero_means_no_limit() {
    let env = |_: &str| Some("t".to_string());
    let staleness = |extra: &str| replica(extra, &env).map(|a| a.max_staleness);
    assert_eq!(staleness("").unwrap(), Some(Duration::from_secs(300)));
    assert_eq!(staleness("--max-staleness 30s").unwrap(), Some(Duration::from_secs(30)));
    assert_eq!(staleness("--max-staleness 0").unwrap(), None);
    let err = staleness("--max-staleness soon").unwrap_err();
    assert!(matches!(err, CliError::Staleness(_)), "{err}");
    assert_eq!(err.exit_code(), 64);
}

/// Issue #14: `--quota-store` shares quotas; its password comes from the environment only.
#[test]
fn the_replica_quota_store_flags_are_checked_and_the_password_comes_from_the_environment() {
    let env = |var: &str| match var {
        "TOLLGATE_QUOTA_STORE_PASSWORD" => Some("pw".to_string()),
        _ => Some("t".to_string()),
    };
    let quota = |extra: &str| replica(extra, &env).map(|a| a.quota);
    assert_eq!(quota("").unwrap(), None, "per replica unless told");
    let q = quota("--quota-store redis://r:6379/0 --quota-failure-mode closed --quota-sync-interval 20ms")
        .unwrap()
        .unwrap();
    assert_eq!(q.url, "redis://r:6379/0");
    assert_eq!(q.password.as_deref(), Some("pw"));
    assert_eq!(q.failure_mode, tollgate_quota_store::FailureMode::Closed);
    assert_eq!(q.sync_interval, Duration::from_millis(20));
    assert!(!format!("{q:?}").contains("pw"), "the password is never shown");
    for (bad, want) in [
        ("--quota-failure-mode closed", "usage"),
        ("--quota-store redis://r --quota-failure-mode maybe", "mode"),
        ("--quota-store redis://r --quota-sync-interval 5s", "interval"),
        ("--quota-store http://r", "store"),
    ] {
        let err = quota(bad).unwrap_err();
        let kind = match err {
            CliError::Usage => "usage",
            CliError::QuotaFailureMode(_) => "mode",
            CliError::QuotaSyncInterval(_) => "interval",
            CliError::QuotaStore(_) => "store",
            _ => "other",
        };
        assert_eq!(kind, want, "{bad}: {err}");
        assert_eq!(err.exit_code(), 64);
    }
}

#[test]
fn a_bad_listen_address_exits_64_after_the_token_check() {
    let env = |_: &str| Some("t".to_string());
    let err = Command::parse(args("authz-replica --xds http://c:18000 --listen nowhere"), &env).unwrap_err();
    assert!(matches!(err, CliError::Listen(_)), "{err}");
    assert_eq!(err.exit_code(), 64);
    assert!(matches!(
        parse("authz-replica --xds http://c:18000 --listen nowhere"),
        Err(CliError::NoToken)
    ));
}

#[test]
fn config_errors_exit_64() {
    let err = CliError::from(crate::config::Config::parse("[server]\nmax_body_bytes = 0\n").unwrap_err());
    assert_eq!(err.exit_code(), 64);
    assert!(err.to_string().contains("server.max_body_bytes"), "{err}");
}

#[test]
fn replica_tls_flags_come_in_complete_sets_and_are_read_from_files() {
    let env = |_: &str| Some("t".to_string());
    let dir = std::env::temp_dir().join(format!("tollgate-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("x.pem");
    std::fs::write(&pem, "PEM").unwrap();
    let p = pem.display();
    for incomplete in [
        format!("--xds-ca {p}"),
        format!("--xds-server-name n --tls-cert {p}"),
        format!("--xds-ca {p} --xds-server-name n --tls-cert {p}"),
        format!("--listen-cert {p}"),
        format!("--listen-client-ca {p}"),
    ] {
        let line = format!("authz-replica --xds https://c:18000 {incomplete}");
        let err = Command::parse(args(&line), &env).unwrap_err();
        assert!(matches!(err, CliError::Usage), "{line}: {err}");
    }
    let line = format!(
        "authz-replica --xds https://c:18000 --xds-ca {p} --xds-server-name n --tls-cert {p} --tls-key {p} \
         --listen-cert {p} --listen-key {p} --listen-client-ca {p}"
    );
    let Command::AuthzReplica(a) = Command::parse(args(&line), &env).unwrap() else {
        panic!("not a replica")
    };
    let tls = a.tls.as_ref().unwrap();
    assert_eq!(
        (tls.server_name.as_str(), tls.ca_pem.as_slice()),
        ("n", b"PEM".as_slice())
    );
    assert!(tls.identity.is_some() && a.serve_tls.as_ref().unwrap().client_ca_pem.is_some());
    assert!(!format!("{a:?}").contains("PEM"), "no key material in Debug");
    let err = Command::parse(
        args("authz-replica --xds https://c:18000 --listen-cert /nonexistent --listen-key /nonexistent"),
        &env,
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 66, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn probe_takes_one_http_url() {
    assert_eq!(
        parse("probe http://127.0.0.1:9092/api/admin/v1/ready").unwrap(),
        Command::Probe("http://127.0.0.1:9092/api/admin/v1/ready".into())
    );
    for bad in ["probe", "probe 127.0.0.1:9092", "probe http://a http://b"] {
        assert_eq!(parse(bad).unwrap_err().exit_code(), 64, "{bad}");
    }
}

#[test]
fn secrets_rotate_takes_the_serve_flags() {
    assert_eq!(
        parse("secrets rotate -c t.toml").unwrap(),
        Command::RotateSecrets {
            config: Some(PathBuf::from("t.toml")),
            sets: Vec::new(),
        }
    );
    assert!(matches!(parse("secrets"), Err(CliError::Usage)));
    assert!(matches!(parse("secrets list"), Err(CliError::Usage)));
    assert!(matches!(parse("secrets rotate --bogus"), Err(CliError::Usage)));
}

/// Issue #14, item 4: a replica names the upstream identity headers as the controller does.
#[test]
fn the_replica_takes_the_controllers_identity_header_names() {
    let env = |_: &str| Some("t".to_string());
    let names = |extra: &str| replica(extra, &env).map(|a| a.header_names);
    let default = names("").unwrap();
    assert_eq!(default, tollgate_policies::authz::HeaderNames::default());
    let custom = names("--application-header X-Tollgate-App --subscription-header x-tollgate-sub-id").unwrap();
    assert_eq!(
        (custom.application.as_str(), custom.subscription.as_str()),
        ("X-Tollgate-App", "x-tollgate-sub-id")
    );
    assert_eq!(custom.key_name, default.key_name);
    for bad in [
        "--subscription-header x-sub",
        "--application-header x-tollgate-",
        "--application-header",
    ] {
        let err = names(bad).unwrap_err();
        assert!(
            matches!(err, CliError::HeaderName { .. } | CliError::Usage),
            "{bad}: {err}"
        );
        assert_eq!(err.exit_code(), 64);
    }
}

/// `authz-replica --xds http://c:18000 EXTRA` parsed with `env`.
fn replica(extra: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<super::replica::ReplicaArgs, CliError> {
    match Command::parse(args(&format!("authz-replica --xds http://c:18000 {extra}")), env)? {
        Command::AuthzReplica(a) => Ok(*a),
        _ => panic!("not a replica"),
    }
}
