//! `tollgate probe URL`: GETs `URL` (e.g. `/api/admin/v1/ready`) and exits 0 on a 2xx, 1 otherwise,
//! printing the answer; for container health checks, where the image has no HTTP client.

use std::process::ExitCode;
use std::time::Duration;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The request could not be made or answered.
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    /// The answer was not a 2xx (its status and body).
    #[error("{status}: {body}")]
    Status { status: reqwest::StatusCode, body: String },
}

/// GETs `url` within five seconds; the body of a 2xx answer.
pub async fn probe(url: &str) -> Result<String, ProbeError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let resp = client.get(url).send().await?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(body)
    } else {
        Err(ProbeError::Status { status, body })
    }
}

/// Runs the probe; exit 0 on a 2xx, 1 otherwise.
pub(super) fn run(url: &str) -> ExitCode {
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(probe(url)) {
        Ok(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: probe {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
