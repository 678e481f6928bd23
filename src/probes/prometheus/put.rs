//! PUTting a file to an HTTP endpoint configured like Prometheus: the run's `upload:`
//! block (or `run --upload URL`) has the same connection options as `prometheus:`, so
//! the upload goes through this module's one HTTP client with the same credentials,
//! headers, CA bundle, timeout and scrubbing as a query, and never a second copy of them.
//!
//! Unlike a query, each attempt gets the whole timeout (a report may be large and the
//! receiver slow); a transport failure, a 5xx or a 429 is retried with backoff, any other
//! refusal is final. Like everything here, no failure carries a secret.

use std::time::Duration;

use prometheus_http_query::reqwest::{Method, StatusCode};

use super::client::{Failure, Outgoing};
use super::{PrometheusEndpoint, PrometheusSettings, SetupError};
use crate::probes::QueryError;
use crate::run::retry::{Backoff, retry};
use crate::spec::PrometheusSpec;

/// Attempts per file, counting the first.
pub const PUT_ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The most one file's retries wait in all, on top of their attempts.
const BACKOFF_BUDGET: Duration = Duration::from_secs(2);

impl PrometheusEndpoint {
    /// The endpoint of an `upload:` block (`--upload URL` already folded into its url).
    pub fn upload_target(spec: &PrometheusSpec) -> Result<Self, SetupError> {
        let settings = PrometheusSettings {
            spec: Some(spec.clone()),
            ..PrometheusSettings::default()
        };
        let endpoint = Self::new(&settings).map_err(|e| match e {
            SetupError::NoUrl => SetupError::NoUploadUrl,
            other => other,
        })?;
        Ok(Self {
            server: "upload",
            ..endpoint
        })
    }

    /// How long one file may take at most, all its attempts and waits together.
    pub fn put_budget(&self) -> Duration {
        self.timeout * PUT_ATTEMPTS + BACKOFF_BUDGET
    }

    /// PUTs `body` to `path` under the base URL (`path` already percent-encoded). Only a
    /// 2xx answer is success.
    pub async fn put(
        &self,
        path: &str,
        body: &[u8],
        content_type: &'static str,
    ) -> Result<(), QueryError> {
        let deadline = tokio::time::Instant::now() + self.put_budget();
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let request = Outgoing::with_body(Method::PUT, path, content_type, body.to_vec());
        let attempt = || {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.put_once(&request)
        };
        let backoff =
            Backoff::new(FIRST_BACKOFF, BACKOFF_BUDGET).with_attempts(PUT_ATTEMPTS as usize);
        retry(backoff, deadline, |f: &Failure| f.transient, attempt)
            .await
            .map_err(|failure| match attempts.into_inner() {
                1 => QueryError(failure.message),
                n => QueryError(format!("{} (after {n} attempts)", failure.message)),
            })
    }

    /// One PUT through the client's one request path (`send_request`); the client's
    /// timeout bounds it, the answer's body included.
    async fn put_once(&self, request: &Outgoing<'_>) -> Result<(), Failure> {
        let path = request.path;
        let (status, answer, secrets) = self.send_request(request).await.map_err(|f| Failure {
            message: format!("{path}: {}", f.message),
            ..f
        })?;
        if status.is_success() {
            return Ok(());
        }
        let snippet: String = answer.trim().chars().take(200).collect();
        let failure = Failure {
            transient: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
            status: Some(status),
            message: format!("answered {status} to the PUT of {path}: {snippet}"),
        };
        Err(self.located(failure, &secrets))
    }
}
