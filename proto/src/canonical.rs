//! Canonical re-encoding of Envoy messages, for content hashes.
//!
//! prost encodes `HashMap` fields in iteration order, which differs between two maps holding the
//! same entries. The canonical form keeps every other field as encoded and writes each map's
//! entries sorted by their encoded bytes, recursing into nested messages and `Any` payloads whose
//! schema can reach a map. The schema table is generated at build time from envoy-types'
//! descriptor set and covers only the messages that can reach a map or an `Any`.

use std::borrow::Cow;

use prost::encoding::{decode_varint, encode_varint};

/// What a field leads to (generated table entries).
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A nested message, by index into the table.
    Message(usize),
    /// A `google.protobuf.Any`.
    Any,
    /// A map field.
    Map(Value),
}

/// What a map's value is.
#[derive(Clone, Copy, Debug)]
enum Value {
    /// Needs no canonicalising.
    Plain,
    /// A message, by index into the table.
    Message(usize),
    /// A `google.protobuf.Any`.
    Any,
}

mod schema {
    use super::{Kind, Value};
    include!(concat!(env!("OUT_DIR"), "/schema.rs"));
}

/// Errors from canonical encoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a valid protobuf encoding.
    Malformed,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed protobuf encoding")
    }
}

impl std::error::Error for Error {}

/// Returns the canonical encoding of `bytes`, a message of the given full type name (for example
/// `envoy.config.route.v3.RouteConfiguration`). Messages that cannot reach a map are returned as
/// they are.
pub fn canonical<'a>(type_name: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, Error> {
    match index_of(type_name) {
        Some(idx) => {
            let mut out = Vec::with_capacity(bytes.len());
            message(idx, bytes, &mut out)?;
            Ok(Cow::Owned(out))
        }
        None => Ok(Cow::Borrowed(bytes)),
    }
}

/// Returns the canonical encoding of an encoded `google.protobuf.Any`.
pub fn canonical_any(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(bytes.len());
    any(bytes, &mut out)?;
    Ok(out)
}

fn index_of(type_name: &str) -> Option<usize> {
    schema::NAMES.binary_search(&type_name).ok()
}

fn kind_of(idx: usize, field: u32) -> Option<Kind> {
    schema::FIELDS[idx].iter().find(|(n, _)| *n == field).map(|(_, k)| *k)
}

/// One field as it appears on the wire.
struct Field<'a> {
    number: u32,
    /// The whole field, tag included.
    raw: &'a [u8],
    /// The payload of a length-delimited field.
    payload: Option<&'a [u8]>,
}

/// Splits an encoded message into its fields.
fn fields(mut buf: &[u8]) -> impl Iterator<Item = Result<Field<'_>, Error>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let start = buf;
        let field = (|| {
            let key = decode_varint(&mut buf).map_err(|_| Error::Malformed)?;
            let number = u32::try_from(key >> 3).map_err(|_| Error::Malformed)?;
            let payload = match key & 7 {
                0 => {
                    decode_varint(&mut buf).map_err(|_| Error::Malformed)?;
                    None
                }
                1 => {
                    buf = buf.get(8..).ok_or(Error::Malformed)?;
                    None
                }
                2 => {
                    let len = usize::try_from(decode_varint(&mut buf).map_err(|_| Error::Malformed)?)
                        .map_err(|_| Error::Malformed)?;
                    let payload = buf.get(..len).ok_or(Error::Malformed)?;
                    buf = &buf[len..];
                    Some(payload)
                }
                5 => {
                    buf = buf.get(4..).ok_or(Error::Malformed)?;
                    None
                }
                // Groups are not used by any Envoy API message.
                _ => return Err(Error::Malformed),
            };
            let used = start.len() - buf.len();
            Ok(Field {
                number,
                raw: &start[..used],
                payload,
            })
        })();
        if field.is_err() {
            buf = &[];
        }
        Some(field)
    })
}

fn write_len_delimited(number: u32, payload: &[u8], out: &mut Vec<u8>) {
    encode_varint((u64::from(number) << 3) | 2, out);
    encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

fn message(idx: usize, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    // Map entries of one field, gathered and written sorted after the other fields.
    let mut maps: Vec<(u32, Vec<u8>)> = Vec::new();
    for field in fields(bytes) {
        let field = field?;
        match (kind_of(idx, field.number), field.payload) {
            (Some(Kind::Message(inner)), Some(payload)) => {
                let mut nested = Vec::with_capacity(payload.len());
                message(inner, payload, &mut nested)?;
                write_len_delimited(field.number, &nested, out);
            }
            (Some(Kind::Any), Some(payload)) => {
                let mut nested = Vec::with_capacity(payload.len());
                any(payload, &mut nested)?;
                write_len_delimited(field.number, &nested, out);
            }
            (Some(Kind::Map(value)), Some(payload)) => {
                let mut entry = Vec::with_capacity(payload.len() + 4);
                map_entry(value, payload, &mut entry)?;
                let mut encoded = Vec::with_capacity(entry.len() + 4);
                write_len_delimited(field.number, &entry, &mut encoded);
                maps.push((field.number, encoded));
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    maps.sort();
    for (_, entry) in maps {
        out.extend_from_slice(&entry);
    }
    Ok(())
}

fn map_entry(value: Value, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    for field in fields(bytes) {
        let field = field?;
        match (field.number, value, field.payload) {
            (2, Value::Message(inner), Some(payload)) => {
                let mut nested = Vec::with_capacity(payload.len());
                message(inner, payload, &mut nested)?;
                write_len_delimited(2, &nested, out);
            }
            (2, Value::Any, Some(payload)) => {
                let mut nested = Vec::with_capacity(payload.len());
                any(payload, &mut nested)?;
                write_len_delimited(2, &nested, out);
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    Ok(())
}

/// `google.protobuf.Any`: `type_url = 1`, `value = 2`.
fn any(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let mut type_url: &[u8] = &[];
    let mut value: &[u8] = &[];
    for field in fields(bytes) {
        let field = field?;
        match (field.number, field.payload) {
            (1, Some(p)) => type_url = p,
            (2, Some(p)) => value = p,
            _ => {}
        }
    }
    let name = std::str::from_utf8(type_url).map_err(|_| Error::Malformed)?;
    let name = name.rsplit('/').next().unwrap_or(name);
    if !type_url.is_empty() {
        write_len_delimited(1, type_url, out);
    }
    let canon = canonical(name, value)?;
    if !canon.is_empty() {
        write_len_delimited(2, &canon, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
    use crate::pb::envoy::extensions::filters::http::ext_authz::v3::{
        CheckSettings, ExtAuthzPerRoute, ext_authz_per_route::Override,
    };
    use envoy_types::util::pack_any;
    use prost::Message;

    /// A route config with maps nested at three levels: route → typed_per_filter_config → Any →
    /// ExtAuthzPerRoute → check_settings → context_extensions.
    fn config(keys: &[&str]) -> RouteConfiguration {
        let ctx: HashMap<String, String> = keys.iter().map(|k| (k.to_string(), format!("v-{k}"))).collect();
        let per_route = ExtAuthzPerRoute {
            r#override: Some(Override::CheckSettings(CheckSettings {
                context_extensions: ctx,
                ..Default::default()
            })),
        };
        let mut tpfc = HashMap::new();
        for k in keys {
            tpfc.insert(format!("filter.{k}"), pack_any(per_route.clone()));
        }
        RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vec![VirtualHost {
                name: "vh".into(),
                domains: vec!["*".into()],
                routes: vec![Route {
                    name: "r".into(),
                    typed_per_filter_config: tpfc,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    const NAME: &str = "envoy.config.route.v3.RouteConfiguration";

    #[test]
    fn same_content_same_bytes_whatever_the_map_order() {
        let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut reversed = keys.clone();
        reversed.reverse();
        let a = config(&keys).encode_to_vec();
        let mut seen_different_raw = false;
        for _ in 0..20 {
            let b = config(&reversed).encode_to_vec();
            seen_different_raw |= a != b;
            assert_eq!(canonical(NAME, &a).unwrap(), canonical(NAME, &b).unwrap());
        }
        // 16 entries at two levels: raw encodings of equal maps differ (else this test is moot).
        assert!(seen_different_raw);
    }

    #[test]
    fn different_content_different_bytes() {
        let a = config(&["a", "b"]).encode_to_vec();
        let b = config(&["a", "c"]).encode_to_vec();
        assert_ne!(canonical(NAME, &a).unwrap(), canonical(NAME, &b).unwrap());
    }

    #[test]
    fn canonical_form_still_decodes_to_the_same_content() {
        let msg = config(&["x", "y", "z"]);
        let raw = msg.encode_to_vec();
        let canon = canonical(NAME, &raw).unwrap();
        let back = RouteConfiguration::decode(canon.as_ref()).unwrap();
        let (got, want) = (&back.virtual_hosts[0].routes[0], &msg.virtual_hosts[0].routes[0]);
        assert_eq!(got.typed_per_filter_config.len(), want.typed_per_filter_config.len());
        for (k, any) in &want.typed_per_filter_config {
            let want = ExtAuthzPerRoute::decode(any.value.as_slice()).unwrap();
            let got = ExtAuthzPerRoute::decode(got.typed_per_filter_config[k].value.as_slice()).unwrap();
            assert_eq!(got, want);
        }
        // Canonicalising twice changes nothing.
        assert_eq!(canonical(NAME, &canon).unwrap(), canon);
    }

    #[test]
    fn any_wrapping_is_canonicalised() {
        let a = pack_any(config(&["p", "q", "r", "s", "t", "u"])).encode_to_vec();
        let b = pack_any(config(&["u", "t", "s", "r", "q", "p"])).encode_to_vec();
        assert_eq!(canonical_any(&a).unwrap(), canonical_any(&b).unwrap());
    }

    #[test]
    fn messages_without_maps_are_borrowed() {
        let bytes = [8u8, 1];
        assert!(matches!(
            canonical("envoy.config.core.v3.SocketAddress", &bytes),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        // Length-delimited field claiming 100 bytes with 1 present.
        let bad = [0x0a, 100, 1];
        assert_eq!(canonical(NAME, &bad), Err(Error::Malformed));
        assert_eq!(canonical(NAME, &[0x0b]), Err(Error::Malformed));
        assert_eq!(canonical_any(&[0x12, 5, 1]), Err(Error::Malformed));
    }
}
