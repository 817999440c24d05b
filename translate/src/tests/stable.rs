//! A stable text form of prost messages for golden files.
//!
//! prost gives messages only a `Debug` form, which lists every field, so a newer `envoy-types` that adds
//! fields would rewrite every golden file. This reads the pretty `Debug` text back into a JSON value
//! that keeps only fields set to something other than their default (as protobuf's JSON mapping does),
//! drops `Some(..)` wrappers, names `oneof` arms and enum values by their variant, and renders an
//! `Any`'s bytes as hex; the golden files hold that value as YAML.

use serde_json::{Map, Value};

/// The stable form of a value printed with `{:#?}`.
pub fn stable(debug: &str) -> Value {
    let mut p = Parser {
        s: debug.as_bytes(),
        i: 0,
    };
    let v = p.value();
    p.ws();
    assert_eq!(p.i, p.s.len(), "unparsed Debug text at byte {}", p.i);
    v.unwrap_or(Value::Null)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.s.get(self.i) == Some(&c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn peek(&mut self) -> u8 {
        self.ws();
        self.s.get(self.i).copied().unwrap_or(0)
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || b"_-.#".contains(&self.s[self.i])) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = Vec::new();
        while self.s[self.i] != b'"' {
            if self.s[self.i] == b'\\' {
                self.i += 1;
                match self.s[self.i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'0' => out.push(0),
                    // `\"`, `\\`, `\'`; a `\u{..}` escape is kept as written.
                    b'u' => out.extend_from_slice(b"\\u"),
                    other => out.push(other),
                }
            } else {
                out.push(self.s[self.i]);
            }
            self.i += 1;
        }
        self.i += 1;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// One value; `None` when it is the default (so the field is left out).
    fn value(&mut self) -> Option<Value> {
        match self.peek() {
            b'"' => Some(self.string()).filter(|s| !s.is_empty()).map(Value::String),
            b'[' => self.list(),
            b'{' => self.map(),
            c if c == b'-' || c.is_ascii_digit() => {
                let w = self.word();
                let n: f64 = w.parse().unwrap_or_else(|_| panic!("bad number {w}"));
                (n != 0.0).then(|| serde_json::from_str(&w).unwrap_or(Value::String(w)))
            }
            _ => self.named(),
        }
    }

    fn list(&mut self) -> Option<Value> {
        self.eat(b'[');
        let mut items = Vec::new();
        while !self.eat(b']') {
            items.push(self.value().unwrap_or(Value::Null));
            self.eat(b',');
        }
        (!items.is_empty()).then_some(Value::Array(items))
    }

    fn map(&mut self) -> Option<Value> {
        self.eat(b'{');
        let mut out = Map::new();
        while !self.eat(b'}') {
            let key = match self.peek() {
                b'"' => self.string(),
                // A field named after a keyword prints as `r#match`; the proto field is `match`.
                _ => self.word().trim_start_matches("r#").to_string(),
            };
            assert!(self.eat(b':'), "expected ':' after {key}");
            if let Some(v) = self.value() {
                out.insert(key, v);
            }
            self.eat(b',');
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }

    /// `Name { .. }`, `Name(..)`, or a bare name (enum value, bool, `None`).
    fn named(&mut self) -> Option<Value> {
        let name = self.word();
        match self.peek() {
            b'{' => {
                let fields = self.map();
                if name == "Any" {
                    return Some(any_with_hex(fields));
                }
                Some(fields.unwrap_or(Value::Object(Map::new())))
            }
            b'(' => {
                self.eat(b'(');
                let inner = self.value();
                self.eat(b',');
                assert!(self.eat(b')'), "expected ')' closing {name}");
                if name == "Some" {
                    // A set message field is present even when all its fields are defaults.
                    return Some(inner.unwrap_or(Value::Object(Map::new())));
                }
                let mut arm = Map::new();
                arm.insert(name, inner.unwrap_or(Value::Object(Map::new())));
                Some(Value::Object(arm))
            }
            _ => match name.as_str() {
                "None" | "false" => None,
                "true" => Some(Value::Bool(true)),
                // An enum's default is its zero variant, which the Debug text does not mark, so every
                // enum value is kept.
                _ => Some(Value::String(name)),
            },
        }
    }
}

/// An `Any`'s `value` is bytes, printed by Debug as a list of numbers: show it as one hex string.
fn any_with_hex(fields: Option<Value>) -> Value {
    let mut fields = match fields {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(Value::Array(bytes)) = fields.remove("value") {
        let hex: String = bytes
            .iter()
            .map(|b| format!("{:02x}", b.as_u64().unwrap_or(0)))
            .collect();
        fields.insert("value".into(), Value::String(hex));
    }
    Value::Object(fields)
}
