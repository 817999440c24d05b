//! The RFC 3339 reader of the platform's timestamps (`tollgate::clock`), which orders events and
//! key expiries. Nothing may panic; seconds are milliseconds rounded down; whatever the strict
//! `humantime` parser accepts reads as the same instant (leap seconds aside, see below); and every second the clock writes
//! (`rfc3339_of`) reads back as itself.
//!
//! Input: any bytes, read as text; the first eight also give a Unix second for the round trip.

#![no_main]

use std::time::UNIX_EPOCH;

use libfuzzer_sys::fuzz_target;
use tollgate::clock;

/// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const LAST_SECOND: i64 = 253_402_300_799;

fuzz_target!(|data: &[u8]| {
    if let Some(head) = data.first_chunk::<8>() {
        let secs = i64::from_le_bytes(*head).rem_euclid(LAST_SECOND + 1);
        let text = clock::rfc3339_of(secs);
        assert_eq!(clock::parse_secs(&text), Some(secs), "{text}");
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let millis = clock::parse_millis(text);
    assert_eq!(clock::parse_secs(text), millis.map(|ms| ms.div_euclid(1000)));
    let Ok(t) = humantime::parse_rfc3339(text) else {
        return;
    };
    // humantime is laxer than RFC 3339 after the seconds (`.Z`, `ZZ`): compare on the grammar only.
    if !text.get(19..).is_some_and(rfc3339_tail) {
        return;
    }
    let mut expected = t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).ok();
    // A leap second (`:60`) is `:59` to humantime and the next minute's `:00` here; both order it
    // after `:59`, which is all the clock needs.
    if text.get(17..19) == Some("60") {
        expected = expected.map(|ms| ms + 1000);
    }
    assert_eq!(millis, expected, "{text:?}");
});

/// `time-secfrac? time-offset` with a UTC offset: `(\.DIGIT+)?(Z|+00:00)`.
fn rfc3339_tail(tail: &str) -> bool {
    let offset = match tail.strip_prefix('.') {
        Some(frac) => {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return false;
            }
            &frac[digits..]
        }
        None => tail,
    };
    matches!(offset, "Z" | "+00:00")
}
