use std::collections::HashMap;
use std::path::PathBuf;

use reqwest::{Method, StatusCode, Url};
use serde_json::json;

use super::apply::split;
use super::get::{apis_table, plans_table, secrets_table, subscriptions_table};
use super::status::{report, summarize};
use super::*;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn resolve(flags: &ConnFlags, vars: &[(&str, &str)]) -> Result<Settings, ClientError> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::resolve(flags, &|k| vars.get(k).cloned())
}

#[test]
fn client_commands_parse_with_global_flags_anywhere() {
    let a = parse(args("get apis -o json --url http://h:1")).unwrap();
    assert_eq!(a.command, ClientCommand::Get(GetWhat::Apis));
    assert_eq!(a.output, Output::Json);
    assert_eq!(a.conn.url.as_deref(), Some("http://h:1"));
    let a = parse(args("-o yaml keys create files --name k --expires-in 30d -q")).unwrap();
    assert_eq!(a.output, Output::Yaml);
    let ClientCommand::Keys(KeysCommand::Create {
        api,
        name,
        expires_in,
        quiet,
    }) = a.command
    else {
        panic!("{a:?}")
    };
    assert_eq!((api.as_str(), name.as_deref(), quiet), ("files", Some("k"), true));
    assert_eq!(expires_in, Some(std::time::Duration::from_secs(30 * 86_400)));
    let a = parse(args("apply -f a.yaml -f dir --wait --timeout 5s")).unwrap();
    let ClientCommand::Apply(apply) = a.command else {
        panic!()
    };
    assert_eq!(apply.files, vec![PathBuf::from("a.yaml"), PathBuf::from("dir")]);
    assert!(apply.wait);
}

#[test]
fn bad_client_lines_are_usage_errors_and_help_is_not() {
    for line in [
        "get",
        "get bogus",
        "apply",
        "keys create",
        "delete api",
        "get apis -o xml",
        "status extra",
    ] {
        let err = crate::cli::Command::parse(args(line), &|_| None).unwrap_err();
        assert_eq!(err.exit_code(), 64, "{line}");
    }
    for line in ["--help", "help", "get --help", "--version"] {
        let err = crate::cli::Command::parse(args(line), &|_| None).unwrap_err();
        assert_eq!(err.exit_code(), 0, "{line}");
    }
}

#[test]
fn the_password_flag_never_shows_in_debug_output() {
    let a = parse(args("status --password hunter2-secret")).unwrap();
    assert!(!format!("{a:?}").contains("hunter2-secret"));
    let s = resolve(&a.conn, &[]).unwrap();
    assert!(!format!("{s:?}").contains("hunter2-secret"));
    assert_eq!(s.password.unwrap().expose(), "hunter2-secret");
}

#[test]
fn settings_come_from_flags_then_environment_then_file_then_defaults() {
    let dir = temp_dir("settings");
    std::fs::write(dir.join("pw"), "from-file-pw\n").unwrap();
    let config = dir.join("cli.toml");
    std::fs::write(
        &config,
        "url = \"http://file:1\"\nusername = \"fileuser\"\npassword_file = \"pw\"\nadmin_url = \"http://file:2\"\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();

    let s = resolve(&ConnFlags::default(), &[("HOME", dir.to_str().unwrap())]).unwrap();
    assert_eq!(s.url.as_str(), "http://localhost:9090/");
    assert_eq!(
        s.admin_url.as_str(),
        "http://localhost:9092/",
        "derived from the management URL"
    );
    assert_eq!(s.username, "admin");
    assert!(s.password.is_none());

    let s = resolve(&ConnFlags::default(), &[("TOLLGATE_CLI_CONFIG", cfg)]).unwrap();
    assert_eq!(s.url.as_str(), "http://file:1/");
    assert_eq!(s.admin_url.as_str(), "http://file:2/");
    assert_eq!(s.username, "fileuser");
    assert_eq!(
        s.password.unwrap().expose(),
        "from-file-pw",
        "relative to the file, first line"
    );

    let env = [
        ("TOLLGATE_CLI_CONFIG", cfg),
        ("TOLLGATE_URL", "https://env:3"),
        ("TOLLGATE_USERNAME", "envuser"),
        ("TOLLGATE_PASSWORD", "envpw"),
    ];
    let s = resolve(&ConnFlags::default(), &env).unwrap();
    assert_eq!(s.url.as_str(), "https://env:3/");
    assert_eq!(
        (s.username.as_str(), s.password.unwrap().expose().as_str()),
        ("envuser", "envpw")
    );

    let flags = parse(args("status --url http://flag:4 --username flaguser --password flagpw"))
        .unwrap()
        .conn;
    let s = resolve(&flags, &env).unwrap();
    assert_eq!(s.url.as_str(), "http://flag:4/");
    assert_eq!(s.admin_url.as_str(), "http://file:2/");
    assert_eq!(
        (s.username.as_str(), s.password.unwrap().expose().as_str()),
        ("flaguser", "flagpw")
    );

    // The default file under XDG_CONFIG_HOME is read when present.
    std::fs::create_dir_all(dir.join("xdg/tollgate")).unwrap();
    std::fs::write(dir.join("xdg/tollgate/cli.toml"), "url = \"http://xdg:5\"\n").unwrap();
    let s = resolve(
        &ConnFlags::default(),
        &[("XDG_CONFIG_HOME", dir.join("xdg").to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(s.url.as_str(), "http://xdg:5/");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_settings_name_what_is_wrong() {
    let err = resolve(&ConnFlags::default(), &[("TOLLGATE_URL", "ftp://x")]).unwrap_err();
    assert_eq!(err.exit_code(), 64, "{err}");
    let err = resolve(&ConnFlags::default(), &[("TOLLGATE_URL", "http://admin:pw@h:1")]).unwrap_err();
    assert!(!err.to_string().contains("pw@"), "{err}");
    let err = resolve(
        &ConnFlags::default(),
        &[("TOLLGATE_CLI_CONFIG", "/nonexistent/cli.toml")],
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 66, "{err}");
    let err = resolve(&ConnFlags::default(), &[("TOLLGATE_PASSWORD_FILE", "/nonexistent/pw")]).unwrap_err();
    assert_eq!(err.exit_code(), 66, "{err}");
    let dir = temp_dir("badfile");
    std::fs::write(dir.join("cli.toml"), "url = \"http://x:1\"\ntoken = \"t\"\n").unwrap();
    let err = resolve(
        &ConnFlags::default(),
        &[("TOLLGATE_CLI_CONFIG", dir.join("cli.toml").to_str().unwrap())],
    )
    .unwrap_err();
    assert!(err.to_string().contains("token"), "{err}");
    assert_eq!(err.exit_code(), 64);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refusals_show_field_messages_and_map_to_exit_codes() {
    let url = Url::parse("http://h:9090/api/management/v1/rest-apis").unwrap();
    let body = json!({"status": "error", "message": "Configuration validation failed",
        "errors": [{"field": "spec.context", "message": "must start with /"},
                   {"field": "spec.upstream.main.url", "message": "is not a URL"}]});
    let err = ClientError::refused(&Method::POST, &url, StatusCode::BAD_REQUEST, &body, true);
    let text = err.context("api.yaml".into()).to_string();
    assert_eq!(
        text,
        "api.yaml: POST /rest-apis: 400 Bad Request: Configuration validation failed\n  spec.context: must start with /\n  spec.upstream.main.url: is not a URL"
    );
    for (status, code) in [(404, 3), (409, 4), (400, 1), (401, 1), (500, 1)] {
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(
            ClientError::refused(&Method::GET, &url, status, &json!({}), true).exit_code(),
            code
        );
    }
    let text = ClientError::refused(&Method::GET, &url, StatusCode::UNAUTHORIZED, &json!({}), false).to_string();
    assert!(text.contains("no password was given"), "{text}");
}

#[test]
fn documents_split_on_separators_and_skip_empty_ones() {
    let text = "kind: RestApi\nmetadata: {name: a}\n---\n# only a comment\n---\nkind: RestApi\nmetadata:\n  name: b\n";
    let docs = split("f.yaml", text).unwrap();
    let names: Vec<_> = docs.iter().map(|d| d.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(docs[1].origin, "f.yaml (document 3)");
    let docs = split("one.yaml", "metadata: {name: x}\n").unwrap();
    assert_eq!(docs[0].origin, "one.yaml");
    let docs = split("x.json", "{\"kind\": \"RestApi\", \"metadata\": {\"name\": \"j\"}}").unwrap();
    assert_eq!(docs[0].name.as_deref(), Some("j"));

    let err = split("f.yaml", "kind: Mcp\n").unwrap_err();
    assert!(err.to_string().contains("only RestApi"), "{err}");
    let err = split("f.yaml", "a: [\n").unwrap_err();
    assert!(err.to_string().starts_with("f.yaml (document 1): not YAML"), "{err}");
    let err = split("f.yaml", "- a\n").unwrap_err();
    assert!(err.to_string().contains("mapping"), "{err}");
}

#[test]
fn tables_align_columns_and_show_dashes_for_nothing() {
    let apis = [
        json!({"metadata": {"name": "files-v1"}, "spec": {"version": "v1", "context": "/files/v1"},
               "status": {"state": "deployed", "origin": "gateway_api", "updatedAt": "2026-01-01T00:00:00Z"}}),
        json!({"metadata": {"name": "x"}, "spec": {"version": "v10"}, "status": {"state": "pending"}}),
        json!({"metadata": {"name": "y"}, "spec": {"version": "v2", "context": "/y/$version"}}),
    ];
    let text = apis_table(&apis).render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "NAME       VERSION   CONTEXT     STATE      ORIGIN        UPDATED"
    );
    assert_eq!(
        lines[1],
        "files-v1   v1        /files/v1   deployed   gateway_api   2026-01-01T00:00:00Z"
    );
    assert_eq!(lines[2], "x          v10       -           pending    -             -");
    assert_eq!(lines[3], "y          v2        /y/v2       -          -             -");

    let plans = [
        json!({"id": "p1", "planName": "Gold", "throttleLimitCount": 100, "throttleLimitUnit": "Min",
                        "stopOnQuotaReach": true, "status": "ACTIVE"}),
    ];
    assert!(
        plans_table(&plans)
            .render()
            .contains("p1   Gold   100/Min   true            ACTIVE")
    );
    let subs = [json!({"id": "s1", "apiId": "a1", "status": "ACTIVE"})];
    assert!(
        subscriptions_table(&subs)
            .render()
            .contains("s1   a1    -             -      ACTIVE")
    );
    let secrets = [
        json!({"metadata": {"name": "tok"}, "spec": {"displayName": "Token", "value": "never"},
                          "status": {"updatedAt": "2026-01-01T00:00:00Z"}}),
    ];
    let text = secrets_table(&secrets).render();
    assert!(text.contains("tok   Token          2026-01-01T00:00:00Z"), "{text}");
    assert!(!text.contains("never"));
}

#[test]
fn status_sums_up_each_envoy() {
    let node = json!({"nodeId": "envoy-1", "types": {
        "cds": {"active": true, "ackedGeneration": 7, "pending": false, "lastNack": null},
        "lds": {"active": true, "ackedGeneration": 5, "pending": false,
                "lastNack": {"version": "3", "message": "bad listener", "at": "t"}},
        "custom": {"active": false, "ackedGeneration": 0, "pending": false, "lastNack": null}}});
    let s = summarize(&node);
    assert_eq!((s.acked, s.pending), (5, false));
    assert_eq!(
        s.nacks,
        vec![("lds".to_string(), "version 3 at t: bad listener".to_string())]
    );

    let sync = json!({"generation": 7, "nodes": [node], "failedApis": [{"id": "bad", "message": "rejected"}]});
    let text = report(&json!({"status": "ready"}), &sync, &json!({"state": "disabled"}));
    assert!(text.contains("Controller:     ready"), "{text}");
    assert!(text.contains("Failed APIs:    bad (rejected)"), "{text}");
    assert!(text.contains("envoy-1"), "{text}");
    assert!(text.contains("  envoy-1 lds: version 3 at t: bad listener"), "{text}");
    let text = report(
        &json!({"status": "not ready", "reasons": ["database: not answering"]}),
        &json!({"generation": 1, "nodes": []}),
        &json!({"state": "stopped", "stoppedReason": "401"}),
    );
    assert!(text.contains("NOT READY: database: not answering"), "{text}");
    assert!(text.contains("stopped (stopped: 401)"), "{text}");
    assert!(text.contains("No Envoy is connected."), "{text}");
}

#[test]
fn completion_covers_every_command() {
    use clap_complete::Shell;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command(), "tollgate", &mut out);
        let script = String::from_utf8(out).unwrap();
        for word in [
            "apply",
            "get",
            "keys",
            "regenerate",
            "status",
            "serve",
            "authz-replica",
            "output",
        ] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
}
