//! The sync task: every interval, one pipelined round trip sends what this replica admitted since
//! the last sync (`INCRBY`, with the key expiring after its window) and reads back the totals.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use super::{SharedQuotas, Slot, SlotState, key};

/// A slot served within this many seconds is synced every interval even when idle here, so the
/// others' count it holds stays fresh.
const BUSY_S: u64 = 2;
/// A slot served within this many seconds (but not within [`BUSY_S`]) is refreshed once every
/// [`IDLE_REFRESH`], so a replica that serves a subscription now and then does not decide its next
/// request on a count minutes old; past it, the slot is synced again on its next check.
const KEEP_SYNCING_S: u64 = 60;
const IDLE_REFRESH: Duration = Duration::from_secs(1);
/// Keys outlive their window by this much, so a late sync never recreates a key without expiry.
const KEY_GRACE_S: u64 = 60;
/// A round trip slower than this counts as the store being unreachable.
const ROUND_TRIP_LIMIT: Duration = Duration::from_millis(500);
/// With nothing to sync, the store is still pinged this often, so a closed failure mode notices
/// an outage (and its end) without traffic.
const PING_EVERY: Duration = Duration::from_secs(1);
/// Slots whose window has ended and that have not been served for this long are dropped.
const PURGE_AFTER_S: u64 = 120;

/// Runs until `quotas` is dropped.
pub(super) async fn run(quotas: Weak<SharedQuotas>, client: redis::Client, every: Duration) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(ROUND_TRIP_LIMIT))
        .set_response_timeout(Some(ROUND_TRIP_LIMIT))
        .set_number_of_retries(1);
    let mut conn = match ConnectionManager::new_lazy_with_config(client, config) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "quota store client could not be set up; quotas are counted per replica");
            return;
        }
    };
    let mut held: Vec<Arc<Slot>> = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_contact = Instant::now();
    let mut last_purge = unix_now();
    let mut last_idle_refresh = Instant::now();
    loop {
        tick.tick().await;
        let Some(q) = quotas.upgrade() else { return };
        let now = unix_now();
        held.append(&mut q.touched.lock().unwrap_or_else(|e| e.into_inner()));
        let refresh_idle = last_idle_refresh.elapsed() >= IDLE_REFRESH;
        if refresh_idle {
            last_idle_refresh = Instant::now();
        }
        let batch: Vec<(Arc<Slot>, SlotState)> = held
            .iter()
            .filter_map(|s| {
                let st = *s.state.lock().unwrap_or_else(|e| e.into_inner());
                let busy = st.pending > 0 || s.touched_at.load(Ordering::Relaxed) + BUSY_S >= now;
                (st.window_end > now && (busy || refresh_idle)).then(|| (s.clone(), st))
            })
            .collect();
        if batch.is_empty() {
            if last_contact.elapsed() >= PING_EVERY {
                let pong = round_trip::<String>(&mut conn, redis::cmd("PING").into()).await;
                set_up(&q, pong.is_ok());
                last_contact = Instant::now();
            }
        } else {
            let totals = round_trip::<Vec<u64>>(&mut conn, pipeline(&batch).into()).await;
            if let Ok(totals) = &totals {
                apply(&batch, totals);
            }
            set_up(&q, totals.is_ok());
            last_contact = Instant::now();
        }
        forget(&mut held, now);
        if now >= last_purge + PURGE_AFTER_S {
            purge(&q, now);
            last_purge = now;
        }
    }
}

/// `INCRBY` and `EXPIREAT` for each slot (the answers are the `INCRBY` totals, in order).
fn pipeline(batch: &[(Arc<Slot>, SlotState)]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for (slot, st) in batch {
        let k = key(&slot.id, st.window_start);
        pipe.cmd("INCRBY").arg(&k).arg(st.pending);
        pipe.cmd("EXPIREAT").arg(&k).arg(st.window_end + KEY_GRACE_S).ignore();
    }
    pipe
}

/// One command or pipeline, bounded by [`ROUND_TRIP_LIMIT`].
async fn round_trip<T: redis::FromRedisValue>(conn: &mut ConnectionManager, what: Query) -> Result<T, ()> {
    let fut = async {
        match what {
            Query::Pipe(p) => p.query_async::<T>(conn).await,
            Query::Cmd(c) => c.query_async::<T>(conn).await,
        }
    };
    match tokio::time::timeout(ROUND_TRIP_LIMIT, fut).await {
        Ok(Ok(v)) => Ok(v),
        _ => Err(()),
    }
}

/// A single command or a pipeline.
enum Query {
    Pipe(redis::Pipeline),
    Cmd(redis::Cmd),
}

impl From<redis::Pipeline> for Query {
    fn from(p: redis::Pipeline) -> Self {
        Query::Pipe(p)
    }
}

impl From<redis::Cmd> for Query {
    fn from(c: redis::Cmd) -> Self {
        Query::Cmd(c)
    }
}

/// Marks what was sent as sent and takes the others' new count from each total.
fn apply(batch: &[(Arc<Slot>, SlotState)], totals: &[u64]) {
    for ((slot, sent), total) in batch.iter().zip(totals) {
        let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.window_start != sent.window_start {
            continue; // a new window began meanwhile: the old one's counts no longer matter
        }
        st.pending -= sent.pending;
        st.sent += sent.pending;
        st.others = total.saturating_sub(st.sent);
    }
}

/// Records whether the store answered, logging each change once.
fn set_up(q: &SharedQuotas, up: bool) {
    if up {
        q.syncs.fetch_add(1, Ordering::AcqRel);
    }
    if q.up.swap(up, Ordering::AcqRel) == up {
        return;
    }
    if up {
        info!("quota store reachable again; quotas are shared between replicas");
    } else {
        warn!(
            failure_mode = %q.failure_mode,
            "quota store unreachable; open: counting per replica until it is back, closed: \
             refusing quota-limited requests"
        );
    }
}

/// Stops syncing slots neither served lately nor holding unsent counts.
fn forget(held: &mut Vec<Arc<Slot>>, now: u64) {
    let keep = |s: &Slot| {
        let st = s.state.lock().unwrap_or_else(|e| e.into_inner());
        st.window_end > now && (st.pending > 0 || s.touched_at.load(Ordering::Relaxed) + KEEP_SYNCING_S >= now)
    };
    held.retain(|s| {
        if keep(s) {
            return true;
        }
        s.queued.store(false, Ordering::SeqCst);
        // A check between the test and the store saw `queued` still set and did not queue the
        // slot: keep it, unless that check or a later one has queued it again meanwhile.
        keep(s) && !s.queued.swap(true, Ordering::SeqCst)
    });
}

/// Drops the slots of ended windows not served for a while (a slot within its window must stay:
/// it remembers what this replica sent, which the store's total includes).
fn purge(q: &SharedQuotas, now: u64) {
    let mut slots = q.slots.write().unwrap_or_else(|e| e.into_inner());
    slots.retain(|_, s| {
        let end = s.state.lock().unwrap_or_else(|e| e.into_inner()).window_end;
        s.queued.load(Ordering::SeqCst) || end > now || s.touched_at.load(Ordering::Relaxed) + PURGE_AFTER_S >= now
    });
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
