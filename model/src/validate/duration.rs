//! Single-unit durations (`500ms`, `1.5s`, `2m`, `1h`) and the `resilience` block built from them.

use std::time::Duration;

use super::Errors;
use crate::Resilience;
use crate::document;

/// Parses `^\d+(\.\d+)?(ms|s|m|h)$`; `None` when malformed or longer than Envoy holds: it keeps
/// durations as signed 64-bit nanoseconds (about 2,562,047 h), and refuses a route or cluster with more.
pub(super) fn parse(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = s.split_at(split);
    let unit_ns: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits_only(int) || (number.contains('.') && frac.is_empty()) || !digits_only(frac) {
        return None;
    }
    // Integer arithmetic on nanoseconds keeps `0.1s` exact; digits beyond nanosecond precision are dropped,
    // and overlong inputs are cut before they could overflow a u128.
    let int_ns = int.parse::<u128>().ok()?.checked_mul(unit_ns)?;
    let frac = &frac[..frac.len().min(18)];
    let frac_ns = if frac.is_empty() {
        0
    } else {
        frac.parse::<u128>().ok()? * unit_ns / 10u128.pow(frac.len() as u32)
    };
    let total = i64::try_from(int_ns.checked_add(frac_ns)?).ok()?;
    Some(Duration::from_nanos(total.unsigned_abs()))
}

/// Parses an optional duration field, recording an error at `field` when it is malformed.
pub(super) fn field(value: Option<&String>, field: &str, errs: &mut Errors) -> Option<Duration> {
    let value = value?;
    let parsed = parse(value);
    if parsed.is_none() {
        let msg = format!("Invalid duration '{value}' (expected a number and one unit of ms, s, m or h, e.g. 30s)");
        errs.add(field, msg);
    }
    parsed
}

/// Checks a `resilience` block found at `prefix`; malformed fields resolve to `None` (and an error).
pub(super) fn resilience(r: Option<&document::Resilience>, prefix: &str, errs: &mut Errors) -> Resilience {
    let Some(r) = r else { return Resilience::default() };
    Resilience {
        timeout: field(r.timeout.as_ref(), &format!("{prefix}.timeout"), errs),
        idle_timeout: field(r.idle_timeout.as_ref(), &format!("{prefix}.idleTimeout"), errs),
    }
}
