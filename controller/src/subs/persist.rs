//! Quota counts on disk: every second the counts of windows still open are written to
//! `quota_windows` (one transaction, only when they changed), and put back at startup, so a spent
//! day or month quota survives a restart or a `kill -9`, losing at most the last second's count.

use std::sync::Arc;
use std::time::Duration;

use tollgate_policies::authz::quota::QuotaState;
use tollgate_policies::authz::subs::SharedSubscriptions;
use tracing::warn;

use crate::db::{Db, DbError, QuotaWindow};

/// How often the counts are written: the most a crash can lose.
pub const EVERY: Duration = Duration::from_secs(1);

/// Puts the stored counts back into `shared`'s counters; how many.
pub fn restore(db: &Db, shared: &SharedSubscriptions) -> Result<usize, DbError> {
    let windows = db.quota_windows()?;
    let n = windows.len();
    shared.quotas().restore(windows.into_iter().map(|w| QuotaState {
        subscription: w.subscription,
        window_start: w.window_start.max(0) as u64,
        count: w.count.max(0) as u64,
    }));
    Ok(n)
}

/// Writes the current counts when they differ from `last`; the counts written.
pub fn flush(db: &Db, shared: &SharedSubscriptions, last: &[QuotaWindow]) -> Result<Vec<QuotaWindow>, DbError> {
    let now = crate::clock::unix_secs().max(0) as u64;
    let mut windows: Vec<QuotaWindow> = shared
        .quotas()
        .snapshot_where(now, |_| true)
        .into_iter()
        .map(|s| QuotaWindow {
            subscription: s.subscription,
            window_start: s.window_start as i64,
            count: s.count.min(i64::MAX as u64) as i64,
        })
        .collect();
    windows.sort_by(|a, b| a.subscription.cmp(&b.subscription));
    if windows != last {
        db.put_quota_windows(&windows)?;
    }
    shared.quotas().purge(now);
    Ok(windows)
}

/// Flushes every [`EVERY`] until dropped (aborted at shutdown, after a last [`flush`]).
pub async fn persist_forever(db: Arc<Db>, shared: Arc<SharedSubscriptions>) {
    let mut last = Vec::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (db, shared, prev) = (db.clone(), shared.clone(), std::mem::take(&mut last));
        // On failure the previous counts come back, so the next tick compares against them.
        let done = tokio::task::spawn_blocking(move || match flush(&db, &shared, &prev) {
            Ok(written) => (written, None),
            Err(e) => (prev, Some(e)),
        });
        match done.await {
            Ok((written, failure)) => {
                last = written;
                if let Some(e) = failure {
                    warn!(error = %e, "cannot store quota counts; retrying");
                }
            }
            Err(_) => warn!("quota persistence task failed; retrying"),
        }
    }
}

/// The persistence task of a running controller.
#[derive(Debug)]
pub struct Persister {
    task: tokio::task::JoinHandle<()>,
    db: Arc<Db>,
    shared: Arc<SharedSubscriptions>,
}

impl Persister {
    /// Starts [`persist_forever`].
    pub fn start(db: Arc<Db>, shared: Arc<SharedSubscriptions>) -> Persister {
        let task = tokio::spawn(persist_forever(db.clone(), shared.clone()));
        Persister { task, db, shared }
    }

    /// Stops the task and writes the counts one last time.
    pub async fn stop(self) {
        self.task.abort();
        let (db, shared) = (self.db, self.shared);
        match tokio::task::spawn_blocking(move || flush(&db, &shared, &[])).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "cannot store quota counts at shutdown"),
            Err(_) => warn!("quota persistence at shutdown failed"),
        }
    }
}
