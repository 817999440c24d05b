//! Printing results: aligned columns for people (like `kubectl get`), or the server's JSON as
//! JSON or YAML for scripts. Writes that fail (a closed pipe: `tollgate get apis | head -1`) are
//! ignored rather than panicking as `println!` would.

use std::io::Write;

use serde_json::Value;

use super::{ClientError, Output};

/// Rows under a header, each column as wide as its widest cell.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

// === impl Table ===

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, three spaces between columns, no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let cell = |row: &[String], i: usize| row.get(i).map(String::as_str).unwrap_or("").to_string();
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let all: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let widths: Vec<usize> = (0..columns)
            .map(|i| all.iter().map(|r| cell(r, i).chars().count()).max().unwrap_or(0))
            .collect();
        let mut text = String::new();
        for row in all {
            let line: Vec<String> = (0..columns)
                .map(|i| format!("{:<width$}", cell(row, i), width = widths[i]))
                .collect();
            text.push_str(line.join("   ").trim_end());
            text.push('\n');
        }
        text
    }
}

/// Writes `text` to standard output.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints `value` as JSON or YAML; `false` for [`Output::Table`] (the caller prints a table).
pub fn structured(value: &Value, output: Output) -> Result<bool, ClientError> {
    let text = match output {
        Output::Table => return Ok(false),
        Output::Json => serde_json::to_string_pretty(value).map_err(|e| ClientError::Answer(e.to_string()))? + "\n",
        Output::Yaml => serde_yaml::to_string(value).map_err(|e| ClientError::Answer(e.to_string()))?,
    };
    emit(&text);
    Ok(true)
}

/// A cell: strings as they are, numbers and booleans as text, null or absent as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The list under `key` in a list answer (empty when absent).
pub fn items<'a>(answer: &'a Value, key: &str) -> &'a [Value] {
    answer[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}
