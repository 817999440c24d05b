//! The few fields a check needs, read straight from the encoded `CheckRequest`.
//!
//! Decoding the whole message would build hash maps of every header and context extension for each
//! request; a check needs four context extensions, one header (or the path) and nothing else. This
//! reader walks the protobuf wire format over borrowed bytes: no allocation, and anything malformed
//! is simply `None` (which the service turns into the refusal).

/// Field numbers, from `envoy/service/auth/v3/{external_auth,attribute_context}.proto`.
mod tag {
    /// `CheckRequest.attributes`.
    pub const ATTRIBUTES: u32 = 1;
    /// `AttributeContext.request`.
    pub const REQUEST: u32 = 4;
    /// `AttributeContext.context_extensions` (map<string, string>).
    pub const CONTEXT_EXTENSIONS: u32 = 10;
    /// `AttributeContext.Request.http`.
    pub const HTTP: u32 = 2;
    /// `HttpRequest.headers` (map<string, string>).
    pub const HEADERS: u32 = 3;
    /// `HttpRequest.path`.
    pub const PATH: u32 = 4;
    /// `HttpRequest.header_map` (sent instead of `headers` when Envoy encodes raw headers).
    pub const HEADER_MAP: u32 = 13;
    /// `HeaderMap.headers` (repeated `HeaderValue`).
    pub const HEADER_MAP_ENTRY: u32 = 1;
    /// Map entries and `HeaderValue`: key, value, raw_value.
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
    pub const RAW_VALUE: u32 = 3;
}

/// One field's value; only length-delimited values are kept.
enum Value<'a> {
    Bytes(&'a [u8]),
    Other,
}

/// Iterates over the fields of one encoded message; `Err` on anything malformed.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(msg: &'a [u8]) -> Self {
        Fields { rest: msg }
    }

    fn varint(&mut self) -> Result<u64, ()> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.rest.split_first().ok_or(())?;
            self.rest = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        if n > self.rest.len() {
            return Err(());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// The next `(field number, value)`, `Ok(None)` at the end.
    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, ()> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| ())?;
        if number == 0 {
            return Err(());
        }
        let value = match key & 7 {
            0 => self.varint().map(|_| Value::Other)?,
            1 => self.take(8).map(|_| Value::Other)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ())?;
                Value::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Value::Other)?,
            // Groups (3, 4) are not used by these messages; anything else is not protobuf.
            _ => return Err(()),
        };
        Ok(Some((number, value)))
    }
}

/// Calls `f` with every length-delimited field of `msg`; `None` if `msg` is malformed.
fn each<'a>(msg: &'a [u8], mut f: impl FnMut(u32, &'a [u8])) -> Option<()> {
    let mut fields = Fields::new(msg);
    loop {
        match fields.next_field() {
            Ok(Some((number, Value::Bytes(b)))) => f(number, b),
            Ok(Some((_, Value::Other))) => {}
            Ok(None) => return Some(()),
            Err(()) => return None,
        }
    }
}

/// The last occurrence of length-delimited field `number` in `msg`.
fn last(msg: &[u8], number: u32) -> Option<&[u8]> {
    let mut found = None;
    each(msg, |n, b| {
        if n == number {
            found = Some(b);
        }
    })?;
    found
}

/// A map entry's (or a `HeaderValue`'s) key and value; `raw_value` stands in for an empty value.
fn entry(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let (mut key, mut value, mut raw) = (&[][..], &[][..], &[][..]);
    each(msg, |n, b| match n {
        tag::KEY => key = b,
        tag::VALUE => value = b,
        tag::RAW_VALUE => raw = b,
        _ => {}
    })?;
    Some((key, if value.is_empty() { raw } else { value }))
}

/// What a check reads from a request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Facts<'a> {
    /// `tollgate.api`.
    pub api: Option<&'a [u8]>,
    /// `tollgate.key_in`.
    pub key_in: Option<&'a [u8]>,
    /// `tollgate.key_name`.
    pub key_name: Option<&'a [u8]>,
    /// `tollgate.strip`.
    pub strip: Option<&'a [u8]>,
    /// `tollgate.sub`.
    pub sub: Option<&'a [u8]>,
    /// `tollgate.sub_header`.
    pub sub_header: Option<&'a [u8]>,
    /// `tollgate.sub_cookie`.
    pub sub_cookie: Option<&'a [u8]>,
    /// `tollgate.rl`: the route's rate-limit quota lines.
    pub rl: Option<&'a [u8]>,
    /// `tollgate.basic`: the route's basic-auth line.
    pub basic: Option<&'a [u8]>,
    /// `tollgate.rw`: the route's method and in-place query rewrites.
    pub rw: Option<&'a [u8]>,
    /// The encoded `HttpRequest`.
    pub http: Option<&'a [u8]>,
}

/// The context extensions and the HTTP request of an encoded `CheckRequest`; `None` if malformed.
/// Repeated keys: the last one wins, as when decoding a map.
pub fn facts(check_request: &[u8]) -> Option<Facts<'_>> {
    let attributes = last(check_request, tag::ATTRIBUTES)?;
    let mut facts = Facts::default();
    let mut request = None;
    let mut malformed = false;
    each(attributes, |n, b| match n {
        tag::REQUEST => request = Some(b),
        tag::CONTEXT_EXTENSIONS => match entry(b) {
            Some((k, v)) => {
                let slot = match k {
                    b"tollgate.api" => &mut facts.api,
                    b"tollgate.key_in" => &mut facts.key_in,
                    b"tollgate.key_name" => &mut facts.key_name,
                    b"tollgate.strip" => &mut facts.strip,
                    b"tollgate.sub" => &mut facts.sub,
                    b"tollgate.sub_header" => &mut facts.sub_header,
                    b"tollgate.sub_cookie" => &mut facts.sub_cookie,
                    b"tollgate.rl" => &mut facts.rl,
                    b"tollgate.basic" => &mut facts.basic,
                    b"tollgate.rw" => &mut facts.rw,
                    _ => return,
                };
                *slot = Some(v);
            }
            None => malformed = true,
        },
        _ => {}
    })?;
    if malformed {
        return None;
    }
    facts.http = match request {
        Some(r) => last(r, tag::HTTP),
        None => None,
    };
    Some(facts)
}

/// The client's address (`attributes.source.address.socket_address.address`: the peer, or the
/// address Envoy took from `X-Forwarded-For` where the listener trusts it).
pub fn source_address(check_request: &[u8]) -> Option<&[u8]> {
    // CheckRequest.attributes (1) → AttributeContext.source (1) → Peer.address (1) →
    // Address.socket_address (1) → SocketAddress.address (2).
    let peer = last(last(check_request, tag::ATTRIBUTES)?, 1)?;
    last(last(last(peer, 1)?, 1)?, 2).filter(|a| !a.is_empty())
}

/// `HttpRequest.path` (with the query string).
pub fn path(http: &[u8]) -> Option<&[u8]> {
    last(http, tag::PATH)
}

/// The value of header `name` (compared ASCII case-insensitively), from `headers` or `header_map`.
pub fn header<'a>(http: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut found = None;
    let mut malformed = false;
    each(http, |n, b| {
        let mut consider = |e: &'a [u8]| match entry(e) {
            Some((k, v)) if k.eq_ignore_ascii_case(name) => found = Some(v),
            Some(_) => {}
            None => malformed = true,
        };
        match n {
            tag::HEADERS => consider(b),
            tag::HEADER_MAP => {
                let entries = each(b, |m, e| {
                    if m == tag::HEADER_MAP_ENTRY {
                        consider(e)
                    }
                });
                malformed |= entries.is_none();
            }
            _ => {}
        }
    })?;
    if malformed { None } else { found }
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b="2"`), unquoted; names compare
/// exactly, as RFC 6265 says.
pub fn cookie<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (k, v) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
        if k != name {
            return None;
        }
        Some(match v {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost::Message;
    use tollgate_proto::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
    use tollgate_proto::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};

    use super::*;

    fn encoded(ext: &[(&str, &str)], http: attribute_context::HttpRequest) -> Vec<u8> {
        CheckRequest {
            attributes: Some(AttributeContext {
                context_extensions: ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                request: Some(attribute_context::Request {
                    http: Some(http),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    fn http(headers: &[(&str, &str)], path: &str) -> attribute_context::HttpRequest {
        attribute_context::HttpRequest {
            id: "1234".into(),
            method: "GET".into(),
            path: path.into(),
            size: 17,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
            ..Default::default()
        }
    }

    #[test]
    fn reads_the_extensions_the_path_and_one_header() {
        let msg = encoded(
            &[
                ("tollgate.api", "orders"),
                ("tollgate.key_in", "header"),
                ("tollgate.key_name", "x-api-key"),
                ("tollgate.sub", "true"),
                ("tollgate.sub_header", "subscription-key"),
                ("tollgate.sub_cookie", "sk"),
                ("other", "ignored"),
            ],
            http(&[("x-api-key", "apip_1"), ("accept", "*/*")], "/orders?x=1"),
        );
        let f = facts(&msg).unwrap();
        assert_eq!(f.api, Some(&b"orders"[..]));
        assert_eq!(f.key_in, Some(&b"header"[..]));
        assert_eq!(f.key_name, Some(&b"x-api-key"[..]));
        assert_eq!(f.strip, None);
        assert_eq!(
            (f.sub, f.sub_header, f.sub_cookie),
            (Some(&b"true"[..]), Some(&b"subscription-key"[..]), Some(&b"sk"[..]))
        );
        let h = f.http.unwrap();
        assert_eq!(path(h), Some(&b"/orders?x=1"[..]));
        assert_eq!(header(h, b"x-api-key"), Some(&b"apip_1"[..]));
        assert_eq!(header(h, b"X-Api-Key"), Some(&b"apip_1"[..]));
        assert_eq!(header(h, b"api-key"), None);
    }

    #[test]
    fn reads_raw_header_maps() {
        let mut h = http(&[], "/");
        h.header_map = Some(HeaderMap {
            headers: vec![
                HeaderValue {
                    key: "x-api-key".into(),
                    raw_value: b"apip_raw".to_vec(),
                    ..Default::default()
                },
                HeaderValue {
                    key: "accept".into(),
                    value: "*/*".into(),
                    ..Default::default()
                },
            ],
        });
        let msg = encoded(&[("tollgate.api", "a")], h);
        let f = facts(&msg).unwrap();
        assert_eq!(header(f.http.unwrap(), b"x-api-key"), Some(&b"apip_raw"[..]));
        assert_eq!(header(f.http.unwrap(), b"accept"), Some(&b"*/*"[..]));
    }

    #[test]
    fn a_missing_request_or_attributes_reads_as_nothing() {
        assert_eq!(facts(&CheckRequest::default().encode_to_vec()), None);
        let msg = CheckRequest {
            attributes: Some(AttributeContext::default()),
        }
        .encode_to_vec();
        // Present but empty attributes encode as a zero-length field.
        assert_eq!(facts(&msg), Some(Facts::default()));
    }

    #[test]
    fn malformed_bytes_read_as_none_and_never_panic() {
        let good = encoded(
            &[("tollgate.api", "orders"), ("tollgate.key_name", "x-api-key")],
            http(&[("x-api-key", "apip_1")], "/orders"),
        );
        // Every truncation and every single-byte corruption: no panic, and never a wrong key.
        for cut in 0..good.len() {
            let f = facts(&good[..cut]);
            if let Some(h) = f.and_then(|f| f.http) {
                assert_ne!(header(h, b"x-api-key"), Some(&b"apip_2"[..]));
            }
        }
        for i in 0..good.len() {
            for b in [0x00, 0x07, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                if let Some(h) = facts(&bad).and_then(|f| f.http) {
                    let _ = header(h, b"x-api-key");
                    let _ = path(h);
                }
            }
        }
        assert_eq!(facts(&[0x0a, 0x05, 0x01]), None, "length past the end");
        assert_eq!(facts(&[0x0b]), None, "group wire type");
        assert_eq!(
            facts(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            None
        );
    }

    #[test]
    fn cookies_are_found_by_exact_name_and_unquoted() {
        let h = b"a=1; sub=tok_1 ;q=\"tok 2\"; empty=; novalue";
        assert_eq!(cookie(h, b"sub"), Some(&b"tok_1"[..]));
        assert_eq!(cookie(h, b"q"), Some(&b"tok 2"[..]));
        assert_eq!(cookie(h, b"empty"), Some(&b""[..]));
        assert_eq!(cookie(h, b"Sub"), None, "names are case-sensitive");
        assert_eq!(cookie(h, b"su"), None);
        assert_eq!(cookie(h, b"novalue"), None);
        assert_eq!(cookie(b"", b"sub"), None);
    }

    #[test]
    fn the_last_of_repeated_keys_wins_as_in_a_decoded_map() {
        // Two entries for the same extension, concatenated by hand.
        let one = encoded(&[("tollgate.api", "first")], http(&[], "/"));
        let two = encoded(&[("tollgate.api", "second")], http(&[], "/"));
        let mut both = one.clone();
        both.extend_from_slice(&two);
        // Two `attributes` fields: the last one is read (prost would merge them; Envoy sends one).
        assert_eq!(facts(&both).unwrap().api, Some(&b"second"[..]));
        let decoded = CheckRequest::decode(&both[..]).unwrap();
        assert_eq!(decoded.attributes.unwrap().context_extensions["tollgate.api"], "second");
    }
}
