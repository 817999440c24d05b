//! The one clock: the current time as RFC 3339 text or Unix seconds/milliseconds, and RFC 3339
//! timestamps as the platform API writes them (`Z` or a numeric offset, optional fraction) reduced
//! to Unix milliseconds for ordering. The original string is kept wherever it is echoed back
//! (`performedAt`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z): `humantime` panics past it, so every
/// time is clamped into `[epoch, MAX_RFC3339_SECS]` before it is formatted.
pub const MAX_RFC3339_SECS: i64 = 253_402_300_799;

/// Now, RFC 3339 UTC, second precision (how every stored timestamp is written).
pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(clamped(SystemTime::now())).to_string()
}

/// Unix seconds as RFC 3339 UTC, second precision (times before the epoch as the epoch, times past
/// year 9999 as its last second).
pub fn rfc3339_of(unix_secs: i64) -> String {
    let secs = unix_secs.clamp(0, MAX_RFC3339_SECS) as u64;
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A time as RFC 3339 UTC, millisecond precision, clamped like [`rfc3339_of`].
pub fn rfc3339_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(clamped(t)).to_string()
}

/// `t` moved into the range `humantime` can format.
fn clamped(t: SystemTime) -> SystemTime {
    let max = UNIX_EPOCH + Duration::from_secs(MAX_RFC3339_SECS as u64);
    t.clamp(UNIX_EPOCH, max)
}

/// Now, in Unix seconds.
pub fn unix_secs() -> i64 {
    since_epoch().as_secs() as i64
}

/// Now, in Unix milliseconds.
pub fn unix_millis() -> i64 {
    since_epoch().as_millis() as i64
}

/// A clock set before 1970 reads as 1970.
fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

/// Unix milliseconds of an RFC 3339 timestamp, or `None` when it is not one.
pub fn parse_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

/// Unix seconds of an RFC 3339 timestamp.
pub fn parse_secs(s: &str) -> Option<i64> {
    parse_millis(s).map(|ms| ms.div_euclid(1000))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_fractions_and_offsets_compare_by_instant() {
        let base = parse_millis("2026-03-04T10:30:00Z").unwrap();
        assert_eq!(base, 1_772_620_200_000);
        assert_eq!(parse_millis("2026-03-04T10:30:00.12Z").unwrap(), base + 120);
        assert_eq!(parse_millis("2026-03-04T10:30:00.123456789Z").unwrap(), base + 123);
        assert_eq!(parse_millis("2026-03-04T16:00:00+05:30").unwrap(), base);
        assert_eq!(parse_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_secs("2026-03-04T10:30:00.999Z"), Some(base / 1000));
    }

    #[test]
    fn now_reads_the_same_in_every_form() {
        let (secs, millis) = (unix_secs(), unix_millis());
        let text = parse_secs(&rfc3339_now()).unwrap();
        assert!((millis / 1000 - secs).abs() <= 1);
        assert!((text - secs).abs() <= 1, "{text} vs {secs}");
    }

    /// Issue #13: a time past year 9999 (or before 1970) is clamped, never a panic.
    #[test]
    fn times_out_of_range_are_clamped_not_a_panic() {
        assert_eq!(rfc3339_of(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_of(300_000_000_000), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_of(-5), "1970-01-01T00:00:00Z");
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339_millis(far), "9999-12-31T23:59:59.000Z");
        assert_eq!(parse_secs(&rfc3339_of(MAX_RFC3339_SECS)), Some(MAX_RFC3339_SECS));
    }

    #[test]
    fn garbage_is_rejected() {
        for s in [
            "",
            "yesterday",
            "2026-03-04",
            "2026-13-04T10:30:00Z",
            "2026-03-04T10:30:00",
            "2026-03-04T10:30:00.Z",
        ] {
            assert_eq!(parse_millis(s), None, "{s}");
        }
    }
}
