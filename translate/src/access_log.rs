//! The gateway listeners' access log: one JSON object per request, to Envoy's standard output or
//! to a file. It names the request (method, path without its query, status, duration), where it
//! went (upstream host and cluster, the API handle from the route's metadata), and who opened it
//! (the key's name and subscription, from the headers ext_authz adds), and never the key: no
//! key header is logged, and the query, where a key may travel, is cut off the path.

use tollgate_proto::envoy_types::util::pack_any;
use tollgate_proto::pb::envoy::config::accesslog::v3::{AccessLog as AccessLogConfig, access_log};
use tollgate_proto::pb::envoy::config::core::v3::{
    SubstitutionFormatString, TypedExtensionConfig, substitution_format_string,
};
use tollgate_proto::pb::envoy::extensions::access_loggers::file::v3::{FileAccessLog, file_access_log};
use tollgate_proto::pb::envoy::extensions::access_loggers::stream::v3::{StdoutAccessLog, stdout_access_log};
use tollgate_proto::pb::envoy::extensions::formatter::req_without_query::v3::ReqWithoutQuery;
use tollgate_proto::pb::google::protobuf::{Struct, Value, value};

/// The route metadata namespace the translator writes (`api`: the API's handle).
pub const METADATA_NAMESPACE: &str = "tollgate";

/// Where the gateway listeners log requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AccessLog {
    /// No access log.
    Off,
    /// Envoy's standard output.
    #[default]
    Stdout,
    /// A file on the Envoy's host, appended to.
    File(String),
}

/// The fields of each log line and the command operator that fills each. Request headers are read
/// when the request ends, so they include what ext_authz added (the client's own `x-tollgate-*`
/// headers are removed before that). The path is the one the client sent (before any rewrite).
const FIELDS: &[(&str, &str)] = &[
    ("start_time", "%START_TIME%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("status", "%RESPONSE_CODE%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("duration_ms", "%DURATION%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER%"),
    ("api", "%METADATA(ROUTE:tollgate:api)%"),
    ("route", "%ROUTE_NAME%"),
    ("key_name", "%REQ(X-TOLLGATE-KEY-NAME)%"),
    ("application", "%REQ(X-TOLLGATE-APPLICATION)%"),
    ("subscription", "%REQ(X-TOLLGATE-SUBSCRIPTION)%"),
    ("client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
];

/// The access log configuration for a listener's connection manager (none when off).
pub fn access_logs(log: &AccessLog) -> Vec<AccessLogConfig> {
    let (name, config) = match log {
        AccessLog::Off => return vec![],
        AccessLog::Stdout => (
            "envoy.access_loggers.stdout",
            pack_any(StdoutAccessLog {
                access_log_format: Some(stdout_access_log::AccessLogFormat::LogFormat(format())),
            }),
        ),
        AccessLog::File(path) => (
            "envoy.access_loggers.file",
            pack_any(FileAccessLog {
                path: path.clone(),
                access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(format())),
            }),
        ),
    };
    vec![AccessLogConfig {
        name: name.into(),
        config_type: Some(access_log::ConfigType::TypedConfig(config)),
        ..Default::default()
    }]
}

/// The JSON line: [`FIELDS`], with the formatter extension that provides `REQ_WITHOUT_QUERY`.
fn format() -> SubstitutionFormatString {
    let fields = FIELDS
        .iter()
        .map(|(k, v)| {
            let v = Value {
                kind: Some(value::Kind::StringValue((*v).into())),
            };
            ((*k).to_string(), v)
        })
        .collect();
    SubstitutionFormatString {
        format: Some(substitution_format_string::Format::JsonFormat(Struct { fields })),
        formatters: vec![TypedExtensionConfig {
            name: "envoy.formatter.req_without_query".into(),
            typed_config: Some(pack_any(ReqWithoutQuery {})),
        }],
        ..Default::default()
    }
}

/// The route metadata naming the API a route belongs to, read by the `api` field.
pub fn route_metadata(handle: &str) -> tollgate_proto::pb::envoy::config::core::v3::Metadata {
    let api = Value {
        kind: Some(value::Kind::StringValue(handle.into())),
    };
    let fields = [("api".to_string(), api)].into_iter().collect();
    tollgate_proto::pb::envoy::config::core::v3::Metadata {
        filter_metadata: [(METADATA_NAMESPACE.to_string(), Struct { fields })]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}
