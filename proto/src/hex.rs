//! Lower-case hex, the one encoder the workspace uses for digests and versions.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A SHA-256 digest from its 64 hex digits (either case); `None` for anything else.
pub fn decode_digest(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// One hex digit's value. Only digits count: `u8::from_str_radix` would also take a sign.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lower_case_and_decodes_digests() {
        assert_eq!(encode(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(encode(&[]), "");
        let d = [0xabu8; 32];
        assert_eq!(decode_digest(&encode(&d)), Some(d));
        assert_eq!(decode_digest(&encode(&d).to_uppercase()), Some(d));
    }

    #[test]
    fn refuses_what_is_not_a_digest() {
        assert_eq!(decode_digest(""), None);
        assert_eq!(decode_digest(&"a".repeat(63)), None);
        assert_eq!(decode_digest(&"a".repeat(66)), None);
        assert_eq!(decode_digest(&"g".repeat(64)), None);
        assert_eq!(decode_digest(&format!("+{}", "a".repeat(63))), None);
        // Multi-byte characters must not panic on a char boundary.
        assert_eq!(decode_digest(&"é".repeat(32)), None);
    }
}
