//! `tollgate keys create|regenerate|revoke`: a new key's value is printed once, set apart so it
//! is not missed (the server keeps only its digest), with how to call the API with it; `-q`
//! prints the value alone, for `KEY=$(tollgate keys create files-v1 -q)`.

use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::conn::{Api, Client};
use super::output::{emit, structured};
use super::{ClientError, KeysCommand, Output};

/// Runs a `keys` command.
pub(super) async fn run(c: &Client, cmd: KeysCommand, out: Output) -> Result<ExitCode, ClientError> {
    match cmd {
        KeysCommand::Create {
            api,
            name,
            expires_in,
            quiet,
        } => {
            let mut body = json!({});
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            if let Some(d) = expires_in {
                body["expiresIn"] = lifetime(d);
            }
            let url = c.url(Api::Management, &["rest-apis", &api, "api-keys"]);
            let answer = c.send(Method::POST, url, Some(&body)).await?;
            shown_once(&answer, &api, "created", quiet, out)
        }
        KeysCommand::Regenerate {
            api,
            name,
            expires_in,
            grace_period,
            quiet,
        } => {
            let mut body = json!({});
            if let Some(d) = expires_in {
                body["expiresIn"] = lifetime(d);
            }
            if let Some(g) = grace_period {
                body["gracePeriod"] = json!(g);
            }
            let url = c.url(Api::Management, &["rest-apis", &api, "api-keys", &name, "regenerate"]);
            let answer = c.send(Method::POST, url, Some(&body)).await?;
            shown_once(&answer, &api, "regenerated", quiet, out)
        }
        KeysCommand::Revoke { api, name } => {
            let url = c.url(Api::Management, &["rest-apis", &api, "api-keys", &name]);
            let answer = c.send(Method::DELETE, url, None).await?;
            if !structured(&answer, out)? {
                emit(&format!("API key {name} of API {api} revoked\n"));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `expiresIn` in seconds (the server's finest unit).
fn lifetime(d: Duration) -> Value {
    json!({"unit": "seconds", "duration": d.as_secs()})
}

/// Prints a create or regenerate answer: the new value, once.
fn shown_once(answer: &Value, api: &str, done: &str, quiet: bool, out: Output) -> Result<ExitCode, ClientError> {
    let key = &answer["apiKey"];
    let Some(value) = key["apiKey"].as_str() else {
        return Err(ClientError::Answer("the answer holds no apiKey.apiKey".into()));
    };
    if quiet {
        emit(&format!("{value}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    if structured(answer, out)? {
        return Ok(ExitCode::SUCCESS);
    }
    let name = key["name"].as_str().unwrap_or("?");
    let expires = key["expiresAt"].as_str().unwrap_or("never");
    let mut text = format!(
        "API key {name} {done} for API {api} (expires: {expires}).\n\
         This is the only time its value is shown; store it now:\n\n    {value}\n"
    );
    let invocation = &answer["invocation"];
    // `curlExample` is WSO2's name for it (the invocation object of newer controllers), `curl` ours before.
    let curl = invocation["curlExample"].as_str().or(invocation["curl"].as_str());
    match invocation["note"].as_str() {
        Some(note) => text.push_str(&format!("\nNote: {note}\n")),
        None => {
            if let Some(curl) = curl {
                text.push_str(&format!("\nCall the API with it:\n\n    {curl}\n"));
            }
        }
    }
    emit(&text);
    Ok(ExitCode::SUCCESS)
}
