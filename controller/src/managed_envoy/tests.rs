//! Unit tests of the managed Envoy: environment, rendering, command line, records.

use std::ffi::OsString;
use std::path::PathBuf;

use super::*;

#[test]
fn the_child_keeps_only_what_envoy_needs() {
    let parent = [
        ("PATH", "/usr/bin"),
        ("HOME", "/home/t"),
        ("ENVOY_LOG_LEVEL", "info"),
        ("TOLLGATE_ADMIN_PASSWORD", "hunter2"),
        ("TOLLGATE_CONTROL_PLANE_TOKEN", "cp-token"),
        ("TOLLGATE_REPLICA_TOKEN", "r-token"),
        ("AWS_SECRET_ACCESS_KEY", "aws"),
    ]
    .map(|(k, v)| (OsString::from(k), OsString::from(v)));
    let kept: Vec<String> = child_env(parent)
        .into_iter()
        .map(|(k, _)| k.into_string().unwrap())
        .collect();
    assert_eq!(kept, ["PATH", "HOME", "ENVOY_LOG_LEVEL"]);
}

fn spec(binary: &str, xds: &str, admin_port: u16) -> EnvoySpec {
    EnvoySpec {
        binary: PathBuf::from(binary),
        bootstrap_template: PathBuf::new(),
        node_id: "n".into(),
        node_cluster: "c".into(),
        xds: xds.parse().unwrap(),
        admin_port,
        xds_tls: None,
        args: vec![],
        log_file: None,
    }
}

#[test]
fn render_fills_every_placeholder() {
    let spec = spec("envoy", "0.0.0.0:18000", 9901);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for t in ["envoy/bootstrap-delta.yaml", "envoy/bootstrap-sotw.yaml"] {
        let out = spec.render(&std::fs::read_to_string(root.join(t)).unwrap());
        assert!(!out.contains("${"), "{t} left a placeholder");
        assert!(out.contains("127.0.0.1") && out.contains("18000") && out.contains("9901"));
    }
}

#[tokio::test]
async fn a_missing_binary_says_how_to_install() {
    let spec = spec("/nonexistent/envoy", "127.0.0.1:1", 1);
    let err = spec.launch(&std::env::temp_dir()).await.unwrap_err().to_string();
    assert!(err.contains("make envoy"), "{err}");
}

#[test]
fn hot_restart_is_off_once_whatever_the_args() {
    let file = Path::new("/d/envoy-bootstrap.yaml");
    let count = |s: &EnvoySpec| {
        s.command_args(file)
            .iter()
            .filter(|a| *a == "--disable-hot-restart")
            .count()
    };
    let mut s = spec("envoy", "127.0.0.1:1", 1);
    assert_eq!(count(&s), 1, "hot restart ties Envoy to its parent: off by default");
    s.args = vec!["--disable-hot-restart".into(), "--concurrency".into(), "1".into()];
    assert_eq!(count(&s), 1, "Envoy refuses a flag given twice");
    let args = s.command_args(file);
    assert_eq!(args[..2], [OsString::from("-c"), OsString::from(file)]);
}

#[test]
fn the_identity_follows_everything_that_shapes_envoy() {
    let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
    let bin = Path::new("/bin/envoy");
    let base = record::identity(bin, &args(&["-c", "f"]), "boot", None);
    assert_eq!(base, record::identity(bin, &args(&["-c", "f"]), "boot", None));
    assert_eq!(base.len(), 64);
    let changed = [
        record::identity(Path::new("/other/envoy"), &args(&["-c", "f"]), "boot", None),
        record::identity(bin, &args(&["-c", "f", "--concurrency", "2"]), "boot", None),
        record::identity(bin, &args(&["-c", "f"]), "boot2", None),
        record::identity(bin, &args(&["-c", "f"]), "boot", Some(Path::new("envoy.log"))),
        // Parts do not run together: ("-c", "fboot") is not ("-c", "f") + "boot".
        record::identity(bin, &args(&["-c"]), "fboot", None),
    ];
    for (i, c) in changed.iter().enumerate() {
        assert_ne!(&base, c, "change {i} keeps the identity");
    }
}

#[test]
fn a_record_survives_a_round_trip_and_a_bad_one_reads_as_none() {
    let dir = std::env::temp_dir().join(format!("tollgate-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(RECORD);
    let rec = Record {
        pid: 42,
        admin_port: 9901,
        binary: "/bin/envoy".into(),
        config_path: dir.join(BOOTSTRAP),
        identity: "ab".repeat(32),
    };
    rec.write(&path).unwrap();
    assert_eq!(Record::read(&path), Some(rec));
    std::fs::write(&path, "{not json").unwrap();
    assert_eq!(Record::read(&path), None);
    Record::remove(&path);
    assert_eq!(Record::read(&path), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn only_the_recorded_binary_on_the_recorded_bootstrap_is_ours() {
    let rec = Record {
        pid: 1,
        admin_port: 1,
        binary: "/bin/envoy".into(),
        config_path: "/data/envoy/envoy-bootstrap.yaml".into(),
        identity: String::new(),
    };
    let ours = b"/bin/envoy\0-c\0/data/envoy/envoy-bootstrap.yaml\0--drain-time-s\x005\0";
    assert!(adopt::is_recorded_envoy(ours, &rec));
    for other in [
        &b"/bin/sleep\0-c\0/data/envoy/envoy-bootstrap.yaml\0"[..],
        b"/bin/envoy\0-c\0/elsewhere/envoy-bootstrap.yaml\0",
        b"/bin/envoy\0/data/envoy/envoy-bootstrap.yaml\0",
        b"",
    ] {
        assert!(
            !adopt::is_recorded_envoy(other, &rec),
            "{}",
            String::from_utf8_lossy(other)
        );
    }
}
