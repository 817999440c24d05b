//! The listeners' access log: JSON lines naming the request, its upstream, its API and the key's
//! name, never the key; on standard output by default, to a file, or off.

use prost::Message;
use tollgate_proto::pb::envoy::config::accesslog::v3::{AccessLog as AccessLogConfig, access_log};
use tollgate_proto::pb::envoy::config::core::v3::substitution_format_string::Format;
use tollgate_proto::pb::envoy::config::listener::v3::{Listener, filter};
use tollgate_proto::pb::envoy::extensions::access_loggers::file::v3::{FileAccessLog, file_access_log};
use tollgate_proto::pb::envoy::extensions::access_loggers::stream::v3::{StdoutAccessLog, stdout_access_log};
use tollgate_proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use tollgate_xds::{DEFAULT_GROUP, Store, TypeKind};

use super::super::*;
use super::{golden, settings, stable};

/// The access logs of every listener `settings` gives.
fn listener_logs(settings: Settings) -> Vec<(String, Vec<AccessLogConfig>)> {
    let store = Store::new();
    store.publish(DEFAULT_GROUP, Translator::new(settings).initial().unwrap());
    let group = store.group(DEFAULT_GROUP);
    group
        .names(TypeKind::Listener)
        .into_iter()
        .map(|name| {
            let r = group.get(TypeKind::Listener, &name).unwrap();
            let any = tollgate_proto::pb::google::protobuf::Any::decode(r.any().as_ref()).unwrap();
            let listener = Listener::decode(any.value.as_slice()).unwrap();
            let Some(filter::ConfigType::TypedConfig(hcm)) = &listener.filter_chains[0].filters[0].config_type else {
                panic!("no HCM config in {name}");
            };
            let hcm = HttpConnectionManager::decode(hcm.value.as_slice()).unwrap();
            (name.to_string(), hcm.access_log)
        })
        .collect()
}

fn typed(log: &AccessLogConfig) -> &[u8] {
    match &log.config_type {
        Some(access_log::ConfigType::TypedConfig(any)) => &any.value,
        None => panic!("no typed config"),
    }
}

fn fields(format: &Format) -> std::collections::BTreeMap<String, String> {
    let Format::JsonFormat(s) = format else {
        panic!("not JSON: {format:?}")
    };
    s.fields
        .iter()
        .map(|(k, v)| match &v.kind {
            Some(tollgate_proto::pb::google::protobuf::value::Kind::StringValue(v)) => (k.clone(), v.clone()),
            other => panic!("{k}: {other:?}"),
        })
        .collect()
}

#[test]
fn both_listeners_log_json_to_stdout_by_default_without_the_key() {
    let tls = Settings {
        tls: Some(TlsMaterial {
            cert_path: "/c.pem".into(),
            key_path: "/k.pem".into(),
        }),
        ..settings()
    };
    let logs = listener_logs(tls);
    assert_eq!(logs.len(), 2, "HTTP and HTTPS");
    for (name, logs) in &logs {
        assert_eq!(logs.len(), 1, "{name}");
        assert_eq!(logs[0].name, "envoy.access_loggers.stdout");
        let stdout = StdoutAccessLog::decode(typed(&logs[0])).unwrap();
        let Some(stdout_access_log::AccessLogFormat::LogFormat(format)) = stdout.access_log_format else {
            panic!("no format");
        };
        assert_eq!(format.formatters[0].name, "envoy.formatter.req_without_query");
        let f = fields(format.format.as_ref().unwrap());
        assert_eq!(f["path"], "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%");
        assert_eq!(f["key_name"], "%REQ(X-TOLLGATE-KEY-NAME)%");
        assert_eq!(f["subscription"], "%REQ(X-TOLLGATE-SUBSCRIPTION)%");
        assert_eq!(
            f["api"],
            format!("%METADATA(ROUTE:{}:api)%", crate::access_log::METADATA_NAMESPACE)
        );
        for (k, v) in &f {
            let v = v.to_ascii_lowercase();
            // Nothing that can hold a key: its headers, the query, the whole path, all headers.
            assert!(
                !v.contains("api-key") && !v.contains("apikey") && !v.contains("authorization"),
                "{k}: {v}"
            );
            assert!(!v.contains("query") || v.starts_with("%req_without_query("), "{k}: {v}");
            assert!(
                !v.contains("(:path)") && !v.contains("?:path)%") || k == "path",
                "{k}: {v}"
            );
        }
        for field in [
            "method",
            "status",
            "duration_ms",
            "upstream_host",
            "upstream_cluster",
            "route",
        ] {
            assert!(f.contains_key(field), "{field} missing: {f:?}");
        }
    }
    // The golden file shows the whole access log configuration.
    let stdout = StdoutAccessLog::decode(typed(&logs[0].1[0])).unwrap();
    let yaml = serde_yaml::to_string(&stable::stable(&format!("{stdout:#?}"))).unwrap();
    golden("access_log.yaml", &yaml);
}

#[test]
fn the_access_log_goes_to_a_file_or_nowhere() {
    let file = Settings {
        access_log: AccessLog::File("/var/log/envoy/access.json".into()),
        ..settings()
    };
    let logs = listener_logs(file);
    assert_eq!(logs[0].1[0].name, "envoy.access_loggers.file");
    let f = FileAccessLog::decode(typed(&logs[0].1[0])).unwrap();
    assert_eq!(f.path, "/var/log/envoy/access.json");
    assert!(matches!(
        f.access_log_format,
        Some(file_access_log::AccessLogFormat::LogFormat(_))
    ));
    let off = Settings {
        access_log: AccessLog::Off,
        ..settings()
    };
    assert!(listener_logs(off).iter().all(|(_, logs)| logs.is_empty()));
}

#[test]
fn every_route_names_its_api_for_the_log() {
    let mut t = Translator::new(settings());
    t.set_api(&super::weather()).unwrap();
    let dump = super::dump(&t.all().unwrap());
    assert!(dump.contains("StringValue: weather"), "{dump}");
}
