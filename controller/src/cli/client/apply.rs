//! `tollgate apply -f PATH`: creates or updates APIs from RestApi documents. Each document is
//! POSTed; a 409 (the name exists) makes it a PUT to `/rest-apis/{name}`. `-f -` reads standard
//! input, a folder gives every `.yaml`, `.yml` and `.json` file in it in name order, and a file may
//! hold several YAML documents separated by `---`. Documents go in order and the first one the
//! server refuses stops the run (those before it stay applied).
//!
//! A write already answers after every connected Envoy ACKed it; `--wait` also waits out a
//! `pending` answer (no Envoy, or one not answering in time) until each API is `deployed` and every
//! connected Envoy has ACKed the write's generation, and fails at once when an API turns `failed`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::conn::{Api, Client};
use super::output::{cell, emit, items, structured};
use super::status::{summarize, xds_sync_status};
use super::{ApplyArgs, ClientError, Output};

/// How often `--wait` looks again.
const POLL: Duration = Duration::from_millis(500);

/// One document to apply.
#[derive(Debug, PartialEq)]
pub struct Doc {
    /// Where it came from: `api.yaml`, `api.yaml (document 2)`, `<stdin>`.
    pub origin: String,
    pub body: Value,
    /// `metadata.name`, the handle an update goes to.
    pub name: Option<String>,
}

/// Runs `apply`.
pub(super) async fn run(c: &Client, a: &ApplyArgs, out: Output) -> Result<ExitCode, ClientError> {
    let docs = read_docs(&a.files)?;
    if docs.is_empty() {
        let paths: Vec<String> = a.files.iter().map(|p| p.display().to_string()).collect();
        return Err(ClientError::Document {
            origin: paths.join(", "),
            reason: "no document found".into(),
        });
    }
    let mut applied = Vec::new();
    for d in &docs {
        let (action, answer) = apply_one(c, d).await.map_err(|e| e.context(d.origin.clone()))?;
        let name = answer["status"]["id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| d.name.clone())
            .unwrap_or_default();
        if out == Output::Table {
            let (state, generation) = (cell(&answer["status"]["state"]), cell(&answer["status"]["generation"]));
            emit(&format!("api {name} {action} ({state}, generation {generation})\n"));
        }
        applied.push((name, answer));
    }
    if a.wait {
        let served = wait(c, &applied, a.timeout).await?;
        if out == Output::Table {
            emit(&format!("{served}\n"));
        }
    }
    let answers = Value::Array(applied.into_iter().map(|(_, answer)| answer).collect());
    structured(&answers, out)?;
    Ok(ExitCode::SUCCESS)
}

/// POST, and on a 409 PUT; `("created" | "configured", answer)`.
async fn apply_one(c: &Client, d: &Doc) -> Result<(&'static str, Value), ClientError> {
    let created = c
        .send(Method::POST, c.url(Api::Management, &["rest-apis"]), Some(&d.body))
        .await;
    match (created, &d.name) {
        (Ok(answer), _) => Ok(("created", answer)),
        (Err(conflict), Some(name)) if conflict.status() == Some(StatusCode::CONFLICT) => {
            let url = c.url(Api::Management, &["rest-apis", name]);
            match c.send(Method::PUT, url, Some(&d.body)).await {
                Ok(answer) => Ok(("configured", answer)),
                // No API of that name: the conflict was with another one (its context, say).
                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Err(conflict),
                Err(e) => Err(e),
            }
        }
        (Err(e), _) => Err(e),
    }
}

/// Every document of every path, in order.
pub fn read_docs(paths: &[PathBuf]) -> Result<Vec<Doc>, ClientError> {
    let mut docs = Vec::new();
    for path in paths {
        for (origin, text) in read_path(path)? {
            docs.extend(split(&origin, &text)?);
        }
    }
    Ok(docs)
}

/// `(origin, text)` of a file, of standard input (`-`), or of each document file in a folder.
fn read_path(path: &Path) -> Result<Vec<(String, String)>, ClientError> {
    let unreadable = |path: &Path| {
        let path = path.display().to_string();
        move |source| ClientError::Input { path, source }
    };
    if path == Path::new("-") {
        let text = std::io::read_to_string(std::io::stdin()).map_err(unreadable(Path::new("<stdin>")))?;
        return Ok(vec![("<stdin>".into(), text)]);
    }
    if !path.is_dir() {
        let text = std::fs::read_to_string(path).map_err(unreadable(path))?;
        return Ok(vec![(path.display().to_string(), text)]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(unreadable(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).map_err(unreadable(&f))?;
            Ok((f.display().to_string(), text))
        })
        .collect()
}

/// The documents of one text: a JSON object, or YAML documents separated by `---` (empty ones
/// skipped). Only the kind `RestApi` (or none, for the server to judge) is sent.
pub fn split(origin: &str, text: &str) -> Result<Vec<Doc>, ClientError> {
    let bad = |origin: String, reason: String| ClientError::Document { origin, reason };
    let values: Vec<(String, Value)> = if text.trim_start().starts_with('{') {
        let v = serde_json::from_str(text).map_err(|e| bad(origin.into(), format!("not JSON: {e}")))?;
        vec![(origin.to_string(), v)]
    } else {
        let mut values = Vec::new();
        for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let here = format!("{origin} (document {})", i + 1);
            let v = Value::deserialize(de).map_err(|e| bad(here.clone(), format!("not YAML: {e}")))?;
            values.push((here, v));
        }
        // A file of one document is named by its path alone.
        if let [(here, _)] = values.as_mut_slice() {
            *here = origin.to_string();
        }
        values
    };
    let mut docs = Vec::new();
    for (origin, body) in values {
        if body.is_null() {
            continue;
        }
        if !body.is_object() {
            return Err(bad(origin, "a document must be a mapping (a RestApi)".into()));
        }
        if let Some(kind) = body.get("kind").filter(|k| k.as_str() != Some("RestApi")) {
            return Err(bad(origin, format!("kind {kind} cannot be applied (only RestApi)")));
        }
        let name = body["metadata"]["name"].as_str().map(str::to_string);
        docs.push(Doc { origin, body, name });
    }
    Ok(docs)
}

/// Waits until every applied API is served by every connected Envoy; what it found.
async fn wait(c: &Client, applied: &[(String, Value)], timeout: Duration) -> Result<String, ClientError> {
    let deadline = Instant::now() + timeout;
    let generation = applied
        .iter()
        .filter_map(|(_, a)| a["status"]["generation"].as_u64())
        .max()
        .unwrap_or(0);
    loop {
        match check(c, applied, generation).await? {
            Ok(served) => return Ok(served),
            Err(why) if Instant::now() >= deadline => {
                let waited = humantime::format_duration(timeout);
                return Err(ClientError::Wait(format!("gave up waiting after {waited}: {why}")));
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// `Ok(Ok(what serves it))`, `Ok(Err(why not yet))`, or an error (an API failed).
async fn check(
    c: &Client,
    applied: &[(String, Value)],
    generation: u64,
) -> Result<Result<String, String>, ClientError> {
    let mut pending = Vec::new();
    for (name, _) in applied {
        let api = c
            .send(Method::GET, c.url(Api::Management, &["rest-apis", name]), None)
            .await?;
        match api["status"]["state"].as_str() {
            Some("failed") => {
                let why = cell(&api["status"]["message"]);
                return Err(ClientError::Wait(format!("api {name} failed: {why}")));
            }
            Some("pending") => pending.push(name.as_str()),
            _ => {}
        }
    }
    if !pending.is_empty() {
        return Ok(Err(format!(
            "{} still pending: not every Envoy has ACKed it",
            pending.join(", ")
        )));
    }
    let sync = match xds_sync_status(c).await {
        Ok(sync) => sync,
        // Not an admin (or no admin port): the API's own status is all there is to go on.
        Err(e @ (ClientError::Refused(_) | ClientError::Connect { .. })) => {
            return Ok(Ok(format!("deployed (per-Envoy status not available: {e})")));
        }
        Err(e) => return Err(e),
    };
    let nodes = items(&sync, "nodes");
    if nodes.is_empty() {
        return Ok(Err("no Envoy is connected".into()));
    }
    let behind = nodes.iter().filter(|n| summarize(n).acked < generation).count();
    if behind > 0 {
        return Ok(Err(format!(
            "{behind} of {} Envoys have not ACKed generation {generation}",
            nodes.len()
        )));
    }
    Ok(Ok(format!(
        "served by {} Envoy(s) at generation {generation}",
        nodes.len()
    )))
}
