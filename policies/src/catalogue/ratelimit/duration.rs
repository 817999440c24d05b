//! Go durations (`1h30m`, `1.5h`, `90s`), as WSO2's rate-limit parameters write windows, read
//! into whole seconds.

use super::MAX_WINDOW_SECS;

/// Why a duration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Not a Go duration (`simple`: not one integer and a unit, as `basic-ratelimit` requires).
    Syntax,
    /// Negative, under a second, not whole seconds, or longer than [`MAX_WINDOW_SECS`].
    Range,
}

/// The seconds of a Go duration (`1h30m`, `1.5h`, `90s`; `simple` allows one integer and a unit
/// only). Windows are whole seconds, at least one.
pub fn window_secs(s: &str, simple: bool) -> Result<u64, DurationError> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') if !simple => (true, &s[1..]),
        Some(b'+') if !simple => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return Err(DurationError::Syntax);
    }
    let mut nanos: u128 = 0;
    let mut terms = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(DurationError::Syntax),
        };
        nanos = nanos.saturating_add(term_nanos(number, scale, simple)?);
        terms += 1;
        rest = next;
    }
    if simple && terms != 1 {
        return Err(DurationError::Syntax);
    }
    let secs = nanos / 1_000_000_000;
    if negative || !nanos.is_multiple_of(1_000_000_000) || secs == 0 || secs > u128::from(MAX_WINDOW_SECS) {
        return Err(DurationError::Range);
    }
    Ok(secs as u64)
}

/// `number` (`12`, `1.5`, `.5`; an integer when `simple`) times `scale`, in nanoseconds.
fn term_nanos(number: &str, scale: u128, simple: bool) -> Result<u128, DurationError> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let dotted = number.contains('.');
    if (int.is_empty() && frac.is_empty()) || (simple && dotted) || frac.contains('.') {
        return Err(DurationError::Syntax);
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| DurationError::Range)?
    };
    let mut value = int.saturating_mul(scale);
    let mut unit = scale;
    for d in frac.bytes() {
        unit /= 10;
        value = value.saturating_add(u128::from(d - b'0') * unit);
    }
    Ok(value)
}
