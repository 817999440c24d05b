//! `request-rewrite`'s method and in-place query rewrites, done by the service on an allowed
//! request (the line's format: [`crate::catalogue::mediation::service`]). The answer sets `:method`
//! and `:path` on the request; the route Envoy already chose stays (the filter is configured not to
//! clear the route cache), so a rewrite never sends the request to another operation.
//!
//! Query rules behave as WSO2 documents them: `Replace` sets one value (dropping the others),
//! `Remove` drops every value, `Add` adds one more, `Append` adds `separator` and `value` to each
//! value (or adds the parameter when absent) and `ReplaceRegexMatch` substitutes every match in each
//! value (nothing when absent). Values are compared and edited decoded, and the query is encoded
//! again as `application/x-www-form-urlencoded` (`form_urlencoded`, the `url` crate's own codec).
//!
//! Compiled lines are kept (a route's line never changes while the route exists), bounded: a
//! full cache is emptied, so odd lines cost CPU but no memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use regex::Regex;
use serde_json::Value;
use tollgate_proto::pb::envoy::config::core::v3::HeaderValueOption;

use super::answer::header;

/// About how many distinct lines are kept compiled.
pub const MAX_LINES: usize = 4_096;

/// The compiled rewrites, by line.
#[derive(Debug, Default)]
pub struct Rewrites {
    compiled: RwLock<HashMap<Box<str>, Arc<Rewrite>>>,
}

/// One route's rewrite.
#[derive(Debug)]
struct Rewrite {
    method: Option<String>,
    query: Option<Vec<Rule>>,
}

/// One query rule.
#[derive(Debug)]
enum Rule {
    Replace(String, String),
    Remove(String),
    Add(String, String),
    Append {
        name: String,
        value: String,
        separator: String,
    },
    Regex {
        name: String,
        pattern: Regex,
        with: String,
    },
}

/// A line the service cannot read (never one the translator wrote).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl Rewrites {
    /// The request headers to set for `line` on the request `http` (an encoded `HttpRequest`).
    pub fn headers(&self, line: &[u8], http: &[u8]) -> Result<Vec<HeaderValueOption>, Malformed> {
        let line = std::str::from_utf8(line).map_err(|_| Malformed)?;
        let rewrite = self.compiled(line)?;
        let mut out = Vec::with_capacity(2);
        if let Some(m) = &rewrite.method {
            out.push(header(":method", m));
        }
        if let Some(rules) = &rewrite.query {
            let target = super::wire::path(http).ok_or(Malformed)?;
            let target = std::str::from_utf8(target).map_err(|_| Malformed)?;
            out.push(header(":path", &rewrite_query(target, rules)));
        }
        Ok(out)
    }

    fn compiled(&self, line: &str) -> Result<Arc<Rewrite>, Malformed> {
        if let Some(r) = self.compiled.read().map_err(|_| Malformed)?.get(line) {
            return Ok(r.clone());
        }
        let rewrite = Arc::new(compile(line)?);
        let mut all = self.compiled.write().map_err(|_| Malformed)?;
        if all.len() >= MAX_LINES {
            all.clear();
        }
        all.insert(line.into(), rewrite.clone());
        Ok(rewrite)
    }
}

fn compile(line: &str) -> Result<Rewrite, Malformed> {
    let v: Value = serde_json::from_str(line).map_err(|_| Malformed)?;
    let method = match v.get("method") {
        Some(m) => Some(m.as_str().ok_or(Malformed)?.to_string()),
        None => None,
    };
    let query = match v.get("query") {
        Some(q) => Some(
            q.as_array()
                .ok_or(Malformed)?
                .iter()
                .map(rule)
                .collect::<Result<_, _>>()?,
        ),
        None => None,
    };
    Ok(Rewrite { method, query })
}

fn rule(v: &Value) -> Result<Rule, Malformed> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let name = text("name").ok_or(Malformed)?;
    let value = || text("value").ok_or(Malformed);
    Ok(match v.get("action").and_then(Value::as_str) {
        Some("Replace") => Rule::Replace(name, value()?),
        Some("Remove") => Rule::Remove(name),
        Some("Add") => Rule::Add(name, value()?),
        Some("Append") => Rule::Append {
            name,
            value: value()?,
            separator: text("separator").unwrap_or_default(),
        },
        Some("ReplaceRegexMatch") => Rule::Regex {
            name,
            pattern: Regex::new(&text("pattern").ok_or(Malformed)?).map_err(|_| Malformed)?,
            with: replacement(&text("substitution").unwrap_or_default()),
        },
        _ => return Err(Malformed),
    })
}

/// An RE2-style substitution (`\1` a group, `\\` a backslash) in the `regex` crate's syntax
/// (`${1}`, with a literal `$` doubled).
fn replacement(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str("${");
                    out.push(d);
                    out.push('}');
                }
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// `target` (path and query) with `rules` applied to its query, in order.
fn rewrite_query(target: &str, rules: &[Rule]) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    for rule in rules {
        apply(&mut pairs, rule);
    }
    if pairs.is_empty() {
        return path.to_string();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    format!("{path}?{query}")
}

fn apply(pairs: &mut Vec<(String, String)>, rule: &Rule) {
    match rule {
        Rule::Replace(name, value) => {
            // The first value takes the new one; the others go.
            let mut seen = false;
            pairs.retain_mut(|(k, v)| {
                if k != name {
                    return true;
                }
                if seen {
                    return false;
                }
                seen = true;
                v.clone_from(value);
                true
            });
            if !seen {
                pairs.push((name.clone(), value.clone()));
            }
        }
        Rule::Remove(name) => pairs.retain(|(k, _)| k != name),
        Rule::Add(name, value) => pairs.push((name.clone(), value.clone())),
        Rule::Append { name, value, separator } => {
            let mut found = false;
            for (_, v) in pairs.iter_mut().filter(|(k, _)| k == name) {
                found = true;
                v.push_str(separator);
                v.push_str(value);
            }
            if !found {
                pairs.push((name.clone(), value.clone()));
            }
        }
        Rule::Regex { name, pattern, with } => {
            for (_, v) in pairs.iter_mut().filter(|(k, _)| k == name) {
                *v = pattern.replace_all(v, with.as_str()).into_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: &str, line: &str) -> String {
        let rewrite = compile(line).unwrap();
        rewrite_query(target, rewrite.query.as_deref().unwrap())
    }

    #[test]
    fn query_rules_apply_in_order_as_wso2_documents_them() {
        let line = r#"{"query": [
            {"action": "Append", "name": "tags", "value": "new", "separator": ","},
            {"action": "Append", "name": "fresh", "value": "1"},
            {"action": "ReplaceRegexMatch", "name": "id", "pattern": "^user-([0-9]+)$", "substitution": "u\\1$"},
            {"action": "ReplaceRegexMatch", "name": "absent", "pattern": "x", "substitution": "y"},
            {"action": "Replace", "name": "v", "value": "2"},
            {"action": "Remove", "name": "debug"},
            {"action": "Add", "name": "v", "value": "3"}]}"#;
        assert_eq!(
            run("/p/a?tags=a&id=user-42&v=1&debug=on&tags=b%20c&v=9", line),
            "/p/a?tags=a%2Cnew&id=u42%24&v=2&tags=b+c%2Cnew&fresh=1&v=3"
        );
        // On an empty query, Append and Replace add the parameter; the regex finds nothing.
        assert_eq!(run("/p", line), "/p?tags=new&fresh=1&v=2&v=3");
        let remove_all =
            r#"{"query": [{"action": "Remove", "name": "a"}, {"action": "Append", "name": "b", "value": ""}]}"#;
        assert_eq!(run("/p?a=1&a=2", remove_all), "/p?b=");
    }

    #[test]
    fn method_and_query_become_request_headers() {
        let rewrites = Rewrites::default();
        // An encoded HttpRequest with only its path (field 4).
        let target = b"/orders?q=a";
        let mut http = vec![0x22, target.len() as u8];
        http.extend_from_slice(target);
        let line =
            br#"{"method": "POST", "query": [{"action": "Append", "name": "q", "value": "b", "separator": "-"}]}"#;
        let set: Vec<(String, String)> = rewrites
            .headers(line, &http)
            .unwrap()
            .into_iter()
            .map(|h| h.header.map(|h| (h.key, h.value)).unwrap())
            .collect();
        assert_eq!(
            set,
            [
                (":method".to_string(), "POST".to_string()),
                (":path".to_string(), "/orders?q=a-b".to_string())
            ]
        );
        assert_eq!(rewrites.headers(b"{\"query\": 1}", &http), Err(Malformed));
        assert_eq!(rewrites.headers(b"not json", &http), Err(Malformed));
        let bad_regex =
            br#"{"query": [{"action": "ReplaceRegexMatch", "name": "q", "pattern": "(", "substitution": ""}]}"#;
        assert_eq!(rewrites.headers(bad_regex, &http), Err(Malformed));
    }

    #[test]
    fn substitutions_take_re2_group_syntax() {
        assert_eq!(replacement(r"\1-\2"), "${1}-${2}");
        assert_eq!(replacement(r"a\\b$c"), r"a\b$$c");
    }
}
