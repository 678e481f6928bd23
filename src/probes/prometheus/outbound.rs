//! The Prometheus connection as the transport of the run's outbound deliveries
//! (`run::outbound`): notifications and Pushgateway pushes go through the endpoint's one
//! `send_request`, so they share the client, auth, CA bundle, extra headers, timeout,
//! size cap and scrubbing of queries. One attempt per call: `run::outbound` owns the
//! retries and the time bounds.

use prometheus_http_query::reqwest::{self, StatusCode};

use super::PrometheusEndpoint;
use super::client::{Failure, Outgoing};
use super::endpoint::{PrometheusSettings, SetupError};
use crate::run::outbound::{Method, Request, SendError, SendFuture, Transport};
use crate::spec::PrometheusSpec;

impl PrometheusEndpoint {
    /// A receiver of the run's deliveries with the connection options of `spec`;
    /// `server` names it in messages (`Pushgateway`, `webhook`, `Slack`).
    pub fn outbound(spec: &PrometheusSpec, server: &'static str) -> Result<Self, SetupError> {
        let settings = PrometheusSettings {
            spec: Some(spec.clone()),
            ..PrometheusSettings::default()
        };
        let endpoint = Self::new(&settings).map_err(|e| match e {
            SetupError::NoUrl => SetupError::NoUrlFor(server),
            other => other,
        })?;
        Ok(Self { server, ..endpoint })
    }
}

impl Transport for PrometheusEndpoint {
    fn send<'a>(&'a self, request: &'a Request) -> SendFuture<'a> {
        Box::pin(async move {
            let method = match request.method {
                Method::Post => reqwest::Method::POST,
                Method::Put => reqwest::Method::PUT,
            };
            let mut outgoing = Outgoing::with_body(
                method,
                &request.path,
                request.content_type,
                request.body.clone(),
            );
            outgoing.headers.clone_from(&request.headers);
            let failed = |failure: Failure| SendError {
                transient: failure.transient,
                message: failure.message,
            };
            let (status, body, secrets) = self.send_request(&outgoing).await.map_err(failed)?;
            if status.is_success() {
                return Ok(());
            }
            let snippet: String = body.trim().chars().take(200).collect();
            let failure = Failure {
                transient: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
                status: Some(status),
                message: format!("answered {status}: {snippet}"),
            };
            Err(failed(self.located(failure, &secrets)))
        })
    }
}
