//! Lower-case hex, the one encoder the workspace uses for digests and versions (over the `hex` crate).

/// `bytes` as lower-case hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// A SHA-256 digest from its 64 hex digits (either case); `None` for anything else.
pub fn decode_digest(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
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
