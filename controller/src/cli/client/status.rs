//! `tollgate status`: whether the controller is ready (`/ready`), every connected Envoy with the
//! generation it has ACKed and its NACKs (`/xds_sync_status`), and the platform link
//! (`/control_plane`). Exit 0 when ready, 1 when not (the report is printed either way).

use std::process::ExitCode;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::conn::{Api, Client};
use super::output::{Table, cell, emit, items, structured};
use super::{ClientError, Output};

/// One Envoy's standing, summed over the resource types it asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct NodeSummary {
    /// The lowest generation ACKed over its types.
    pub acked: u64,
    /// Whether something is still in flight or held back.
    pub pending: bool,
    /// `(type, text)` of each type's last NACK.
    pub nacks: Vec<(String, String)>,
}

/// Sums up a node of `/xds_sync_status`.
pub fn summarize(node: &Value) -> NodeSummary {
    let mut summary = NodeSummary {
        acked: u64::MAX,
        pending: false,
        nacks: Vec::new(),
    };
    if let Some(types) = node["types"].as_object() {
        for (name, t) in types.iter().filter(|(_, t)| t["active"] == json!(true)) {
            summary.acked = summary.acked.min(t["ackedGeneration"].as_u64().unwrap_or(0));
            summary.pending |= t["pending"] == json!(true);
            let nack = &t["lastNack"];
            if !nack.is_null() {
                let text = format!(
                    "version {} at {}: {}",
                    cell(&nack["version"]),
                    cell(&nack["at"]),
                    cell(&nack["message"])
                );
                summary.nacks.push((name.clone(), text));
            }
        }
    }
    if summary.acked == u64::MAX {
        summary.acked = 0;
    }
    summary
}

/// `GET /xds_sync_status`.
pub async fn xds_sync_status(c: &Client) -> Result<Value, ClientError> {
    c.send(Method::GET, c.url(Api::Admin, &["xds_sync_status"]), None).await
}

/// Runs `status`.
pub(super) async fn run(c: &Client, out: Output) -> Result<ExitCode, ClientError> {
    let (ready_status, ready) = c
        .exchange(Method::GET, c.url(Api::Admin, &["ready"]), None, false)
        .await?;
    let sync = xds_sync_status(c).await?;
    let link = c.send(Method::GET, c.url(Api::Admin, &["control_plane"]), None).await?;
    let code = if ready_status == StatusCode::OK {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    let all = json!({"ready": ready, "xdsSyncStatus": sync, "controlPlane": link["controlPlane"]});
    if !structured(&all, out)? {
        emit(&report(&ready, &sync, &link["controlPlane"]));
    }
    Ok(code)
}

/// The human report.
pub fn report(ready: &Value, sync: &Value, link: &Value) -> String {
    let readiness = match ready["status"].as_str() {
        Some("ready") => "ready".to_string(),
        _ => {
            let reasons: Vec<String> = items(ready, "reasons").iter().map(cell).collect();
            format!("NOT READY: {}", reasons.join("; "))
        }
    };
    let mut link_text = cell(&link["state"]);
    for (key, label) in [
        ("gatewayId", "gateway"),
        ("stoppedReason", "stopped"),
        ("lastError", "last error"),
    ] {
        if let Some(v) = link[key].as_str() {
            link_text.push_str(&format!(" ({label}: {v})"));
        }
    }
    let failed: Vec<String> = items(sync, "failedApis")
        .iter()
        .map(|f| format!("{} ({})", cell(&f["id"]), cell(&f["message"])))
        .collect();
    let generation = sync["generation"].as_u64().unwrap_or(0);
    let mut text = format!(
        "Controller:     {readiness}\nGeneration:     {generation}\nPlatform link:  {link_text}\nFailed APIs:    {}\n\n",
        if failed.is_empty() {
            "none".into()
        } else {
            failed.join(", ")
        }
    );
    let nodes = items(sync, "nodes");
    if nodes.is_empty() {
        text.push_str("No Envoy is connected.\n");
        return text;
    }
    let mut table = Table::new(&[
        "NODE",
        "CLUSTER",
        "GROUP",
        "FLAVOUR",
        "CONNECTED",
        "ACKED",
        "IN SYNC",
        "NACKS",
    ]);
    let mut nacks = String::new();
    for n in nodes {
        let s = summarize(n);
        let in_sync = s.acked >= generation && !s.pending;
        table.row(vec![
            cell(&n["nodeId"]),
            cell(&n["cluster"]),
            cell(&n["group"]),
            cell(&n["flavour"]),
            cell(&n["connectedAt"]),
            s.acked.to_string(),
            if in_sync { "yes" } else { "no" }.into(),
            s.nacks.len().to_string(),
        ]);
        for (kind, nack) in &s.nacks {
            nacks.push_str(&format!("  {} {kind}: {nack}\n", cell(&n["nodeId"])));
        }
    }
    text.push_str(&table.render());
    if !nacks.is_empty() {
        text.push_str("\nLast NACKs:\n");
        text.push_str(&nacks);
    }
    text
}
