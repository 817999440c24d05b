//! Tests of the configuration: defaults, the shipped example files, errors naming keys, the
//! environment overlay and the files the configuration points at.

use super::*;

#[test]
fn defaults_match_the_documented_ports() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.server.management_port, 9090);
    assert_eq!(c.server.admin_port, 9092);
    assert_eq!(c.server.xds_port, 18000);
    assert_eq!(c.server.authz_port, 18001);
    assert_eq!(c.router.http_port, 8080);
    assert!(c.auth.enabled);
    assert_eq!(c.router.route_timeout, Duration::from_secs(60));
}

#[test]
fn the_example_file_documents_exactly_the_defaults() {
    assert_eq!(
        Config::parse(include_str!("../../tollgate.example.toml")).unwrap(),
        Config::default()
    );
}

/// Issue #19: the compose stack configures the controller through the environment alone, and
/// changes only where the data lives and where Envoy finds xDS and ext_authz.
#[test]
fn the_compose_environment_changes_only_the_data_dir_and_where_envoy_finds_ext_authz() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let compose: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let controller = &compose["services"]["controller"];
    assert_eq!(controller["command"][0].as_str(), Some("serve"));
    assert!(
        controller["command"].as_sequence().unwrap().len() == 1 && controller["volumes"][1].is_null(),
        "no config file: {controller:?}"
    );
    let vars: Vec<(String, String)> = controller["environment"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().unwrap().to_string()))
        // Values compose takes from the host's environment (empty by default).
        .filter(|(_, v)| !v.starts_with("${"))
        .collect();
    let env = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let c = Config::load_with(None, &env).unwrap();
    let mut d = Config::default();
    d.server.data_dir = "/var/lib/tollgate".into();
    d.server.authz_advertise = "controller".into();
    // Envoy is in another container: xDS and ext_authz listen on the compose network.
    d.server.grpc_bind = "0.0.0.0".into();
    assert_eq!(c, d);
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("ENV TOLLGATE_DATA_DIR=/var/lib/tollgate"),
        "{dockerfile}"
    );
}

/// Issue #13: the shipped compose stack has no default password, publishes only Envoy's listeners
/// and the management API (on the host's loopback), and keeps Envoy's admin on loopback.
#[test]
fn the_compose_stack_publishes_only_the_gateway_and_the_management_api() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let compose: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let mut published = Vec::new();
    for (name, service) in services {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let spec = port
                .as_str()
                .unwrap_or_else(|| panic!("{name:?}: ports as strings: {port:?}"));
            published.push((name.as_str().unwrap().to_string(), spec.to_string()));
        }
    }
    let published: Vec<(&str, &str)> = published.iter().map(|(n, p)| (n.as_str(), p.as_str())).collect();
    assert_eq!(
        published,
        [
            ("controller", "127.0.0.1:9090:9090"),
            ("envoy", "8080:8080"),
            ("envoy", "8443:8443")
        ],
        "only the gateway listeners, and the plain-HTTP management API on loopback"
    );
    let probe = services["controller"]["healthcheck"]["test"].as_sequence().unwrap();
    assert_eq!(probe.get(1).and_then(|v| v.as_str()), Some("tollgate"), "{probe:?}");
    assert!(
        probe
            .iter()
            .any(|v| v.as_str().is_some_and(|u| u.ends_with("/api/admin/v1/ready"))),
        "the controller is probed on /ready: {probe:?}"
    );
    assert_eq!(
        services["envoy"]["depends_on"]["controller"]["condition"],
        "service_healthy"
    );
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("/api/admin/v1/ready"));
    let password = services["controller"]["environment"]["TOLLGATE_ADMIN_PASSWORD"]
        .as_str()
        .unwrap();
    assert!(
        password.starts_with("${TOLLGATE_ADMIN_PASSWORD:?") && !text.contains("change-me"),
        "the admin password must be required, with no default: {password}"
    );
    let bootstrap: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("envoy/bootstrap-compose.yaml")).unwrap()).unwrap();
    assert_eq!(
        bootstrap["admin"]["address"]["socket_address"]["address"].as_str(),
        Some("127.0.0.1"),
        "Envoy's admin interface listens on loopback"
    );
}

/// Issue #13: HTTPS for the management and admin APIs needs both files.
#[test]
fn api_tls_needs_a_certificate_and_a_key() {
    let err = Config::parse("[server]\ntls_cert_path = \"api.crt\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.tls_cert_path"), "{err}");
    let ok = Config::parse("[server]\ntls_cert_path = \"a.crt\"\ntls_key_path = \"a.key\"\n").unwrap();
    assert_eq!(ok.server.tls_key_path.as_deref(), Some(std::path::Path::new("a.key")));
}

/// Issue #13: the unauthenticated gRPC ports (xDS, ext_authz) listen on loopback unless configured.
#[test]
fn grpc_ports_bind_to_loopback_by_default() {
    assert_eq!(Config::default().server.grpc_bind, "127.0.0.1");
}

/// Issue #13: the xDS bounds are configurable and cannot be switched off with a zero.
#[test]
fn xds_limits_are_read_and_zero_is_refused() {
    let c = Config::parse("[server]\nxds_max_streams = 7\nxds_first_message_timeout = \"2s\"\n").unwrap();
    let limits = c.server.xds_limits();
    assert_eq!(limits.max_streams, 7);
    assert_eq!(limits.first_message_timeout, Duration::from_secs(2));
    assert_eq!(Config::default().server.xds_limits(), tollgate_xds::Limits::default());
    let err = Config::parse("[server]\nxds_max_resource_names = 0\n").unwrap_err();
    assert_eq!(err.key(), Some("server.xds_max_resource_names"));
}

#[test]
fn unknown_keys_are_named() {
    let err = Config::parse("[server]\nmanagment_port = 1\n").unwrap_err().to_string();
    assert!(err.contains("managment_port"), "{err}");
}

#[test]
fn bad_values_are_named() {
    let err = Config::parse("[router]\nroute_timeout = \"soon\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("route_timeout"), "{err}");
    let err = Config::parse("[server]\nmax_body_bytes = 0\n").unwrap_err().to_string();
    assert!(err.contains("server.max_body_bytes"), "{err}");
    let err = Config::parse("[router]\ntls_cert_path = \"a.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tls_cert_path"), "{err}");
    let err = Config::parse("[server]\nauthz_embedded = false\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server.authz_embedded") && err.contains("publish_to_replicas"),
        "{err}"
    );
    let ok = Config::parse("[server]\nauthz_embedded = false\n[api_keys]\npublish_to_replicas = true\n").unwrap();
    assert!(!ok.server.authz_embedded && ok.api_keys.publish_to_replicas);
}

#[test]
fn users_parse_and_redact() {
    let c = Config::parse(
        "[[auth.users]]\nusername = \"ops\"\npassword = \"hunter2\"\nroles = [\"admin\", \"consumer\"]\n",
    )
    .unwrap();
    assert_eq!(c.auth.users[0].roles, vec![Role::Admin, Role::Consumer]);
    assert!(!c.redacted().to_string().contains("hunter2"));
}

#[test]
fn versions_below_1_2_are_detected() {
    use super::check::semver_below;
    assert!(!semver_below("1.2.0", (1, 2)));
    assert!(!semver_below("1.10", (1, 2)));
    assert!(!semver_below("2.0.0", (1, 2)));
    assert!(semver_below("1.1.9", (1, 2)));
    assert!(semver_below("it-e2e", (1, 2)));
    assert!(semver_below("", (1, 2)));
}

/// A lookup that answers from `vars` only, so tests never read or race on the real environment.
fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

/// A unique scratch folder for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_overlay_is_validated_and_names_its_variable() {
    let env = env_of(&[
        ("TOLLGATE_CONTROL_PLANE_HOST", "https://cp.example"),
        ("TOLLGATE_CONTROL_PLANE_TOKEN", "t"),
    ]);
    let err = Config::load_with(None, &env).unwrap_err();
    assert_eq!(err.key(), Some("control_plane.host"));
    let text = err.to_string();
    assert!(
        text.contains("TOLLGATE_CONTROL_PLANE_HOST") && text.contains("host[:port]"),
        "{text}"
    );
}

#[test]
fn the_overlay_is_applied_and_logged_redacted() {
    let env = env_of(&[
        ("TOLLGATE_CONTROL_PLANE_HOST", " cp.example:9243 "),
        ("TOLLGATE_CONTROL_PLANE_TOKEN", "s3cret-token"),
        ("TOLLGATE_ENVOY_BIN", "/opt/envoy"),
    ]);
    let c = Config::load_with(None, &env).unwrap();
    assert_eq!(c.control_plane.host, "cp.example:9243");
    assert_eq!(c.control_plane.token.expose(), "s3cret-token");
    assert_eq!(c.envoy.binary, std::path::PathBuf::from("/opt/envoy"));
    let logged = c.redacted().to_string();
    assert!(
        logged.contains("cp.example:9243") && logged.contains("/opt/envoy"),
        "{logged}"
    );
    assert!(!logged.contains("s3cret-token"), "{logged}");
    assert!(!format!("{:?}", c.control_plane).contains("s3cret-token"));
}

#[test]
fn blank_variables_change_nothing() {
    let env = env_of(&[("TOLLGATE_CONTROL_PLANE_HOST", "  "), ("TOLLGATE_ENVOY_BIN", "")]);
    assert_eq!(Config::load_with(None, &env).unwrap(), Config::default());
}

#[test]
fn a_control_plane_without_a_token_is_a_config_error() {
    let err = Config::load_with(None, &env_of(&[("TOLLGATE_CONTROL_PLANE_HOST", "cp.example")])).unwrap_err();
    assert_eq!(err.key(), Some("control_plane.token"));
    assert!(err.to_string().contains("TOLLGATE_CONTROL_PLANE_TOKEN"), "{err}");
    let err = Config::parse("[control_plane]\nhost = \"cp.example\"\n").unwrap_err();
    assert_eq!(err.key(), Some("control_plane.token"));
    let dir = scratch("token-file");
    let file = dir.join("tollgate.toml");
    std::fs::write(&file, "[control_plane]\nhost = \"cp.example\"\n").unwrap();
    let token = env_of(&[("TOLLGATE_CONTROL_PLANE_TOKEN", "t")]);
    assert_eq!(
        Config::load_with(Some(&file), &token)
            .unwrap()
            .control_plane
            .token
            .expose(),
        "t"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_tls_files_are_config_errors() {
    let dir = scratch("tls");
    let file = dir.join("tollgate.toml");
    let cert = dir.join("cert.pem");
    let toml = format!(
        "[router]\ntls_cert_path = {:?}\ntls_key_path = {:?}\n",
        cert.display().to_string(),
        dir.join("missing-key.pem").display().to_string()
    );
    std::fs::write(&file, toml).unwrap();
    let none = env_of(&[]);
    let err = Config::load_with(Some(&file), &none).unwrap_err();
    assert_eq!(err.key(), Some("router.tls_cert_path"), "{err}");
    std::fs::write(&cert, "pem").unwrap();
    let err = Config::load_with(Some(&file), &none).unwrap_err();
    assert_eq!(err.key(), Some("router.tls_key_path"), "{err}");
    assert!(err.to_string().contains("missing-key.pem"), "{err}");
    std::fs::write(dir.join("missing-key.pem"), "pem").unwrap();
    assert!(Config::load_with(Some(&file), &none).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_control_plane_ca_file_must_hold_a_certificate() {
    let dir = scratch("ca");
    let file = dir.join("tollgate.toml");
    let ca = dir.join("ca.pem");
    let toml = format!(
        "[control_plane]\nhost = \"cp.example\"\ntoken = \"t\"\nca_cert_path = {:?}\n",
        ca.display().to_string()
    );
    std::fs::write(&file, &toml).unwrap();
    let none = env_of(&[]);
    let err = Config::load_with(Some(&file), &none).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::File {
                key: "control_plane.ca_cert_path",
                ..
            }
        ),
        "{err}"
    );
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let err = Config::load_with(Some(&file), &none).unwrap_err();
    assert_eq!(err.key(), Some("control_plane.ca_cert_path"));
    assert!(err.to_string().contains("holds no certificate"), "{err}");
    // Not verifying certificates, the file is not read.
    std::fs::write(&file, format!("{toml}insecure_skip_verify = true\n")).unwrap();
    assert!(Config::load_with(Some(&file), &none).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn xds_tls_settings_are_checked_together() {
    for (toml, key) in [
        ("[xds_tls]\ncert = \"a.pem\"\n", "xds_tls.cert"),
        ("[xds_tls]\nclient_ca = \"ca.pem\"\n", "xds_tls.client_ca"),
        ("[xds_tls]\nclient_cert = \"c.pem\"\n", "xds_tls.client_cert"),
        (
            "[xds_tls]\ncert = \"/nonexistent/a.pem\"\nkey = \"/nonexistent/a.key\"\n",
            "xds_tls.server_name",
        ),
        (
            "[xds_tls]\ncert = \"/nonexistent/a.pem\"\nkey = \"/nonexistent/a.key\"\nserver_name = \"x\"\n",
            "xds_tls.ca",
        ),
        (
            "[authz_tls]\ncert = \"/nonexistent/a.pem\"\nkey = \"/nonexistent/a.key\"\nserver_name = \"x\"\nca = \"c\"\n",
            "authz_tls.cert",
        ),
    ] {
        let err = Config::parse(toml).unwrap_err().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    assert!(!Config::default().xds_tls.enabled());
}

#[test]
fn empty_passwords_are_refused() {
    let err = Config::parse("[[auth.users]]\nusername = \"a\"\npassword = \"\"\nroles = [\"admin\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("auth.users") && err.contains("empty password"), "{err}");
}

#[test]
fn allowed_internal_upstreams_are_host_port_and_reach_the_validator() {
    let c = Config::parse("[router]\nallowed_internal_upstreams = [\"127.0.0.1:9901\", \"[::1]:9092\"]\n").unwrap();
    let guard = c.vhost_defaults().upstreams;
    assert_eq!(guard.allowed, vec!["127.0.0.1:9901", "[::1]:9092"]);
    assert_eq!(
        guard.gateway_ports,
        vec![8080, 8443, 9090, 9091, 9092, 9901, 18000, 18001]
    );
    for bad in ["127.0.0.1", "::1:9901", "[::1]", "host:0", ":80", "[nope]:80"] {
        let err = Config::parse(&format!("[router]\nallowed_internal_upstreams = [\"{bad}\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("router.allowed_internal_upstreams"), "{bad}: {err}");
    }
}

#[test]
fn identity_header_names_stay_in_the_stripped_namespace() {
    let ok = Config::parse("[api_keys]\nsubscription_header = \"X-Tollgate-Sub-Id\"\n").unwrap();
    assert_eq!(ok.api_keys.subscription_header, "X-Tollgate-Sub-Id");
    for bad in ["x-subscription", "x-tollgate-", "x-tollgate-a b"] {
        let err = Config::parse(&format!("[api_keys]\napplication_header = {bad:?}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_keys.application_header"), "{bad}: {err}");
    }
}
#[test]
fn rate_limit_entries_are_bounded_like_wso2s_max_entries() {
    assert_eq!(Config::parse("").unwrap().api_keys.rate_limit_max_entries, 100_000);
    let ok = Config::parse("[api_keys]\nrate_limit_max_entries = 500\n").unwrap();
    assert_eq!(ok.api_keys.rate_limit_max_entries, 500);
    for bad in [0, 99, 10_000_001] {
        let err = Config::parse(&format!("[api_keys]\nrate_limit_max_entries = {bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_keys.rate_limit_max_entries"), "{bad}: {err}");
    }
}
mod env;

/// Issue #14: `[quota]` names a shared store; the password comes from the environment and is
/// redacted; a bad URL or interval is named.
#[test]
fn the_quota_store_is_read_checked_and_its_password_redacted() {
    let env = env_of(&[
        ("TOLLGATE_QUOTA_STORE", "redis://127.0.0.1:6379/0"),
        ("TOLLGATE_QUOTA_STORE_PASSWORD", "hunter2"),
        ("TOLLGATE_QUOTA_FAILURE_MODE", "closed"),
    ]);
    let c = Config::load_with(None, &env).unwrap();
    let store = c.quota.store_config().unwrap();
    assert_eq!(store.url, "redis://127.0.0.1:6379/0");
    assert_eq!(store.password.as_deref(), Some("hunter2"));
    assert_eq!(store.failure_mode, tollgate_quota_store::FailureMode::Closed);
    assert!(!c.redacted().to_string().contains("hunter2"));
    assert!(
        Config::default().quota.store_config().is_none(),
        "per replica by default"
    );
    for (text, key) in [
        ("[quota]\nstore = \"http://x\"", "quota.store"),
        ("[quota]\nsync_interval = \"5s\"", "quota.sync_interval"),
        ("[quota]\nstore = \"redis://:pw@x:6379\"", "quota.store"),
    ] {
        let err = Config::parse(text).unwrap_err();
        assert_eq!(err.key(), Some(key), "{text}: {err}");
    }
}
