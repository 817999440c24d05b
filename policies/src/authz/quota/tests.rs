//! Calendar windows, exact counting under concurrency, snapshots and restores.

use std::sync::Barrier;

use super::*;

const FEB_2024: u64 = 1_706_745_600;
const MAR_2024: u64 = 1_709_251_200;
const DEC_2025: u64 = 1_764_547_200;
const JAN_2026: u64 = 1_767_225_600;

fn limit(count: u64, unit: QuotaUnit, stop_on_reach: bool) -> PlanLimit {
    PlanLimit {
        count,
        unit,
        stop_on_reach,
    }
}

#[test]
fn windows_are_utc_calendar_windows() {
    let t = JAN_2026 + 3_725; // 01:02:05
    assert_eq!(window(QuotaUnit::Minute, t), (JAN_2026 + 3_720, JAN_2026 + 3_780));
    assert_eq!(window(QuotaUnit::Hour, t), (JAN_2026 + 3_600, JAN_2026 + 7_200));
    assert_eq!(window(QuotaUnit::Day, t), (JAN_2026, JAN_2026 + 86_400));
    assert_eq!(window(QuotaUnit::Month, t), (JAN_2026, JAN_2026 + 31 * 86_400));
    // A leap February, and a December that ends in the next year.
    assert_eq!(
        window(QuotaUnit::Month, FEB_2024 + 28 * 86_400 + 5),
        (FEB_2024, MAR_2024)
    );
    assert_eq!(window(QuotaUnit::Month, MAR_2024 - 1), (FEB_2024, MAR_2024));
    assert_eq!(window(QuotaUnit::Month, MAR_2024), (MAR_2024, MAR_2024 + 31 * 86_400));
    assert_eq!(window(QuotaUnit::Month, JAN_2026 - 1), (DEC_2025, JAN_2026));
    assert_eq!(window(QuotaUnit::Month, 0), (0, 31 * 86_400));
    assert_eq!(window(QuotaUnit::Minute, 59), (0, 60));
}

#[test]
fn civil_dates_round_trip_over_centuries() {
    assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
    assert_eq!(civil_from_days(4_107_542_400 / 86_400), (2100, 3, 1));
    for days in (0..200_000u64).step_by(7) {
        let (y, m, d) = civil_from_days(days);
        assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{days}");
        assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
    }
}

#[test]
fn forty_concurrent_checks_on_a_limit_of_ten_admit_exactly_ten() {
    for round in 0..20 {
        let counter = Arc::new(Counter::default());
        let barrier = Arc::new(Barrier::new(40));
        let plan = limit(10, QuotaUnit::Minute, true);
        let threads: Vec<_> = (0..40)
            .map(|_| {
                let (c, b) = (counter.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    c.take(&plan, JAN_2026 + 5).admitted
                })
            })
            .collect();
        let admitted = threads.into_iter().map(|t| t.join().unwrap()).filter(|a| *a).count();
        assert_eq!(admitted, 10, "round {round}");
        assert_eq!(counter.load(), (JAN_2026, 10), "refusals are not counted");
    }
}

#[test]
fn counting_stops_or_goes_on_and_resets_with_the_window() {
    let c = Counter::default();
    let hard = limit(2, QuotaUnit::Hour, true);
    let t = JAN_2026 + 10;
    let takes: Vec<(bool, u64)> = (0..3).map(|_| c.take(&hard, t)).map(|x| (x.admitted, x.used)).collect();
    assert_eq!(takes, vec![(true, 1), (true, 2), (false, 2)]);
    let x = c.take(&hard, t);
    assert_eq!((x.window_start, x.window_end), (JAN_2026, JAN_2026 + 3_600));
    assert!(c.take(&hard, JAN_2026 + 3_600).admitted, "a new hour");
    let soft = limit(1, QuotaUnit::Minute, false);
    let c = Counter::default();
    let used: Vec<u64> = (0..3)
        .map(|_| c.take(&soft, t))
        .inspect(|x| assert!(x.admitted))
        .map(|x| x.used)
        .collect();
    assert_eq!(used, vec![1, 2, 3], "a soft limit keeps counting");
    // A limit above what a window holds behaves as the largest one.
    let huge = limit(u64::MAX, QuotaUnit::Day, true);
    assert!(Counter::default().take(&huge, t).admitted);
}

#[test]
fn two_subscriptions_never_share_a_count() {
    let q = Quotas::default();
    let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
    let plan = limit(1, QuotaUnit::Day, true);
    assert!(q.counter(&a).take(&plan, JAN_2026).admitted);
    assert!(!q.counter(&a).take(&plan, JAN_2026).admitted);
    assert!(q.counter(&b).take(&plan, JAN_2026).admitted, "b has its own count");
    assert!(Arc::ptr_eq(&q.counter(&a), &q.counter(&a)), "one counter per id");
}

#[test]
fn snapshots_hold_current_non_empty_windows_and_restore_them() {
    let q = Quotas::default();
    let day = limit(5, QuotaUnit::Day, true);
    let minute = limit(5, QuotaUnit::Minute, true);
    let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
    for _ in 0..3 {
        q.counter(&a).take(&day, JAN_2026 + 100);
    }
    q.counter(&b).take(&minute, JAN_2026 + 100);
    let _empty = q.counter(&c);
    let mut snap = q.snapshot_where(JAN_2026 + 200, |_| true);
    snap.sort_by(|x, y| x.subscription.cmp(&y.subscription));
    assert_eq!(
        snap,
        vec![QuotaState {
            subscription: "a".into(),
            window_start: JAN_2026,
            count: 3
        }],
        "b's minute is over, c is empty"
    );
    assert_eq!(
        q.snapshot_where(JAN_2026 + 30, |u| u == QuotaUnit::Minute).len(),
        1,
        "b only"
    );
    // A fresh process: restored before the subscription is indexed, picked up after.
    let fresh = Quotas::default();
    fresh.restore(snap.clone());
    let counter = fresh.counter(&a);
    let x = counter.take(&day, JAN_2026 + 300);
    assert_eq!((x.admitted, x.used), (true, 4));
    assert!(counter.take(&day, JAN_2026 + 300).admitted);
    assert!(
        !counter.take(&day, JAN_2026 + 300).admitted,
        "five counted across the restart"
    );
    // Restoring an older count into a counted window keeps the larger.
    fresh.restore(snap);
    assert_eq!(counter.load(), (JAN_2026, 5));
    // A restored window that has ended is harmless: the next day starts at zero.
    assert_eq!(counter.take(&day, JAN_2026 + 86_400).used, 1);
}

#[test]
fn snapshot_reads_the_clock() {
    let q = Quotas::default();
    let id: Arc<str> = "a".into();
    q.counter(&id)
        .take(&limit(5, QuotaUnit::Month, true), super::super::unix_now());
    assert_eq!(q.snapshot().len(), 1);
}

#[test]
fn purge_drops_only_unheld_counters_whose_window_is_over() {
    let q = Quotas::default();
    let minute = limit(5, QuotaUnit::Minute, true);
    let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
    q.counter(&a).take(&minute, JAN_2026);
    q.counter(&b).take(&minute, JAN_2026);
    let held = q.counter(&c);
    held.take(&minute, JAN_2026);
    q.purge(JAN_2026 + 30);
    assert_eq!(q.len(), 3, "all windows current");
    q.purge(JAN_2026 + 60);
    assert_eq!(q.len(), 1, "only the held counter is left");
    assert!(Arc::ptr_eq(&q.counter(&c), &held));
}
