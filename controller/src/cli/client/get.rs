//! `tollgate get apis|api NAME|keys API|subscriptions|plans|secrets` and `tollgate delete api NAME`: the
//! management API's list and read answers as tables, or as they came (`-o json|yaml`).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use super::conn::{Api, Client};
use super::output::{Table, cell, emit, items, structured};
use super::{ClientError, GetWhat, Output};

/// Runs a `get`.
pub(super) async fn run(c: &Client, what: GetWhat, out: Output) -> Result<ExitCode, ClientError> {
    let table = match what {
        GetWhat::Apis => {
            let answer = c
                .send(Method::GET, c.url(Api::Management, &["rest-apis"]), None)
                .await?;
            if structured(&answer, out)? {
                return Ok(ExitCode::SUCCESS);
            }
            apis_table(items(&answer, "apis")).render()
        }
        GetWhat::Api { name } => {
            let answer = c
                .send(Method::GET, c.url(Api::Management, &["rest-apis", &name]), None)
                .await?;
            if structured(&answer, out)? {
                return Ok(ExitCode::SUCCESS);
            }
            let mut text = apis_table(std::slice::from_ref(&answer)).render();
            if let Some(m) = answer["status"]["message"].as_str() {
                text.push_str(&format!("\nMessage: {m}\n"));
            }
            text
        }
        GetWhat::Keys { api } => {
            let url = c.url(Api::Management, &["rest-apis", &api, "api-keys"]);
            let answer = c.send(Method::GET, url, None).await?;
            if structured(&answer, out)? {
                return Ok(ExitCode::SUCCESS);
            }
            keys_table(items(&answer, "apiKeys")).render()
        }
        GetWhat::Subscriptions { api } => {
            let mut url = c.url(Api::Management, &["subscriptions"]);
            if let Some(api) = api {
                url.query_pairs_mut().append_pair("apiId", &api);
            }
            let answer = c.send(Method::GET, url, None).await?;
            if structured(&answer, out)? {
                return Ok(ExitCode::SUCCESS);
            }
            subscriptions_table(items(&answer, "subscriptions")).render()
        }
        GetWhat::Plans => {
            let url = c.url(Api::Management, &["subscription-plans"]);
            let answer = c.send(Method::GET, url, None).await?;
            if structured(&answer, out)? {
                return Ok(ExitCode::SUCCESS);
            }
            plans_table(items(&answer, "subscriptionPlans")).render()
        }
        GetWhat::Secrets => {
            let answer = c.send(Method::GET, c.url(Api::Management, &["secrets"]), None).await?;
            if structured(&answer, out)? {
                return Ok(ExitCode::SUCCESS);
            }
            secrets_table(items(&answer, "secrets")).render()
        }
    };
    emit(&table);
    Ok(ExitCode::SUCCESS)
}

/// `delete api NAME`.
pub(super) async fn delete_api(c: &Client, name: &str, out: Output) -> Result<ExitCode, ClientError> {
    let answer = c
        .send(Method::DELETE, c.url(Api::Management, &["rest-apis", name]), None)
        .await?;
    if !structured(&answer, out)? {
        emit(&format!("api {name} deleted\n"));
    }
    Ok(ExitCode::SUCCESS)
}

/// RestApi resources (a list's `apis[]`, or one `GET /rest-apis/{name}` answer).
pub fn apis_table(apis: &[Value]) -> Table {
    let mut t = Table::new(&["NAME", "VERSION", "CONTEXT", "STATE", "ORIGIN", "UPDATED"]);
    for a in apis {
        let version = cell(&a["spec"]["version"]);
        // A list answer resolves `$version` in the context; one API's answer is its document as stored.
        let context = cell(&a["spec"]["context"]).replace("$version", &version);
        t.row(vec![
            cell(&a["metadata"]["name"]),
            version,
            context,
            cell(&a["status"]["state"]),
            cell(&a["status"]["origin"]),
            cell(&a["status"]["updatedAt"]),
        ]);
    }
    t
}

/// Secrets as listed (no values).
pub fn secrets_table(secrets: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "DISPLAY NAME", "UPDATED"]);
    for s in secrets {
        t.row(vec![
            cell(&s["metadata"]["name"]),
            cell(&s["spec"]["displayName"]),
            cell(&s["status"]["updatedAt"]),
        ]);
    }
    t
}

/// Keys as listed (masked).
pub fn keys_table(keys: &[Value]) -> Table {
    let mut t = Table::new(&["NAME", "STATUS", "KEY", "EXPIRES", "CREATED BY", "ORIGIN"]);
    for k in keys {
        t.row(vec![
            cell(&k["name"]),
            cell(&k["status"]),
            cell(&k["maskedApiKey"]),
            cell(&k["expiresAt"]),
            cell(&k["createdBy"]),
            cell(&k["origin"]),
        ]);
    }
    t
}

/// Subscriptions (WSO2's shape, reference §1.8).
pub fn subscriptions_table(subs: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "API", "APPLICATION", "PLAN", "STATUS", "CREATED"]);
    for s in subs {
        t.row(vec![
            cell(&s["id"]),
            cell(&s["apiId"]),
            cell(&s["applicationId"]),
            cell(&s["subscriptionPlanId"]),
            cell(&s["status"]),
            cell(&s["createdAt"]),
        ]);
    }
    t
}

/// Subscription plans (WSO2's shape, reference §1.7).
pub fn plans_table(plans: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "LIMIT", "STOP ON QUOTA", "STATUS"]);
    for p in plans {
        let limit = match (&p["throttleLimitCount"], p["throttleLimitUnit"].as_str()) {
            (Value::Number(n), Some(unit)) => format!("{n}/{unit}"),
            _ => "-".into(),
        };
        t.row(vec![
            cell(&p["id"]),
            cell(&p["planName"]),
            limit,
            cell(&p["stopOnQuotaReach"]),
            cell(&p["status"]),
        ]);
    }
    t
}
