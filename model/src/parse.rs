//! Reading a `RestApi` document from untrusted bytes, with bounded cost.
//!
//! A body or platform artifact is attacker-controlled, so every parse is bounded before a deep tree is
//! built: YAML through `serde-saphyr`, whose budget caps nesting depth, events, aliases and anchors and
//! the events an alias may replay (an alias bomb fails at the cap instead of expanding), and JSON through
//! `serde_json`, which refuses nesting past 128 levels. Scalars are bounded by the body size the caller
//! enforces. Callers run this off the async workers (it is CPU work proportional to the input).

use serde_json::Value;

use crate::RestApiDoc;

/// How deep a document may nest (maps and lists). A `RestApi` needs about ten levels; policy
/// parameters a few more.
pub const MAX_DEPTH: usize = 64;
/// How many YAML events (scalars, collection starts and ends) one document may have.
pub const MAX_EVENTS: usize = 200_000;
/// How many alias references a YAML document may use, and how many events they may replay in total.
pub const MAX_ALIASES: usize = 1_000;
const MAX_REPLAYED_EVENTS: usize = 20_000;

/// Why a document could not be read. The text is shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The JSON is malformed or nests too deeply.
    #[error("failed to parse JSON: {0}")]
    Json(String),
    /// The YAML is malformed or over one of the bounds.
    #[error("failed to parse YAML: {0}")]
    Yaml(String),
    /// The document is valid YAML or JSON but not a mapping.
    #[error("the document must be a mapping")]
    NotMapping,
    /// The mapping does not fit the `RestApi` schema (a field of the wrong type, say).
    #[error("{0}")]
    Schema(String),
}

/// Which syntax a body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `application/json`.
    Json,
    /// YAML (a superset of JSON): every other content type.
    Yaml,
}

impl Syntax {
    /// The syntax for a `content-type` header value (reference §1.3): JSON only for
    /// `application/json`, YAML otherwise.
    pub fn of_content_type(content_type: &str) -> Syntax {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/json") {
            Syntax::Json
        } else {
            Syntax::Yaml
        }
    }
}

/// Parses bytes in `syntax` into a generic value, within the bounds above.
pub fn value(bytes: &[u8], syntax: Syntax) -> Result<Value, ParseError> {
    match syntax {
        Syntax::Json => serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string())),
        Syntax::Yaml => yaml(bytes),
    }
}

/// Parses a `RestApi` document: a mapping that fits the document schema (validation comes after).
pub fn document(bytes: &[u8], syntax: Syntax) -> Result<RestApiDoc, ParseError> {
    mapping_to_document(value(bytes, syntax)?)
}

/// The document in a mapping already parsed (e.g. to look at `kind` first).
pub fn mapping_to_document(value: Value) -> Result<RestApiDoc, ParseError> {
    if !value.is_object() {
        return Err(ParseError::NotMapping);
    }
    serde_json::from_value(value).map_err(|e| ParseError::Schema(e.to_string()))
}

fn yaml(bytes: &[u8]) -> Result<Value, ParseError> {
    let mut options = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_events = MAX_EVENTS;
    budget.max_aliases = MAX_ALIASES;
    budget.flow_nesting_limit = MAX_DEPTH;
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    // One line with the position, not an excerpt of the (untrusted) input.
    options.with_snippet = false;
    // An empty body is an empty document, which is no mapping.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_saphyr::from_slice_with_options(bytes, options).map_err(|e| ParseError::Yaml(e.to_string()))
}

#[cfg(test)]
mod tests;
