//! Wire-level helpers of the fake platform-api: Go-style time formatting and parsing, the
//! deterministic etags of the Gateway Internal API, API-key hashing/masking, and the archive
//! formats (ZIP for single artifacts, gzip'd tar for batches).

use std::io::{Cursor, Write};
use std::time::{SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i128 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Now, as Unix nanoseconds.
pub(crate) fn now_nanos() -> i128 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_nanos() as i128
}

/// Days since 1970-01-01 of a proleptic Gregorian civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Formats Unix nanoseconds as UTC RFC 3339 the way Go does: at most `max_frac_digits` fractional
/// digits (0, 3 or 9), trailing zeros of the fraction dropped, no dot when the fraction is zero.
pub(crate) fn format_utc(nanos: i128, max_frac_digits: u32) -> String {
    let secs = nanos.div_euclid(NANOS_PER_SEC) as i64;
    let sub = nanos.rem_euclid(NANOS_PER_SEC) as u64;
    let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    let digits = max_frac_digits.min(9);
    if digits > 0 {
        let frac = sub / 10u64.pow(9 - digits);
        let text = format!("{frac:0width$}", width = digits as usize);
        let text = text.trim_end_matches('0');
        if !text.is_empty() {
            out.push('.');
            out.push_str(text);
        }
    }
    out.push('Z');
    out
}

/// RFC 3339 with second precision (envelope and `connection.ack` timestamps, key event times).
pub(crate) fn format_secs(nanos: i128) -> String {
    format_utc(nanos, 0)
}

/// `performedAt`: milliseconds, trailing fractional zeros dropped.
pub(crate) fn format_millis(unix_ms: i64) -> String {
    format_utc(i128::from(unix_ms) * 1_000_000, 3)
}

/// Go `time.Time` JSON encoding (RFC 3339 with up to nanoseconds).
pub(crate) fn format_nanos(nanos: i128) -> String {
    format_utc(nanos, 9)
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter()
        .try_fold(0u32, |acc, d| acc.checked_mul(10)?.checked_add(u32::from(d - b'0')))
}

/// Parses what Go's `time.Parse(time.RFC3339, s)` accepts (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`)
/// into Unix nanoseconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i64::from(digits(&b[0..4])?);
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = i64::from(digits(&b[11..13])?);
    let min = i64::from(digits(&b[14..16])?);
    let sec = i64::from(digits(&b[17..19])?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut frac_nanos: i128 = 0;
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let mut value: i128 = 0;
        for (i, d) in after_dot[..n].iter().enumerate() {
            if i < 9 {
                value = value * 10 + i128::from(d - b'0');
            }
        }
        for _ in n..9 {
            value *= 10;
        }
        frac_nanos = value;
        rest = &after_dot[n..];
    }
    let offset_secs: i64 = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = i64::from(digits(&[*h1, *h2])?);
            let m = i64::from(digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let local = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + min * 60 + sec;
    Some(i128::from(local - offset_secs) * NANOS_PER_SEC + frac_nanos)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &str) -> String {
    sha256(data.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn uuid_string(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// The deterministic UUIDv7 etag of §3.2 (deployments) / §3.5 (subscriptions) / §3.6 (plans):
/// big-endian Unix milliseconds of the timestamp, then the first 10 bytes of SHA-256 of the id.
pub fn time_etag(id: &str, unix_ms: i64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&sha256(id.as_bytes())[..10]);
    uuid_string(bytes)
}

/// The API-key etag of §3.7: SHA-256 of `"{artifactUuid}:{name}:{updatedAt in Unix ns}"`, first 16
/// bytes, version 7 and RFC 4122 variant forced.
pub fn key_etag(artifact_uuid: &str, name: &str, updated_nanos: i128) -> String {
    let digest = sha256(format!("{artifact_uuid}:{name}:{updated_nanos}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid_string(bytes)
}

/// `maskedApiKey`: `***` + the last 5 characters, or `********` for keys of 5 characters or fewer.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 5 {
        return "********".to_owned();
    }
    let tail: String = chars[chars.len() - 5..].iter().collect();
    format!("***{tail}")
}

/// A ZIP holding one deflated entry.
pub(crate) fn zip_single(name: &str, content: &str) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file(name, options).unwrap();
    writer.write_all(content.as_bytes()).unwrap();
    writer.finish().unwrap().into_inner()
}

/// A gzip-compressed tar of regular files (no directory entries).
pub(crate) fn tar_gz(entries: &[(String, String)], mtime_secs: u64) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, content) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime_secs);
        builder.append_data(&mut header, path, content.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let base = parse_rfc3339("2026-03-04T10:30:00Z").unwrap();
        assert_eq!(format_millis((base / 1_000_000) as i64), "2026-03-04T10:30:00Z");
        assert_eq!(
            format_millis((base / 1_000_000) as i64 + 120),
            "2026-03-04T10:30:00.12Z"
        );
        assert_eq!(
            format_millis((base / 1_000_000) as i64 + 123),
            "2026-03-04T10:30:00.123Z"
        );
        assert_eq!(format_millis((base / 1_000_000) as i64 + 5), "2026-03-04T10:30:00.005Z");
        assert_eq!(format_secs(base + 999_999_999), "2026-03-04T10:30:00Z");
        assert_eq!(format_nanos(base + 1_500), "2026-03-04T10:30:00.0000015Z");
        assert_eq!(format_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_secs(951_782_400 * NANOS_PER_SEC), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_like_go() {
        let z = parse_rfc3339("2026-03-04T10:30:00Z").unwrap();
        assert_eq!(parse_rfc3339("2026-03-04T16:00:00+05:30"), Some(z));
        assert_eq!(parse_rfc3339("2026-03-04T10:30:00.5Z"), Some(z + 500_000_000));
        assert_eq!(parse_rfc3339("2026-03-04T10:30:00.123456789Z"), Some(z + 123_456_789));
        for bad in [
            "",
            "2026-03-04",
            "2026-03-04 10:30:00Z",
            "2026-03-04T10:30:00",
            "2026-02-30T10:30:00Z",
            "2026-03-04T10:30:00+0530",
            "2026-03-04T10:30:00.Z",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn etags_have_version_7_and_time_prefix() {
        let etag = time_etag("90d10e1c-8560-4c36-9d5a-124ecaa17485", 0x0195_0000_0001);
        assert!(etag.starts_with("01950000-0001-7"), "{etag}");
        assert!(matches!(etag.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{etag}");
        let k = key_etag("a", "b", 1);
        assert_eq!(k.as_bytes()[14], b'7');
        assert_eq!(mask_key("abcdefgh"), "***defgh");
        assert_eq!(mask_key("abc"), "********");
        assert_eq!(
            sha256_hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
