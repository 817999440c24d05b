//! Exact per-subscription quotas in fixed UTC calendar windows (minute, hour, day, month).
//!
//! Each subscription owns one [`Counter`]: a single `AtomicU64` packing the start of the window
//! it counts (in minutes since the Unix epoch) and the count in it. A check is one
//! compare-and-swap loop on that word, so concurrent checks admit exactly `limit` requests per
//! window, and a new window starts at zero without any sweeper. Fixed calendar windows (as WSO2's
//! plans define them: "3 per minute" resets at the minute) make the count a single number that can
//! be persisted and restored, and later shared between replicas, which a sliding window cannot.
//!
//! The counters are held by [`Quotas`], keyed by subscription id, so an index rebuild finds each
//! subscription's counter again and never resets a count. [`QuotaBackend`] is the seam for a
//! shared counter store: the decision code only calls [`QuotaBackend::take`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The length of a quota window: fixed UTC calendar windows; each resets at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaUnit {
    Minute,
    Hour,
    Day,
    Month,
    /// A fixed window of this many seconds (at least one), aligned to the Unix epoch: the
    /// rate-limit policies' durations ("1s", "90s", "24h"). Its counters are never snapshotted.
    Seconds(u32),
}

/// A plan's limit: `count` requests per `unit`; past it, refused when `stop_on_reach`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanLimit {
    pub count: u64,
    pub unit: QuotaUnit,
    pub stop_on_reach: bool,
}

/// One subscription's count in one window, for persistence ([`Quotas::snapshot`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaState {
    /// The subscription id.
    pub subscription: String,
    /// Unix seconds at which the window started.
    pub window_start: u64,
    /// Requests counted in it.
    pub count: u64,
}

/// What counting one request found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Take {
    /// Whether the request may pass (always, unless the plan stops at its limit).
    pub admitted: bool,
    /// The plan's limit.
    pub limit: u64,
    /// Requests counted in the window, this one included when admitted.
    pub used: u64,
    /// Unix seconds at which the window started and ends (the reset).
    pub window_start: u64,
    pub window_end: u64,
}

/// Bits of the count in a counter word; the rest is the window's start minute.
const COUNT_BITS: u32 = 36;
/// The largest count a window holds (about 68.7 billion); larger limits behave as this one.
pub const MAX_COUNT: u64 = (1 << COUNT_BITS) - 1;

/// One subscription's count in its current window.
#[derive(Debug, Default)]
pub struct Counter {
    /// `start_minute << COUNT_BITS | count`.
    word: AtomicU64,
    /// The unit last counted with (0 none, else `unit_code`), so a snapshot knows window ends.
    unit: AtomicU8,
}

/// Counts requests against a plan's limit. The local implementation ([`LocalQuotas`]) is exact
/// within one process; a shared store (budget leased from Redis or Valkey, say) implements the same
/// call, using the subscription's local [`Counter`] as its lease, and the decision code stays as is.
pub trait QuotaBackend: Send + Sync + Debug {
    /// Counts one request of `subscription` (whose local counter is `counter`) at `now`.
    fn take(&self, subscription: &str, counter: &Counter, limit: &PlanLimit, now: u64) -> Take;
}

/// The in-process backend: the counter is the truth.
#[derive(Debug, Default)]
pub struct LocalQuotas;

/// Every subscription's counter, by subscription id: what index rebuilds, snapshots and restores
/// go through. The hot path never takes its lock (records hold their counter).
#[derive(Debug, Default)]
pub struct Quotas {
    counters: Mutex<HashMap<Arc<str>, Arc<Counter>>>,
}

// === impl Counter ===

impl Counter {
    /// Counts one request at `now` under `limit`: one CAS loop, exact under any concurrency.
    pub fn take(&self, limit: &PlanLimit, now: u64) -> Take {
        let (start, end) = window(limit.unit, now);
        let minute = window_tag(limit.unit, start);
        let cap = limit.count.min(MAX_COUNT);
        let code = unit_code(limit.unit);
        // Written only when it changes, so refused requests under a flood only read shared lines.
        if self.unit.load(Ordering::Relaxed) != code {
            self.unit.store(code, Ordering::Relaxed);
        }
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let used = match unpack(current) {
                (m, c) if m == minute => c,
                _ => 0,
            };
            let over = used >= cap;
            if over && limit.stop_on_reach {
                return Take {
                    admitted: false,
                    limit: limit.count,
                    used,
                    window_start: start,
                    window_end: end,
                };
            }
            let next = pack(minute, (used + 1).min(MAX_COUNT));
            match self
                .word
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Take {
                        admitted: true,
                        limit: limit.count,
                        used: used + 1,
                        window_start: start,
                        window_end: end,
                    };
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// The window start (Unix seconds) and count held, whatever the window.
    pub fn load(&self) -> (u64, u64) {
        let (minute, count) = unpack(self.word.load(Ordering::Acquire));
        (minute * 60, count)
    }

    /// Sets the count of the window starting at `window_start`, keeping the larger of the two if
    /// the counter already counts that window.
    fn restore(&self, window_start: u64, count: u64) {
        let minute = window_start / 60;
        let _ = self.word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
            let (m, c) = unpack(w);
            let keep = if m == minute { c } else { 0 };
            Some(pack(minute, count.min(MAX_COUNT).max(keep)))
        });
    }

    /// The unit last counted with.
    fn unit(&self) -> Option<QuotaUnit> {
        unit_of_code(self.unit.load(Ordering::Relaxed))
    }
}

fn pack(minute: u64, count: u64) -> u64 {
    (minute << COUNT_BITS) | (count & MAX_COUNT)
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> COUNT_BITS, word & MAX_COUNT)
}

/// What a counter word stores of a window's start: its minute for calendar units (so
/// [`Counter::load`] can tell the start back); for [`QuotaUnit::Seconds`], whose windows may be
/// shorter than a minute, the window's number, wrapped to the word's bits (two windows that far
/// apart are never compared: the counter would have been reset in between).
fn window_tag(unit: QuotaUnit, start: u64) -> u64 {
    match unit {
        QuotaUnit::Seconds(n) => (start / u64::from(n.max(1))) & (u64::MAX >> COUNT_BITS),
        _ => start / 60,
    }
}

fn unit_code(u: QuotaUnit) -> u8 {
    match u {
        QuotaUnit::Minute => 1,
        QuotaUnit::Hour => 2,
        QuotaUnit::Day => 3,
        QuotaUnit::Month => 4,
        // Not told back by `unit_of_code`: such counters are not snapshotted.
        QuotaUnit::Seconds(_) => 5,
    }
}

fn unit_of_code(c: u8) -> Option<QuotaUnit> {
    Some(match c {
        1 => QuotaUnit::Minute,
        2 => QuotaUnit::Hour,
        3 => QuotaUnit::Day,
        4 => QuotaUnit::Month,
        _ => return None,
    })
}

// === impl LocalQuotas ===

impl QuotaBackend for LocalQuotas {
    fn take(&self, _subscription: &str, counter: &Counter, limit: &PlanLimit, now: u64) -> Take {
        counter.take(limit, now)
    }
}

// === impl Quotas ===

impl Quotas {
    /// The counter of subscription `id`, created empty if it has none yet.
    pub fn counter(&self, id: &Arc<str>) -> Arc<Counter> {
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.clone()).or_default().clone()
    }

    /// Every non-empty count in a window that has not ended yet, for persistence.
    pub fn snapshot(&self) -> Vec<QuotaState> {
        self.snapshot_where(super::unix_now(), |_| true)
    }

    /// The non-empty counts of the units `keep` accepts (e.g. only days and months, the windows
    /// worth persisting) whose window has not ended at `now`.
    pub fn snapshot_where(&self, now: u64, keep: impl Fn(QuotaUnit) -> bool) -> Vec<QuotaState> {
        let map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter_map(|(id, c)| {
                let (start, count) = c.load();
                // A restored count not yet taken from has no unit: kept (whatever `keep` says) as
                // long as the longest window, so a second restart before the next request does
                // not lose it.
                let end = match c.unit() {
                    Some(u) if !keep(u) => return None,
                    Some(u) => window(u, start).1,
                    None => start + 31 * 86_400,
                };
                (count > 0 && end > now).then(|| QuotaState {
                    subscription: id.to_string(),
                    window_start: start,
                    count,
                })
            })
            .collect()
    }

    /// Puts persisted counts back (at startup, before or after the subscriptions are indexed: a
    /// subscription indexed later picks its restored counter up). A state whose window has ended
    /// is harmless: the next check starts a new window.
    pub fn restore(&self, states: impl IntoIterator<Item = QuotaState>) {
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for s in states {
            let c = map.entry(Arc::from(s.subscription.as_str())).or_default();
            c.restore(s.window_start, s.count);
        }
    }

    /// Drops the counters no indexed subscription holds whose window is over (or, unit unknown,
    /// that are empty or older than the longest window), so removed subscriptions do not
    /// accumulate; a subscription removed and added back within its window keeps its count.
    pub fn purge(&self, now: u64) {
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, c| {
            if Arc::strong_count(c) > 1 {
                return true;
            }
            let (start, count) = c.load();
            let end = match c.unit() {
                Some(u) => window(u, start).1,
                None => start + 31 * 86_400,
            };
            count > 0 && end > now
        });
    }

    /// How many counters are held.
    pub fn len(&self) -> usize {
        self.counters.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// === calendar windows ===

/// The UTC window of `unit` containing `now`: `(start, end)` in Unix seconds, end exclusive.
pub fn window(unit: QuotaUnit, now: u64) -> (u64, u64) {
    let fixed = |len: u64| {
        let start = now - now % len;
        (start, start + len)
    };
    match unit {
        QuotaUnit::Minute => fixed(60),
        QuotaUnit::Hour => fixed(3_600),
        QuotaUnit::Day => fixed(86_400),
        QuotaUnit::Seconds(n) => fixed(u64::from(n.max(1))),
        QuotaUnit::Month => {
            let (y, m, _) = civil_from_days(now / 86_400);
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(y, m, 1) * 86_400, days_from_civil(ny, nm, 1) * 86_400)
        }
    }
}

/// The (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian; days ≥ 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Eras of 400 years (146,097 days) counted from 0000-03-01, so leap days fall at year ends.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a date on or after it.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

#[cfg(test)]
mod tests;
