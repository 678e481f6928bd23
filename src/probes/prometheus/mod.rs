//! PromQL probes: instant queries against Prometheus (or Mimir, Thanos, …), pinned to
//! the evaluation time the executor hands in, so a sample can be re-checked later.
//!
//! This module owns the connection: URL with any path prefix, bearer token (flag, env
//! var or file, re-read on every request), basic auth, CA bundle, `insecureSkipVerify`,
//! extra headers, timeouts, and retries with backoff on transient failures. Secrets are
//! held in `Secret`, which never prints, and are registered with the process's redactor
//! (`run::redact`) when read, which scrubs them from every output; this module also
//! scrubs every message and answer body it produces, so no description, observation,
//! warning or label it returns may contain one.
//!
//! The connection is split by concern: `endpoint` (settings, URL, TLS, headers), `auth`
//! (secrets, bearer and basic auth, scrubbing), `client` (requests, retries, the API's
//! envelope) and `decode` (instant and range values). This file holds the probe itself.

mod auth;
mod client;
mod decode;
mod endpoint;
mod outbound;
mod put;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use shakedown_vocab::error_chain as chain;

pub use auth::{CredentialError, Secret, SecretSource};
pub use client::{Answer, RangeAnswer};
pub use endpoint::{
    DEFAULT_TIMEOUT, PrometheusEndpoint, PrometheusSettings, SetupError, check_url_flag,
    display_url,
};
pub use put::PUT_ATTEMPTS;

use super::{Observation, Probe, QueryError, RangeFuture, SampleFuture};

/// A PromQL hypothesis's probe: one instant query per sample, at the sample's time.
pub struct PromqlProbe {
    endpoint: Arc<PrometheusEndpoint>,
    query: String,
}

impl PromqlProbe {
    pub fn new(endpoint: Arc<PrometheusEndpoint>, query: String) -> Self {
        Self { endpoint, query }
    }
}

impl Probe for PromqlProbe {
    /// The query only: the URL and credentials are the run's, not the hypothesis's.
    fn describe(&self) -> String {
        self.query.clone()
    }

    fn sample(&self, at: Timestamp) -> SampleFuture<'_> {
        Box::pin(async move {
            match self.endpoint.instant(&self.query, at).await {
                // Warnings win: a partial answer is inconclusive whatever else it says.
                Ok(Answer {
                    values,
                    warnings,
                    stale: Some(reason),
                }) if warnings.is_empty() => Observation::Stale { values, reason },
                Ok(answer) if answer.warnings.is_empty() => Observation::Values(answer.values),
                Ok(answer) => Observation::Partial {
                    values: answer.values,
                    reason: format!(
                        "Prometheus returned a partial answer: {}",
                        answer.warnings.join("; ")
                    ),
                },
                Err(e) => Observation::Error(e.to_string()),
            }
        })
    }

    fn sample_range(
        &self,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Option<RangeFuture<'_>> {
        Some(Box::pin(async move {
            let answer = self.endpoint.range(&self.query, start, end, step).await?;
            let partial = (!answer.warnings.is_empty()).then(|| {
                format!(
                    "Prometheus returned a partial answer: {}",
                    answer.warnings.join("; ")
                )
            });
            Ok(answer
                .points
                .into_iter()
                .map(|(at, values)| {
                    let observation = match &partial {
                        None => Observation::Values(values),
                        Some(reason) => Observation::Partial {
                            values,
                            reason: reason.clone(),
                        },
                    };
                    (at, observation)
                })
                .collect())
        }))
    }
}

/// A PromQL probe that cannot run because Prometheus is not configured usably: every
/// sample is an error, never a pass.
pub struct Unconfigured {
    pub query: String,
    pub why: String,
}

impl Probe for Unconfigured {
    fn describe(&self) -> String {
        self.query.clone()
    }
    fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
        Box::pin(async move { Observation::Error(self.why.clone()) })
    }
}

/// The probe for one PromQL hypothesis, given how the run's endpoint came out.
pub fn probe(
    endpoint: &Result<Arc<PrometheusEndpoint>, SetupError>,
    query: &str,
) -> Arc<dyn Probe> {
    match endpoint {
        Ok(endpoint) => Arc::new(PromqlProbe::new(endpoint.clone(), query.to_owned())),
        Err(why) => Arc::new(Unconfigured {
            query: query.to_owned(),
            why: chain(why),
        }),
    }
}

impl PrometheusEndpoint {
    /// One trivial query (`vector(1)`, now), as preflight asks before anything is
    /// touched: it goes the way every sample goes (path prefix, credentials, headers,
    /// TLS), so a refusal here is the refusal a sample would meet. `Err` says what went
    /// wrong in words, with the URL and never a secret.
    pub async fn check(&self) -> Result<(), QueryError> {
        let answer = self.instant("vector(1)", Timestamp::now()).await?;
        match answer.values.first().and_then(|v| v.value) {
            Some(1.0) => Ok(()),
            _ => Err(QueryError(format!(
                "Prometheus at {} answered `vector(1)` without the value 1: is this a Prometheus query API? (check the URL and its path prefix)",
                self.display_url
            ))),
        }
    }
}

/// Builds the run's endpoint, shared by all its PromQL probes.
pub fn endpoint(settings: &PrometheusSettings) -> Result<Arc<PrometheusEndpoint>, SetupError> {
    PrometheusEndpoint::new(settings).map(Arc::new)
}
