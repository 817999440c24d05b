//! Every key from the environment: the naming rule, conversion by the field's kind, precedence
//! (flag > environment > file > default), and errors naming the key and its source.

use std::path::{Path, PathBuf};

use super::super::env::{keys, var_name};
use super::super::*;
use super::{env_of, scratch};

fn flag(key: &str, flag: &str, value: &str) -> FlagValue {
    FlagValue {
        key: key.into(),
        flag: flag.into(),
        value: value.into(),
    }
}

#[test]
fn every_key_has_its_own_variable() {
    let names: Vec<String> = keys().iter().map(|k| var_name(&k.path)).collect();
    for expected in [
        "TOLLGATE_SERVER_DATA_DIR",
        "TOLLGATE_SERVER_TLS_CERT_PATH",
        "TOLLGATE_ROUTER_HTTP_PORT",
        "TOLLGATE_ROUTER_VHOSTS_MAIN_DOMAINS",
        "TOLLGATE_AUTH_USERS",
        "TOLLGATE_API_KEYS_PER_USER_PER_API",
        "TOLLGATE_LOGGING_FORMAT",
        "TOLLGATE_ENVOY_BINARY",
        "TOLLGATE_CONTROL_PLANE_HOST",
        "TOLLGATE_CONTROL_PLANE_TOKEN",
        "TOLLGATE_XDS_TLS_CLIENT_CA",
        "TOLLGATE_AUTHZ_TLS_SERVER_NAME",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "two keys share a variable: {names:?}");
    for other in ["TOLLGATE_CONFIG", "TOLLGATE_ADMIN_PASSWORD", "TOLLGATE_REPLICA_TOKEN"] {
        assert!(!names.iter().any(|n| n == other), "{other} is not a key's variable");
    }
}

#[test]
fn values_are_converted_by_the_kind_of_their_field() {
    let env = env_of(&[
        ("TOLLGATE_ROUTER_HTTP_PORT", "18080"),
        ("TOLLGATE_SERVER_AUTHZ_EMBEDDED", "FALSE"),
        ("TOLLGATE_API_KEYS_PUBLISH_TO_REPLICAS", "true"),
        ("TOLLGATE_ROUTER_ROUTE_TIMEOUT", "90s"),
        (
            "TOLLGATE_ROUTER_ALLOWED_INTERNAL_UPSTREAMS",
            "127.0.0.1:9901, [::1]:9092",
        ),
        ("TOLLGATE_ROUTER_VHOSTS_MAIN_DOMAINS", r#"["a.example", "b.example"]"#),
        ("TOLLGATE_LOGGING_FORMAT", "json"),
        ("TOLLGATE_SERVER_TLS_CERT_PATH", "/tls/api.crt"),
        ("TOLLGATE_SERVER_TLS_KEY_PATH", "/tls/api.key"),
        (
            "TOLLGATE_AUTH_USERS",
            r#"[{"username": "ops", "password": "env-pw-1", "roles": ["admin"]}]"#,
        ),
    ]);
    let (c, origins) = merge_only(None, &env, &[]);
    assert_eq!(c.router.http_port, 18080);
    assert!(!c.server.authz_embedded && c.api_keys.publish_to_replicas);
    assert_eq!(c.router.route_timeout, Duration::from_secs(90));
    assert_eq!(c.router.allowed_internal_upstreams, ["127.0.0.1:9901", "[::1]:9092"]);
    assert_eq!(c.router.vhosts.main_domains, ["a.example", "b.example"]);
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.server.tls_cert_path.as_deref(), Some(Path::new("/tls/api.crt")));
    assert_eq!(c.auth.users[0].username, "ops");
    assert_eq!(c.auth.users[0].password.expose(), "env-pw-1");
    assert_eq!(
        origins.get("router.http_port"),
        Some(&Source::Env("TOLLGATE_ROUTER_HTTP_PORT".into()))
    );
    assert!(!c.redacted().to_string().contains("env-pw-1"));
}

/// The merge alone (the TLS files named above do not exist, so no `check_files`).
fn merge_only(path: Option<&Path>, env: &dyn Fn(&str) -> Option<String>, flags: &[FlagValue]) -> (Config, Origins) {
    super::super::load::merge(path, env, flags).unwrap()
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let dir = scratch("precedence");
    let file = dir.join("tollgate.toml");
    std::fs::write(&file, "[router]\nhttp_port = 1111\nhttps_port = 1112\n").unwrap();
    let env = env_of(&[
        ("TOLLGATE_ROUTER_HTTP_PORT", "2222"),
        ("TOLLGATE_ROUTER_HTTPS_PORT", "2223"),
    ]);
    let flags = [flag("router.http_port", "--http-port", "3333")];
    let (c, origins) = Config::load_from(Some(&file), &env, &flags).unwrap();
    assert_eq!((c.router.http_port, c.router.https_port), (3333, 2223));
    assert_eq!(origins["router.http_port"], Source::Flag("--http-port".into()));
    let c = Config::load_with(Some(&file), &env).unwrap();
    assert_eq!((c.router.http_port, c.router.https_port), (2222, 2223));
    let (c, origins) = Config::load_from(Some(&file), &env_of(&[]), &[]).unwrap();
    assert_eq!((c.router.http_port, c.router.https_port), (1111, 1112));
    assert_eq!(origins["router.http_port"], Source::File(file.clone()));
    assert_eq!(Config::load_with(None, &env_of(&[])).unwrap().router.http_port, 8080);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tollgate_config_names_the_file_and_config_flag_wins() {
    let dir = scratch("config-var");
    let (a, b) = (dir.join("a.toml"), dir.join("b.toml"));
    std::fs::write(&a, "[server]\nmanagement_port = 1001\n").unwrap();
    std::fs::write(&b, "[server]\nmanagement_port = 1002\n").unwrap();
    let a_text = a.display().to_string();
    let lookup = move |name: &str| (name == "TOLLGATE_CONFIG").then(|| a_text.clone());
    assert_eq!(Config::load_with(None, &lookup).unwrap().server.management_port, 1001);
    assert_eq!(
        Config::load_with(Some(&b), &lookup).unwrap().server.management_port,
        1002
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_short_names_still_work_and_the_full_name_wins() {
    let short = env_of(&[
        ("TOLLGATE_DATA_DIR", "/srv/short"),
        ("TOLLGATE_ENVOY_BIN", "/opt/envoy"),
    ]);
    let c = Config::load_with(None, &short).unwrap();
    assert_eq!(c.server.data_dir, PathBuf::from("/srv/short"));
    assert_eq!(c.envoy.binary, PathBuf::from("/opt/envoy"));
    let both = env_of(&[
        ("TOLLGATE_DATA_DIR", "/srv/short"),
        ("TOLLGATE_SERVER_DATA_DIR", "/srv/full"),
    ]);
    assert_eq!(
        Config::load_with(None, &both).unwrap().server.data_dir,
        PathBuf::from("/srv/full")
    );
}

#[test]
fn a_value_of_the_wrong_kind_names_the_variable() {
    for (var, value, key, says) in [
        ("TOLLGATE_ROUTER_HTTP_PORT", "eighty", "router.http_port", "integer"),
        ("TOLLGATE_ROUTER_HTTP_PORT", "70000", "router.http_port", "u16"),
        ("TOLLGATE_AUTH_ENABLED", "yes", "auth.enabled", "true or false"),
        ("TOLLGATE_LOGGING_FORMAT", "xml", "logging.format", "unknown variant"),
        (
            "TOLLGATE_ROUTER_ROUTE_TIMEOUT",
            "soon",
            "router.route_timeout",
            "bad duration",
        ),
        ("TOLLGATE_AUTH_USERS", "[{", "auth.users", "JSON"),
    ] {
        let vars = [(var, value)];
        let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        let err = Config::load_with(None, &lookup).unwrap_err();
        assert_eq!(err.key(), Some(key), "{var}={value}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("(from env {var})")) && text.contains(says),
            "{text}"
        );
    }
}

#[test]
fn the_merged_result_is_validated_once_and_errors_name_the_source() {
    let err = Config::load_with(None, &env_of(&[("TOLLGATE_SERVER_MAX_BODY_BYTES", "0")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid config: server.max_body_bytes (from env TOLLGATE_SERVER_MAX_BODY_BYTES): must be greater than 0"
    );
    let dir = scratch("file-source");
    let file = dir.join("tollgate.toml");
    std::fs::write(&file, "[server]\nmax_body_bytes = 0\n").unwrap();
    let err = Config::load_with(Some(&file), &env_of(&[])).unwrap_err().to_string();
    assert!(err.contains(&format!("(from file {})", file.display())), "{err}");
    // The environment repairs the file's value: only the merged result is checked.
    let fixed = env_of(&[("TOLLGATE_SERVER_MAX_BODY_BYTES", "10")]);
    assert_eq!(
        Config::load_with(Some(&file), &fixed).unwrap().server.max_body_bytes,
        10
    );
    let flags = [flag("router.https_port", "--https-port", "x")];
    let err = Config::load_from(None, &env_of(&[]), &flags).unwrap_err().to_string();
    assert!(err.contains("router.https_port (from flag --https-port)"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_mistake_keeps_the_toml_message() {
    let dir = scratch("file-message");
    let file = dir.join("tollgate.toml");
    std::fs::write(&file, "[router]\nhttp_port = \"x\"\n").unwrap();
    let err = Config::load_with(Some(&file), &env_of(&[])).unwrap_err().to_string();
    assert!(err.contains("invalid config file") && err.contains("line 2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_access_log_is_stdout_off_or_an_absolute_file() {
    use tollgate_translate::AccessLog;
    assert_eq!(Config::default().router.access_log_sink(), AccessLog::Stdout);
    let off = Config::load_with(None, &env_of(&[("TOLLGATE_ROUTER_ACCESS_LOG", "off")])).unwrap();
    assert_eq!(off.router.access_log_sink(), AccessLog::Off);
    let file = Config::parse("[router]\naccess_log = \"/var/log/envoy/access.json\"\n").unwrap();
    assert_eq!(
        file.router.access_log_sink(),
        AccessLog::File("/var/log/envoy/access.json".into())
    );
    let err = Config::load_with(None, &env_of(&[("TOLLGATE_ROUTER_ACCESS_LOG", "access.json")])).unwrap_err();
    assert!(
        err.to_string().contains(
            "router.access_log (from env TOLLGATE_ROUTER_ACCESS_LOG): must be \"stdout\", \"off\" or an absolute"
        ),
        "{err}"
    );
}

#[test]
fn misspelt_variables_are_told_apart_from_known_ones() {
    let names = [
        "TOLLGATE_ROUTER_HTTP_PROT",
        "TOLLGATE_ROUTER_HTTP_PORT",
        "TOLLGATE_DATA_DIR",
        "TOLLGATE_ADMIN_PASSWORD",
        "TOLLGATE_CONFIG",
        "PATH",
    ];
    assert_eq!(
        super::super::env::unknown(names.iter().map(|n| n.to_string())),
        ["TOLLGATE_ROUTER_HTTP_PROT"]
    );
}

#[test]
fn a_missing_file_named_by_a_variable_names_the_variable() {
    let env = env_of(&[
        ("TOLLGATE_SERVER_TLS_CERT_PATH", "/nonexistent/tollgate/api.crt"),
        ("TOLLGATE_SERVER_TLS_KEY_PATH", "/nonexistent/tollgate/api.key"),
    ]);
    let err = Config::load_with(None, &env).unwrap_err();
    assert_eq!(err.key(), Some("server.tls_cert_path"));
    let text = err.to_string();
    assert!(
        text.contains("(from env TOLLGATE_SERVER_TLS_CERT_PATH)") && text.contains("/nonexistent/tollgate/api.crt"),
        "{text}"
    );
}
