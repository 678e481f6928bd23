//! Talking to Prometheus: instant and range requests with the timeout, headers and
//! credentials attached, retries with backoff on transient failures within the timeout,
//! and the reading of the HTTP API's envelope (status, error, warnings) into a `Failure`
//! or the answer's `data`.
//!
//! It must never let a secret into a failure: every message that may echo a request
//! passes through `scrub` before it leaves.

use std::time::Duration;

use jiff::Timestamp;
use prometheus_http_query::reqwest::{self, StatusCode};
use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use shakedown_vocab::error_chain as chain;

use super::PrometheusEndpoint;
use super::auth::{CredentialError, Secret, scrub};
use super::decode::{instant_values, matrix_points};
use crate::events::SeriesValue;
use crate::probes::QueryError;
use crate::run::retry::{Backoff, retry};

/// Attempts per sample, counting the first; only transient failures are retried.
const ATTEMPTS: usize = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

impl PrometheusEndpoint {
    /// One instant query at `at`, retried with backoff on transient failures.
    pub async fn instant(&self, query: &str, at: Timestamp) -> Result<Answer, QueryError> {
        self.with_retries(|| async {
            let (data, warnings) = self.send(Request::Instant { query, at }).await?;
            let values = instant_values(&data).map_err(|f| self.located(f, &[]))?;
            Ok(Answer { values, warnings })
        })
        .await
    }

    /// A range query over `[start, end]` every `step`: the series' values per step.
    pub async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<RangeAnswer, QueryError> {
        self.with_retries(|| async {
            let request = Request::Range {
                query,
                start,
                end,
                step,
            };
            let (data, warnings) = self.send(request).await?;
            let points = matrix_points(&data).map_err(|f| self.located(f, &[]))?;
            Ok(RangeAnswer { points, warnings })
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts or the time
    /// run out. All attempts together stay within the timeout, so a hung Prometheus
    /// cannot stall the sampling loop (and an `abort`) for longer than that.
    async fn with_retries<T, F, Fut>(&self, attempt_fn: F) -> Result<T, QueryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        // Counted for the message; atomic only because the probe's future must be `Send`.
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let attempt = || {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let answer = tokio::time::timeout_at(deadline, attempt_fn());
            async move {
                answer.await.unwrap_or_else(|_| {
                    Err(Failure::permanent(format!(
                        "Prometheus at {} did not answer within {:?}",
                        self.display_url, self.timeout
                    )))
                })
            }
        };
        let backoff = Backoff::new(FIRST_BACKOFF, self.timeout).with_attempts(ATTEMPTS);
        retry(backoff, deadline, |f: &Failure| f.transient, attempt)
            .await
            .map_err(|failure| match attempts.into_inner() {
                1 => QueryError(failure.message),
                n => QueryError(format!("{} (after {n} attempts)", failure.message)),
            })
    }

    /// One request: the `data` of a successful answer and its warnings.
    async fn send(&self, request: Request<'_>) -> Result<(Value, Vec<String>), Failure> {
        let secrets = self.auth.secrets().map_err(Failure::credentials)?;
        let authorization = self
            .auth
            .authorization(&secrets)
            .map_err(Failure::credentials)?;
        let timeout = format!("{}ms", self.timeout.as_millis());
        // The two builders share no trait; the same decoration applies to both.
        macro_rules! decorate {
            ($builder:expr) => {{
                let mut builder = $builder.query("timeout", &timeout);
                for (name, value) in &self.headers {
                    builder = builder.header(name.clone(), value.clone());
                }
                if let Some(value) = authorization.clone() {
                    builder = builder.header(AUTHORIZATION, value);
                }
                builder.get_raw().await
            }};
        }
        let sent = match request {
            // Millisecond precision: the library's `at()` takes whole seconds only.
            Request::Instant { query, at } => {
                decorate!(self.client.query(query).query("time", eval_time(at)))
            }
            Request::Range {
                query,
                start,
                end,
                step,
            } => {
                // Whole seconds, rounded inwards: no point before the fault is judged.
                let first = start.as_second() + i64::from(start.subsec_nanosecond() > 0);
                let last = end.as_second().max(first);
                let step = step.as_secs_f64().max(0.001);
                decorate!(self.client.query_range(query, first, last, step))
            }
        };
        let response = sent.map_err(|e| Failure {
            transient: true,
            message: scrub(self.transport_error(&e), &secrets),
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| Failure {
            transient: true,
            message: scrub(
                format!(
                    "reading the response from {} failed: {}",
                    self.display_url,
                    chain(&e)
                ),
                &secrets,
            ),
        })?;
        // Scrubbed whole, before any of it is cut into a snippet, a warning or a label.
        let body = scrub(body, &secrets);
        parse_response(status, &body).map_err(|f| self.located(f, &secrets))
    }

    /// Names the server in a failure, and scrubs any secret it echoed.
    fn located(&self, failure: Failure, secrets: &[Secret]) -> Failure {
        Failure {
            transient: failure.transient,
            message: scrub(
                format!("Prometheus at {}: {}", self.display_url, failure.message),
                secrets,
            ),
        }
    }

    fn transport_error(&self, error: &prometheus_http_query::Error) -> String {
        let transport = match error {
            prometheus_http_query::Error::Client(c) => {
                std::error::Error::source(c).and_then(|s| s.downcast_ref::<reqwest::Error>())
            }
            _ => None,
        };
        let url = &self.display_url;
        match transport {
            Some(e) if e.is_timeout() => {
                format!(
                    "Prometheus at {url} did not answer within {:?}",
                    self.timeout
                )
            }
            // The causes, without reqwest's own line: it repeats the whole query URL.
            Some(e) => match std::error::Error::source(e) {
                Some(cause) => format!("Prometheus at {url} is unreachable: {}", chain(cause)),
                None => format!("Prometheus at {url} is unreachable: {e}"),
            },
            None => format!("Prometheus at {url} is unreachable: {}", chain(error)),
        }
    }
}

/// What Prometheus answered: the series, and any warnings (a partial response).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub values: Vec<SeriesValue>,
    pub warnings: Vec<String>,
}

/// A range query's answer: per step, the value of each series.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAnswer {
    pub points: Vec<(Timestamp, Vec<SeriesValue>)>,
    pub warnings: Vec<String>,
}

enum Request<'a> {
    Instant {
        query: &'a str,
        at: Timestamp,
    },
    Range {
        query: &'a str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    },
}

#[derive(Debug)]
pub(super) struct Failure {
    pub(super) transient: bool,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn permanent(message: String) -> Self {
        Self {
            transient: false,
            message,
        }
    }

    fn credentials(error: CredentialError) -> Self {
        Self::permanent(chain(&error))
    }
}

pub(super) fn eval_time(at: Timestamp) -> String {
    let ms = at.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Reads the Prometheus HTTP API's envelope: its `data` and warnings. Warnings are
/// kept, not dropped: a partial answer from Thanos must not be judged as if it were
/// complete.
pub(super) fn parse_response(
    status: StatusCode,
    body: &str,
) -> Result<(Value, Vec<String>), Failure> {
    let transient_status = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    let Ok(mut envelope) = serde_json::from_str::<Value>(body) else {
        let snippet: String = body.trim().chars().take(200).collect();
        return Err(Failure {
            transient: transient_status,
            message: format!("HTTP {status}: {snippet}"),
        });
    };
    if envelope["status"] != "success" {
        let kind = envelope["errorType"].as_str().unwrap_or("unknown");
        let message = envelope["error"].as_str().unwrap_or("no error message");
        return Err(Failure {
            transient: transient_status || matches!(kind, "timeout" | "unavailable"),
            message: format!("HTTP {status}: {kind}: {message}"),
        });
    }
    let warnings = envelope["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((envelope["data"].take(), warnings))
}
