//! The collector that reads the atomics and snapshots on each scrape: xDS, APIs, keys,
//! subscriptions, the platform link, the database, ext_authz and the process.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tollgate_xds::metrics::HistogramSnapshot;
use tollgate_xds::{Flavour, TypeKind};

use super::{AuthzResult, Sources, process};
use crate::app::ApiState;
use crate::platform::LinkPhase;

/// Label pairs of one sample.
type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Reads [`Sources`] at scrape time.
#[derive(Debug)]
pub(super) struct Snapshot {
    sources: Sources,
}

const API_STATES: [ApiState; 4] = [
    ApiState::Deployed,
    ApiState::Undeployed,
    ApiState::Pending,
    ApiState::Failed,
];

const LINK_PHASES: [(LinkPhase, &str); 6] = [
    (LinkPhase::Disabled, "disabled"),
    (LinkPhase::Connecting, "connecting"),
    (LinkPhase::Syncing, "syncing"),
    (LinkPhase::Connected, "connected"),
    (LinkPhase::Waiting, "waiting"),
    (LinkPhase::Stopped, "stopped"),
];

impl Snapshot {
    pub(super) fn new(sources: Sources) -> Snapshot {
        Snapshot { sources }
    }

    fn xds(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let status = &self.sources.status;
        let clients = status.clients();
        let samples: Vec<(Labels, i64)> = clients
            .iter()
            .map(|((group, flavour), n)| {
                (
                    vec![("group", group.as_str()), ("flavour", flavour_name(*flavour))],
                    *n as i64,
                )
            })
            .collect();
        gauges(
            e,
            "tollgate_xds_clients",
            "Envoys (and replicas) with an xDS stream open, by group and flavour",
            &samples,
        )?;
        let m = status.metrics();
        let per_type = |f: &dyn Fn(TypeKind) -> u64| -> Vec<(Labels, u64)> {
            TypeKind::ALL
                .iter()
                .map(|k| (vec![("type", k.short())], f(*k)))
                .collect()
        };
        counters(
            e,
            "tollgate_xds_pushes",
            "xDS responses sent, by type",
            &per_type(&|k| m.pushes(k)),
        )?;
        counters(
            e,
            "tollgate_xds_push_bytes",
            "Encoded xDS response bytes sent, by type",
            &per_type(&|k| m.bytes(k)),
        )?;
        counters(
            e,
            "tollgate_xds_nacks",
            "xDS responses an Envoy rejected, by type (the last reason is in the admin API's xds_sync_status)",
            &per_type(&|k| m.nacks(k)),
        )?;
        histogram(
            e,
            "tollgate_xds_convergence_seconds",
            "Per connected stream, time from the publish of a change to its ACK of every type it asked for",
            &m.convergence().snapshot(),
        )
    }

    fn inventory(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let apis = self.sources.app.apis();
        let samples: Vec<(Labels, i64)> = API_STATES
            .iter()
            .map(|s| {
                let n = apis.iter().filter(|a| a.state() == *s).count();
                (vec![("state", s.as_str())], n as i64)
            })
            .collect();
        gauges(e, "tollgate_apis", "APIs, by state", &samples)?;
        let db = &self.sources.db;
        if let Ok(n) = db.count_all_keys() {
            gauges(
                e,
                "tollgate_keys",
                "API keys stored (counts only)",
                &[(vec![], n as i64)],
            )?;
        }
        if let Some(n) = subscriptions(db) {
            gauges(
                e,
                "tollgate_subscriptions",
                "Subscriptions stored",
                &[(vec![], n as i64)],
            )?;
        }
        Ok(())
    }

    fn platform(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let link = &self.sources.link;
        let phase = link.snapshot().state;
        let samples: Vec<(Labels, i64)> = LINK_PHASES
            .iter()
            .map(|(p, name)| (vec![("state", *name)], i64::from(*p == phase)))
            .collect();
        gauges(
            e,
            "tollgate_platform_link_state",
            "The control-plane link's state (1 for the current one)",
            &samples,
        )?;
        let events: Vec<(Labels, u64)> = link
            .metrics()
            .events()
            .into_iter()
            .map(|(t, o, n)| (vec![("type", t), ("outcome", o)], n))
            .collect();
        counters(
            e,
            "tollgate_platform_events",
            "Control-plane events, by type and outcome",
            &events,
        )?;
        histogram(
            e,
            "tollgate_platform_sync_duration_seconds",
            "Duration of the startup/reconnect sync with the control plane",
            &link.metrics().sync().snapshot(),
        )
    }

    fn checks(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        histogram(
            e,
            "tollgate_db_write_duration_seconds",
            "SQLite write transactions, from start to durable commit",
            &self.sources.db.write_latency().snapshot(),
        )?;
        let authz = &self.sources.authz;
        let results: Vec<(Labels, u64)> = AuthzResult::ALL
            .iter()
            .map(|r| (vec![("result", r.as_str())], authz.count(*r)))
            .collect();
        counters(e, "tollgate_authz_checks", "ext_authz checks, by result", &results)?;
        histogram(
            e,
            "tollgate_authz_check_duration_seconds",
            "ext_authz check latency, of one check in SAMPLE_EVERY (64); the count of checks is tollgate_authz_checks_total",
            &authz.latency().snapshot(),
        )
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        self.xds(&mut e)?;
        self.inventory(&mut e)?;
        self.platform(&mut e)?;
        self.checks(&mut e)?;
        process_metrics(&mut e, &process::read())
    }
}

/// How many subscriptions are stored (made here or pushed by the control plane).
fn subscriptions(db: &crate::db::Db) -> Option<u64> {
    db.count_subscriptions().ok()
}

fn process_metrics(e: &mut DescriptorEncoder, p: &process::Process) -> fmt::Result {
    if let Some(v) = p.rss_bytes {
        gauges(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            &[(vec![], v as i64)],
        )?;
    }
    if let Some(v) = p.cpu_seconds {
        let m = e.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent in seconds",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(v).encode(m)?;
    }
    if let Some(v) = p.open_fds {
        gauges(e, "process_open_fds", "Open file descriptors", &[(vec![], v as i64)])?;
    }
    if let Some(v) = p.max_fds {
        gauges(
            e,
            "process_max_fds",
            "Limit on open file descriptors",
            &[(vec![], v as i64)],
        )?;
    }
    Ok(())
}

fn flavour_name(f: Flavour) -> &'static str {
    match f {
        Flavour::Sotw => "sotw",
        Flavour::Delta => "delta",
    }
}

fn counters(e: &mut DescriptorEncoder, name: &str, help: &str, samples: &[(Labels, u64)]) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    if let [(labels, v)] = samples
        && labels.is_empty()
    {
        return ConstCounter::new(*v).encode(m);
    }
    for (labels, v) in samples {
        ConstCounter::new(*v).encode(m.encode_family(&labels.as_slice())?)?;
    }
    Ok(())
}

fn gauges(e: &mut DescriptorEncoder, name: &str, help: &str, samples: &[(Labels, i64)]) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    if let [(labels, v)] = samples
        && labels.is_empty()
    {
        return ConstGauge::new(*v).encode(m);
    }
    for (labels, v) in samples {
        ConstGauge::new(*v).encode(m.encode_family(&labels.as_slice())?)?;
    }
    Ok(())
}

fn histogram(e: &mut DescriptorEncoder, name: &str, help: &str, h: &HistogramSnapshot) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
}
