//! The Prometheus connection as the transport of the run's outbound deliveries
//! (`run::outbound`): notifications and Pushgateway pushes use the same client, auth,
//! CA bundle, extra headers and timeout as queries, and the same scrubbing of every
//! message. One attempt per call: `run::outbound` owns the retries and the time bounds.

use prometheus_http_query::reqwest::{self, StatusCode};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use shakedown_vocab::error_chain as chain;

use super::PrometheusEndpoint;
use super::auth::scrub;
use super::endpoint::{PrometheusSettings, SetupError};
use crate::run::outbound::{Method, Request, SendError, SendFuture, Transport};
use crate::spec::PrometheusSpec;

impl PrometheusEndpoint {
    /// A receiver of the run's deliveries with the connection options of `spec`;
    /// `server` names it in messages (`Pushgateway`, `webhook`).
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
            let permanent = |message: String| SendError {
                transient: false,
                message,
            };
            let secrets = self.auth.secrets().map_err(|e| permanent(chain(&e)))?;
            let authorization = self
                .auth
                .authorization(&secrets)
                .map_err(|e| permanent(chain(&e)))?;
            let base = self.client.base_url().as_str();
            let url = match request.path.as_str() {
                "" => base.to_owned(),
                path => format!("{}/{path}", base.trim_end_matches('/')),
            };
            let method = match request.method {
                Method::Post => reqwest::Method::POST,
                Method::Put => reqwest::Method::PUT,
            };
            let mut builder = self
                .client
                .inner()
                .request(method, url)
                .header(CONTENT_TYPE, request.content_type)
                .body(request.body.clone());
            for (name, value) in &self.headers {
                builder = builder.header(name.clone(), value.clone());
            }
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            if let Some(value) = authorization {
                builder = builder.header(AUTHORIZATION, value);
            }
            let response = builder.send().await.map_err(|e| SendError {
                transient: true,
                message: scrub(self.request_error(&e), &secrets),
            })?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let body = self
                .read_body(response, "maxResponseMiB", &secrets)
                .await
                .unwrap_or_default();
            let snippet: String = body.trim().chars().take(200).collect();
            Err(SendError {
                transient: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
                message: scrub(
                    format!(
                        "{} at {} answered {status}: {snippet}",
                        self.server, self.display_url
                    ),
                    &secrets,
                ),
            })
        })
    }
}
