//! What `synchronous=FULL` costs a write: the latency of one key write (`Db::put_key`, one
//! transaction, as a REST key create commits it) and one revocation (`Db::delete_key`) with the
//! database synced at each commit (`FULL`, what Tollgate runs with) and at checkpoints only
//! (`NORMAL`, before issue #13), in alternating rounds on the same disk.
//!
//! Usage: `cargo run --release -p tollgate-bench --bin db-durability [-- WRITES [ROUNDS] [DIR]]`
//! (defaults 500 writes per round, 2 rounds per setting, the system temp dir). Put `DIR` on the
//! disk the data directory will live on: the cost is the disk's sync latency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tollgate::db::{ApiRow, Db, Durability, KeyRow};
use tollgate::keys::{KeySource, KeyStatus};
use tollgate::origin::Origin;
use tollgate_bench::{micros, percentile};
use tollgate_testkit::envoy::TempDir;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let writes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let base: PathBuf = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("tollgate-bench-durability-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = TempDir(dir.clone());
    println!("{writes} key writes and {writes} revocations per round, {rounds} rounds per setting");
    println!();
    println!("| setting | round | write p50 | write p99 | revoke p50 | revoke p99 |");
    println!("|---|---|---|---|---|---|");
    for round in 1..=rounds {
        for (label, durability) in [("NORMAL", Durability::Normal), ("FULL", Durability::Full)] {
            let file = dir.join(format!("{label}-{round}.db"));
            let (mut put, mut delete) = one_round(&file, durability, writes)?;
            put.sort();
            delete.sort();
            println!(
                "| {label} | {round} | {} | {} | {} | {} |",
                micros(percentile(&put, 50.0)),
                micros(percentile(&put, 99.0)),
                micros(percentile(&delete, 50.0)),
                micros(percentile(&delete, 99.0)),
            );
        }
    }
    Ok(())
}

/// A fresh database at `file`: `writes` keys stored one by one, then revoked one by one.
fn one_round(file: &Path, durability: Durability, writes: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let db = Db::open_with(file, durability)?;
    db.insert_api(&ApiRow {
        handle: "orders".into(),
        uuid: "u-orders".into(),
        display_name: "orders".into(),
        version: "v1".into(),
        document: "{}".into(),
        deployed: true,
        origin: Origin::GatewayApi,
        created_at: "t".into(),
        updated_at: "t".into(),
        deployed_at: None,
        cp_deployment_id: None,
        cp_performed_at: None,
    })?;
    let mut put = Vec::with_capacity(writes);
    for i in 0..writes {
        let row = key(i);
        let t = Instant::now();
        db.put_key(&row)?;
        put.push(t.elapsed());
    }
    let mut delete = Vec::with_capacity(writes);
    for i in 0..writes {
        let name = format!("key-{i}");
        let t = Instant::now();
        anyhow::ensure!(db.delete_key("orders", &name)?, "key {name} was stored");
        delete.push(t.elapsed());
    }
    Ok((put, delete))
}

fn key(i: usize) -> KeyRow {
    KeyRow {
        uuid: format!("uuid-{i}"),
        api: "orders".into(),
        name: format!("key-{i}"),
        digest: format!("{i:064x}"),
        masked: "***abcde".into(),
        status: KeyStatus::Active,
        source: KeySource::Local,
        created_at: "2026-01-01T00:00:00Z".into(),
        created_by: "bench".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        expires_at: None,
        application_id: None,
        application_name: None,
        plan: None,
        previous_digest: None,
        previous_expires_at: None,
        origin: Origin::GatewayApi,
    }
}
