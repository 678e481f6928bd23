//! PromQL probes: instant queries against Prometheus (or Mimir, Thanos, …), pinned to
//! the evaluation time the executor hands in, so a sample can be re-checked later.
//!
//! This module owns the connection: URL with any path prefix, bearer token (flag, env
//! var or file, re-read on every request), basic auth, CA bundle, `insecureSkipVerify`,
//! extra headers, timeouts, and retries with backoff on transient failures. Secrets are
//! held in `Secret`, which never prints, and are scrubbed from every error message: no
//! text this module produces (descriptions, observations) may contain one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use jiff::Timestamp;
use prometheus_http_query::Client;
use prometheus_http_query::reqwest::{self, StatusCode, Url};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::Value;
use shakedown_vocab::error_chain as chain;

use super::{Observation, Probe, QueryError, RangeFuture, SampleFuture};
use crate::events::SeriesValue;
use crate::run::retry::{Backoff, retry};
use crate::spec::PrometheusSpec;

/// How long one query may take when `prometheus.timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per sample, counting the first; only transient failures are retried.
const ATTEMPTS: usize = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A secret value. Its `Debug` never shows it, so it cannot leak through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a secret comes from. Files are re-read on every request, so a rotated token
/// (a projected service-account token, a Vault agent file) is picked up mid-run.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    Value(Secret),
    Env(String),
    File(PathBuf),
}

impl SecretSource {
    fn resolve(&self) -> Result<Secret, CredentialError> {
        match self {
            Self::Value(s) => Ok(s.clone()),
            Self::Env(name) => std::env::var(name)
                .map(|v| Secret(v.trim().to_owned()))
                .map_err(|_| CredentialError::EnvUnset { name: name.clone() }),
            Self::File(path) => std::fs::read_to_string(path)
                .map(|v| Secret(v.trim().to_owned()))
                .map_err(|source| CredentialError::File {
                    path: path.clone(),
                    source,
                }),
        }
    }
}

/// Why the credentials for a request cannot be sent. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("environment variable {name} is not set")]
    EnvUnset { name: String },
    #[error("cannot read secret file {}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Prometheus bearer token is empty")]
    EmptyToken,
    #[error("the Prometheus credentials contain characters an HTTP header cannot carry")]
    NotAHeader,
}

#[derive(Debug, Clone, PartialEq)]
enum Auth {
    None,
    Bearer(SecretSource),
    Basic {
        username: String,
        password: SecretSource,
    },
}

/// Everything the user gave about reaching Prometheus: flags win over the spec.
#[derive(Debug, Clone, Default)]
pub struct PrometheusSettings {
    /// `--prometheus-url`.
    pub url: Option<String>,
    /// `--prometheus-token` (or its env var).
    pub token: Option<Secret>,
    /// `--prometheus-token-file`.
    pub token_file: Option<PathBuf>,
    /// `spec.prometheus` of the experiment or scenario.
    pub spec: Option<PrometheusSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("no Prometheus URL: pass --prometheus-url or set spec.prometheus.url")]
    NoUrl,
    #[error("invalid Prometheus URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "the Prometheus URL must not carry credentials: use basicAuth with passwordEnv or passwordFile"
    )]
    CredentialsInUrl,
    #[error("cannot read the CA bundle {path}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA bundle {path} holds no usable PEM certificate")]
    CaPem {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("invalid header `{name}` in spec.prometheus.headers")]
    Header { name: String },
    #[error("cannot build the HTTP client for Prometheus")]
    Client(#[source] reqwest::Error),
}

/// A configured Prometheus: one HTTP client shared by every PromQL probe of a run.
pub struct PrometheusEndpoint {
    client: Client,
    /// The base URL as shown to people (never carries credentials).
    display_url: String,
    auth: Auth,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

impl std::fmt::Debug for PrometheusEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusEndpoint")
            .field("url", &self.display_url)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The URL for people: no user info, no trailing slash.
pub fn display_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

impl PrometheusEndpoint {
    pub fn new(settings: &PrometheusSettings) -> Result<Self, SetupError> {
        let spec = settings.spec.clone().unwrap_or_else(empty_spec);
        let raw_url = settings
            .url
            .clone()
            .or_else(|| spec.url.clone())
            .ok_or(SetupError::NoUrl)?;
        let parsed = Url::parse(raw_url.trim()).map_err(|e| SetupError::InvalidUrl {
            url: display_url(&raw_url),
            reason: e.to_string(),
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(SetupError::CredentialsInUrl);
        }
        // `…/prometheus/` would otherwise become `…/prometheus//api/v1/query`.
        let base = parsed.as_str().trim_end_matches('/').to_owned();
        let timeout = spec.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)));
        if let Some(path) = &spec.ca_file {
            let pem = std::fs::read(path).map_err(|source| SetupError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                SetupError::CaPem {
                    path: path.clone(),
                    source,
                }
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if spec.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(SetupError::Client)?;
        let client = Client::from(http, &base).map_err(|e| SetupError::InvalidUrl {
            url: display_url(&base),
            reason: e.to_string(),
        })?;
        let headers = spec
            .headers
            .iter()
            .map(|(name, value)| {
                let header = HeaderName::from_bytes(name.as_bytes()).ok();
                let value = HeaderValue::from_str(value).ok();
                header
                    .zip(value)
                    .ok_or_else(|| SetupError::Header { name: name.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            client,
            display_url: display_url(&base),
            auth: auth(settings, &spec),
            headers,
            timeout,
        })
    }

    pub fn display_url(&self) -> &str {
        &self.display_url
    }

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
        let secrets = self.secrets().map_err(Failure::credentials)?;
        let authorization = self.authorization(&secrets).map_err(Failure::credentials)?;
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

    fn secrets(&self) -> Result<Vec<Secret>, CredentialError> {
        match &self.auth {
            Auth::None => Ok(Vec::new()),
            Auth::Bearer(source) => Ok(vec![source.resolve()?]),
            Auth::Basic { password, .. } => Ok(vec![password.resolve()?]),
        }
    }

    /// The `Authorization` header, marked sensitive so no log of the client shows it.
    fn authorization(&self, secrets: &[Secret]) -> Result<Option<HeaderValue>, CredentialError> {
        let text = match (&self.auth, secrets.first()) {
            (Auth::Bearer(_), Some(token)) if token.expose().is_empty() => {
                return Err(CredentialError::EmptyToken);
            }
            (Auth::Bearer(_), Some(token)) => format!("Bearer {}", token.expose()),
            (Auth::Basic { username, .. }, Some(password)) => format!(
                "Basic {}",
                base64(format!("{username}:{}", password.expose()).as_bytes())
            ),
            _ => return Ok(None),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| CredentialError::NotAHeader)?;
        value.set_sensitive(true);
        Ok(Some(value))
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

fn empty_spec() -> PrometheusSpec {
    PrometheusSpec {
        url: None,
        timeout: None,
        bearer_token_env: None,
        bearer_token_file: None,
        basic_auth: None,
        ca_file: None,
        insecure_skip_verify: false,
        headers: Default::default(),
    }
}

fn auth(settings: &PrometheusSettings, spec: &PrometheusSpec) -> Auth {
    // An explicit file beats an ambient SHAKEDOWN_PROMETHEUS_TOKEN.
    if let Some(path) = &settings.token_file {
        return Auth::Bearer(SecretSource::File(path.clone()));
    }
    if let Some(token) = &settings.token {
        return Auth::Bearer(SecretSource::Value(token.clone()));
    }
    if let Some(name) = &spec.bearer_token_env {
        return Auth::Bearer(SecretSource::Env(name.clone()));
    }
    if let Some(path) = &spec.bearer_token_file {
        return Auth::Bearer(SecretSource::File(path.into()));
    }
    if let Some(basic) = &spec.basic_auth {
        let password = match (&basic.password_env, &basic.password_file) {
            (Some(name), _) => SecretSource::Env(name.clone()),
            (None, Some(path)) => SecretSource::File(path.into()),
            (None, None) => SecretSource::Value(Secret::new("")),
        };
        return Auth::Basic {
            username: basic.username.clone(),
            password,
        };
    }
    Auth::None
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
struct Failure {
    transient: bool,
    message: String,
}

impl Failure {
    fn permanent(message: String) -> Self {
        Self {
            transient: false,
            message,
        }
    }

    fn credentials(error: CredentialError) -> Self {
        Self::permanent(chain(&error))
    }
}

fn eval_time(at: Timestamp) -> String {
    let ms = at.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Reads the Prometheus HTTP API's envelope: its `data` and warnings. Warnings are
/// kept, not dropped: a partial answer from Thanos must not be judged as if it were
/// complete.
fn parse_response(status: StatusCode, body: &str) -> Result<(Value, Vec<String>), Failure> {
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

/// The series of an instant query's answer: a vector, or a scalar as one series.
fn instant_values(data: &Value) -> Result<Vec<SeriesValue>, Failure> {
    match data["resultType"].as_str() {
        Some("vector") => Ok(data["result"]
            .as_array()
            .map(|series| series.iter().map(series_value).collect())
            .unwrap_or_default()),
        Some("scalar") => Ok(vec![SeriesValue {
            labels: Default::default(),
            value: sample_value(&data["result"]),
        }]),
        Some(other) => Err(Failure::permanent(format!(
            "the query returns a {other}, not an instant vector or scalar (wrap a range selector in a function such as rate())"
        ))),
        None => Err(Failure::permanent("the answer has no resultType".into())),
    }
}

/// A range query's matrix, regrouped by step: at each time, the value of every series
/// that has one.
fn matrix_points(data: &Value) -> Result<Vec<(Timestamp, Vec<SeriesValue>)>, Failure> {
    if data["resultType"] != "matrix" {
        return Err(Failure::permanent(format!(
            "a range query returned {}, not a matrix",
            data["resultType"]
        )));
    }
    let mut by_time: std::collections::BTreeMap<i64, Vec<SeriesValue>> = Default::default();
    for series in data["result"].as_array().into_iter().flatten() {
        let labels = series_value(series).labels;
        for sample in series["values"].as_array().into_iter().flatten() {
            let Some(seconds) = sample.get(0).and_then(Value::as_f64) else {
                continue;
            };
            by_time
                .entry((seconds * 1000.0).round() as i64)
                .or_default()
                .push(SeriesValue {
                    labels: labels.clone(),
                    value: sample_value(sample),
                });
        }
    }
    Ok(by_time
        .into_iter()
        .filter_map(|(ms, values)| Timestamp::from_millisecond(ms).ok().map(|t| (t, values)))
        .collect())
}

fn series_value(series: &Value) -> SeriesValue {
    let labels = series["metric"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    SeriesValue {
        labels,
        value: sample_value(&series["value"]),
    }
}

/// `[<unix time>, "<value>"]`; NaN (and anything unreadable) is no value.
fn sample_value(sample: &Value) -> Option<f64> {
    let text = sample.get(1)?.as_str()?;
    let value = match text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse::<f64>().ok()?,
    };
    (!value.is_nan()).then_some(value)
}

/// Defence in depth: whatever a server or library echoes, a secret never leaves here.
fn scrub(mut text: String, secrets: &[Secret]) -> String {
    for secret in secrets {
        if secret.expose().len() >= 4 {
            text = text.replace(secret.expose(), "***");
        }
    }
    text
}

/// Basic auth's encoding (RFC 7617): the standard alphabet, padded.
fn base64(input: &[u8]) -> String {
    BASE64_STANDARD.encode(input)
}

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

/// Builds the run's endpoint, shared by all its PromQL probes.
pub fn endpoint(settings: &PrometheusSettings) -> Result<Arc<PrometheusEndpoint>, SetupError> {
    PrometheusEndpoint::new(settings).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"admin:s3cret"), "YWRtaW46czNjcmV0");
    }

    #[test]
    fn eval_time_keeps_milliseconds() {
        let at: Timestamp = "2026-01-01T00:00:00.042Z".parse().unwrap();
        assert_eq!(eval_time(at), "1767225600.042");
    }

    #[test]
    fn vectors_scalars_nan_and_inf() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"service":"a"},"value":[1.5,"0.25"]},
            {"metric":{"service":"b"},"value":[1.5,"NaN"]},
            {"metric":{"service":"c"},"value":[1.5,"+Inf"]}]}}"#;
        let (data, warnings) = parse_response(StatusCode::OK, body).unwrap();
        let values = instant_values(&data).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0].value, Some(0.25));
        assert_eq!(values[0].labels["service"], "a");
        assert_eq!(values[1].value, None);
        assert_eq!(values[2].value, Some(f64::INFINITY));
        assert!(warnings.is_empty());
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#;
        let (data, _) = parse_response(StatusCode::OK, scalar).unwrap();
        assert_eq!(instant_values(&data).unwrap()[0].value, Some(3.0));
    }

    #[test]
    fn warnings_are_kept() {
        let body = r#"{"status":"success","warnings":["partial response: store-1 down"],
            "data":{"resultType":"vector","result":[]}}"#;
        let (_, warnings) = parse_response(StatusCode::OK, body).unwrap();
        assert_eq!(warnings, vec!["partial response: store-1 down"]);
    }

    #[test]
    fn bad_queries_are_permanent_and_overload_is_transient() {
        let bad = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let failure = parse_response(StatusCode::BAD_REQUEST, bad).unwrap_err();
        assert!(!failure.transient);
        assert!(
            failure.message.contains("parse error"),
            "{}",
            failure.message
        );
        let busy = parse_response(StatusCode::SERVICE_UNAVAILABLE, "upstream busy").unwrap_err();
        assert!(busy.transient);
        let unauthorized = parse_response(StatusCode::UNAUTHORIZED, "Unauthorized").unwrap_err();
        assert!(!unauthorized.transient);
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let (data, _) = parse_response(StatusCode::OK, matrix).unwrap();
        assert!(instant_values(&data).is_err());
        assert!(matrix_points(&data).unwrap().is_empty());
    }

    #[test]
    fn a_matrix_is_regrouped_by_step() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"s":"a"},"values":[[10,"1"],[11,"2"]]},
            {"metric":{"s":"b"},"values":[[11,"NaN"]]}]}}"#;
        let (data, _) = parse_response(StatusCode::OK, body).unwrap();
        let points = matrix_points(&data).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].0.as_second(), 10);
        assert_eq!(points[0].1.len(), 1);
        assert_eq!(points[1].1.len(), 2);
        assert_eq!(points[1].1[0].value, Some(2.0));
        assert_eq!(points[1].1[1].value, None);
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("tok-123456");
        assert!(!format!("{secret:?}").contains("tok-123456"));
        let settings = PrometheusSettings {
            url: Some("http://127.0.0.1:9/prometheus/".into()),
            token: Some(secret),
            ..Default::default()
        };
        let endpoint = PrometheusEndpoint::new(&settings).unwrap();
        assert_eq!(endpoint.display_url(), "http://127.0.0.1:9/prometheus");
        assert!(!format!("{endpoint:?}").contains("tok-123456"));
        assert_eq!(
            scrub(
                "Bearer tok-123456 rejected".into(),
                &[Secret::new("tok-123456")]
            ),
            "Bearer *** rejected"
        );
    }

    #[tokio::test]
    async fn without_a_url_every_promql_sample_is_an_error() {
        let endpoint = endpoint(&PrometheusSettings::default());
        let why = endpoint.as_ref().unwrap_err().to_string();
        assert!(why.contains("--prometheus-url"), "{why}");
        let probe = probe(&endpoint, "up");
        assert_eq!(probe.describe(), "up");
        assert!(matches!(
            probe.sample(Timestamp::now()).await,
            Observation::Error(_)
        ));
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        let settings = PrometheusSettings {
            url: Some("http://admin:hunter22@127.0.0.1:9".into()),
            ..Default::default()
        };
        let err = PrometheusEndpoint::new(&settings).unwrap_err().to_string();
        assert!(!err.contains("hunter22"), "{err}");
        assert_eq!(display_url("http://admin:hunter22@h:9/p"), "http://h:9/p");
    }

    #[test]
    fn a_token_file_is_read_on_every_request() {
        let path = std::env::temp_dir().join(format!("shakedown-token-{}", std::process::id()));
        std::fs::write(&path, "first\n").unwrap();
        let source = SecretSource::File(path.clone());
        assert_eq!(source.resolve().unwrap().expose(), "first");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(source.resolve().unwrap().expose(), "second");
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn unreachable_prometheus_is_an_error_after_retries() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let settings = PrometheusSettings {
            url: Some(format!("http://127.0.0.1:{port}")),
            ..Default::default()
        };
        let probe = PromqlProbe::new(
            Arc::new(PrometheusEndpoint::new(&settings).unwrap()),
            "up".into(),
        );
        match probe.sample(Timestamp::now()).await {
            Observation::Error(e) => {
                assert!(e.contains("unreachable"), "{e}");
                assert!(e.contains("after 3 attempts"), "{e}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// A loopback server that answers each connection with the next canned response
    /// (and then the last one again), and records the requests it saw.
    async fn canned(
        responses: Vec<(u16, &'static str)>,
    ) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut stream, _)) = listener.accept().await {
                let (status, body) = responses[n.min(responses.len() - 1)];
                n += 1;
                let mut buf = vec![0u8; 8192];
                let len = stream.read(&mut buf).await.unwrap_or(0);
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..len]).into_owned());
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn spec_with(timeout: Duration) -> PrometheusSpec {
        let mut spec = empty_spec();
        spec.timeout = Some(crate::spec::Span(timeout));
        spec.headers
            .insert("X-Scope-OrgID".into(), "tenant-1".into());
        spec
    }

    #[tokio::test]
    async fn a_transient_503_is_retried_with_auth_headers_prefix_and_pinned_time() {
        let ok = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.5"]}]}}"#;
        let (base, seen) = canned(vec![(503, "overloaded"), (200, ok)]).await;
        let settings = PrometheusSettings {
            url: Some(format!("{base}/prometheus/")),
            token: Some(Secret::new("tok-abcdef")),
            spec: Some(spec_with(Duration::from_secs(5))),
            ..Default::default()
        };
        let endpoint = PrometheusEndpoint::new(&settings).unwrap();
        let at: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        let answer = endpoint.instant("up", at).await.unwrap();
        assert_eq!(answer.values[0].value, Some(0.5));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "retried once: {seen:?}");
        let request = seen[1].to_ascii_lowercase();
        assert!(
            request.starts_with("get /prometheus/api/v1/query?"),
            "{request}"
        );
        assert!(request.contains("time=1767225600.500"), "{request}");
        assert!(
            request.contains("authorization: bearer tok-abcdef"),
            "{request}"
        );
        assert!(request.contains("x-scope-orgid: tenant-1"), "{request}");
    }

    #[tokio::test]
    async fn basic_auth_is_sent_and_a_401_is_not_retried() {
        let (base, seen) = canned(vec![(401, "Unauthorized")]).await;
        let path = std::env::temp_dir().join(format!("shakedown-pw-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let mut spec = spec_with(Duration::from_secs(5));
        spec.basic_auth = Some(crate::spec::BasicAuth {
            username: "admin".into(),
            password_env: None,
            password_file: Some(path.display().to_string()),
        });
        let settings = PrometheusSettings {
            url: Some(base),
            spec: Some(spec),
            ..Default::default()
        };
        let endpoint = PrometheusEndpoint::new(&settings).unwrap();
        let error = endpoint
            .instant("up", Timestamp::now())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("401"), "{error}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "a 401 is permanent");
        assert!(
            seen[0].contains("Basic YWRtaW46czNjcmV0"),
            "admin:s3cret: {}",
            seen[0]
        );
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn a_hung_prometheus_times_out_within_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let settings = PrometheusSettings {
            url: Some(format!("http://{addr}")),
            spec: Some(spec_with(Duration::from_millis(400))),
            ..Default::default()
        };
        let endpoint = PrometheusEndpoint::new(&settings).unwrap();
        let started = std::time::Instant::now();
        let error = endpoint
            .instant("up", Timestamp::now())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("did not answer within"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_partial_answer_becomes_a_partial_observation() {
        let partial = r#"{"status":"success","warnings":["store unavailable"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0"]}]}}"#;
        let (base, _) = canned(vec![(200, partial)]).await;
        let settings = PrometheusSettings {
            url: Some(base),
            ..Default::default()
        };
        let probe = PromqlProbe::new(
            Arc::new(PrometheusEndpoint::new(&settings).unwrap()),
            "up".into(),
        );
        match probe.sample(Timestamp::now()).await {
            Observation::Partial { reason, values } => {
                assert!(reason.contains("store unavailable"), "{reason}");
                assert_eq!(values.len(), 1);
            }
            other => panic!("expected a partial observation, got {other:?}"),
        }
    }
}
