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
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use shakedown_vocab::error_chain as chain;

use super::PrometheusEndpoint;
use super::auth::{Auth, CredentialError, Secret, SecretSource, scrub};
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
            let (values, stale) = instant_values(&data, at).map_err(|f| self.located(f, &[]))?;
            Ok(Answer {
                values,
                warnings,
                stale,
            })
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
            let (points, outside) =
                matrix_points(&data, start, end).map_err(|f| self.located(f, &[]))?;
            Ok(RangeAnswer {
                points,
                warnings,
                outside,
            })
        })
        .await
    }

    /// A GET of `path` under the base URL (with the same credentials, headers, timeout,
    /// size cap and retries as a query): the `data` of a Prometheus API envelope, or,
    /// with `envelope: false` (Alertmanager's API v2), the whole JSON body. Only a 2xx
    /// answer is data.
    pub async fn get_json(
        &self,
        path: &str,
        params: &[(&str, String)],
        envelope: bool,
    ) -> Result<Value, QueryError> {
        self.with_retries(|| async {
            let (status, body, secrets) = self.send_get(path, params).await?;
            let parsed = if envelope {
                parse_response(status, &body).map(|(data, _)| data)
            } else {
                parse_plain(status, &body)
            };
            parsed.map_err(|f| self.located(f, &secrets))
        })
        .await
    }

    /// A POST of `body` (JSON) to `path` under the base URL, with the same credentials,
    /// headers, timeout and size cap as a query (Alertmanager's `/api/v2/silences`): the
    /// answer's JSON body when it is 2xx. Not retried: a POST that reached the server
    /// but whose answer was lost would create a second object; the caller decides.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, QueryError> {
        let attempt = || async {
            let (status, text, secrets) = self
                .send_request(&Outgoing::with_body(
                    reqwest::Method::POST,
                    path,
                    "application/json",
                    body.to_string().into_bytes(),
                ))
                .await?;
            parse_plain(status, &text).map_err(|f| self.located(f, &secrets))
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(answer) => answer.map_err(|f| QueryError(f.message)),
            Err(_) => Err(QueryError(format!(
                "{} at {} did not answer within {:?}",
                self.server, self.display_url, self.timeout
            ))),
        }
    }

    /// A DELETE of `path` under the base URL, retried like a query (deleting twice is
    /// harmless): `Ok` for a 2xx answer, whatever its body.
    pub async fn delete(&self, path: &str) -> Result<(), QueryError> {
        self.with_retries(|| async {
            let (status, text, secrets) = self
                .send_request(&Outgoing {
                    method: reqwest::Method::DELETE,
                    ..Outgoing::get(path, &[])
                })
                .await?;
            if status.is_success() {
                return Ok(());
            }
            let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            let snippet: String = text.trim().chars().take(200).collect();
            Err(self.located(
                Failure {
                    transient,
                    status: Some(status),
                    message: format!("answered {status}: {snippet}"),
                },
                &secrets,
            ))
        })
        .await
    }

    /// One GET through the endpoint's HTTP client: the status and the scrubbed body.
    async fn send_get(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(StatusCode, String, Vec<Secret>), Failure> {
        self.send_request(&Outgoing::get(path, params)).await
    }

    /// One request of any method through the endpoint's HTTP client, with its
    /// credentials, extra headers and timeout: the status and the body, read no further
    /// than the size cap and scrubbed. Every caller that talks to a server configured
    /// like Prometheus (queries, Alertmanager, Pushgateway, webhooks, uploads) sends
    /// through here, so none of them carries its own copy of the auth or the scrubbing.
    /// One attempt: the caller decides what is worth retrying.
    pub(super) async fn send_request(
        &self,
        request: &Outgoing<'_>,
    ) -> Result<(StatusCode, String, Vec<Secret>), Failure> {
        let secrets = self.auth.secrets().map_err(Failure::credentials)?;
        let authorization = self
            .auth
            .authorization(&secrets)
            .map_err(Failure::credentials)?;
        let base = self.client.base_url().as_str().trim_end_matches('/');
        let url = match request.path {
            "" => base.to_owned(),
            path => format!("{base}/{path}"),
        };
        let mut builder = self
            .client
            .inner()
            .request(request.method.clone(), url)
            .query(request.params);
        if let Some((content_type, body)) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, *content_type)
                .body(body.clone());
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        let response = builder.send().await.map_err(|e| Failure {
            transient: true,
            status: None,
            message: scrub(self.request_error(&e), &secrets),
        })?;
        let status = response.status();
        let body = self.read_body(response, "maxResponseMiB", &secrets).await?;
        Ok((status, body, secrets))
    }

    /// The answer's body, read no further than the size cap (`setting` names the cap in
    /// the error) and scrubbed whole, before any of it is cut into a snippet, a warning
    /// or a label.
    async fn read_body(
        &self,
        response: reqwest::Response,
        setting: &str,
        secrets: &[Secret],
    ) -> Result<String, Failure> {
        let status = response.status();
        let body = read_capped(response, self.max_response)
            .await
            .map_err(|e| {
                // A too-large answer stays too large: retrying only reads it again.
                let (transient, message) = match e {
                    BodyError::TooLarge { read } => (false, format!(
                        "the answer is larger than {} MiB ({setting}); stopped reading after {read} bytes",
                        self.max_response >> 20
                    )),
                    BodyError::Transport(e) => {
                        (true, format!("reading the answer failed: {}", chain(&e)))
                    }
                };
                self.located(
                    Failure {
                        transient,
                        status: Some(status),
                        message,
                    },
                    secrets,
                )
            })?;
        Ok(scrub(String::from_utf8_lossy(&body).into_owned(), secrets))
    }

    /// A transport error of a plain request, in words, without reqwest's own line (it
    /// repeats the whole URL).
    fn request_error(&self, e: &reqwest::Error) -> String {
        let url = &self.display_url;
        if e.is_timeout() {
            return format!(
                "{} at {url} did not answer within {:?}",
                self.server, self.timeout
            );
        }
        let cause = match std::error::Error::source(e) {
            Some(cause) => chain(cause),
            None => e.to_string(),
        };
        unreachable(self.server, url, &cause)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts or the time
    /// run out. All attempts together stay within the timeout, so a hung Prometheus
    /// cannot stall the sampling loop (and an `abort`) for longer than that.
    pub(super) async fn with_retries<T, F, Fut>(&self, attempt_fn: F) -> Result<T, QueryError>
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
                        "{} at {} did not answer within {:?}",
                        self.server, self.display_url, self.timeout
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
            status: None,
            message: scrub(self.transport_error(&e), &secrets),
        })?;
        let status = response.status();
        let body = self
            .read_body(response, "prometheus.maxResponseMiB", &secrets)
            .await?;
        parse_response(status, &body).map_err(|f| self.located(f, &secrets))
    }

    /// Names the server in a failure, says what to check for a refusal, and scrubs any
    /// secret it echoed.
    pub(super) fn located(&self, failure: Failure, secrets: &[Secret]) -> Failure {
        let hint = failure
            .status
            .and_then(|status| self.hint(status))
            .map(|hint| format!(": {hint}"))
            .unwrap_or_default();
        Failure {
            transient: failure.transient,
            status: failure.status,
            message: scrub(
                format!(
                    "{} at {}{}{}{hint}",
                    self.server,
                    self.display_url,
                    // "… answered 401 Unauthorized", "…: the answer has no resultType"
                    if failure.message.starts_with("answered ") {
                        " "
                    } else {
                        ": "
                    },
                    failure.message
                ),
                secrets,
            ),
        }
    }

    /// What to check when Prometheus refuses: the credentials that were sent, or the
    /// path prefix of the URL.
    fn hint(&self, status: StatusCode) -> Option<String> {
        match status {
            // The flags are Prometheus's only: an upload's credentials are its block's.
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                if self.server == "upload" && self.auth == Auth::None =>
            {
                Some("no credentials were sent: set bearerTokenEnv, bearerTokenFile or basicAuth in the experiment's upload: block".into())
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some(credential_hint(&self.auth)),
            // An upload's path is the run's own folder: no prefix to check there.
            StatusCode::NOT_FOUND if self.server != "upload" => Some(
                "check the URL's path prefix (e.g. https://host/prometheus for Mimir or a route prefix)"
                    .into(),
            ),
            _ => None,
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
                    "{} at {url} did not answer within {:?}",
                    self.server, self.timeout
                )
            }
            // The causes, without reqwest's own line: it repeats the whole query URL.
            Some(e) => {
                let cause = match std::error::Error::source(e) {
                    Some(cause) => chain(cause),
                    None => e.to_string(),
                };
                unreachable(self.server, url, &cause)
            }
            None => unreachable(self.server, url, &chain(error)),
        }
    }
}

/// Which credentials to check after a 401 or 403: the ones that were sent, by where
/// they come from (never their value).
fn credential_hint(auth: &Auth) -> String {
    match auth {
        Auth::None => "no credentials were sent: set bearerTokenEnv, bearerTokenFile or basicAuth (or --prometheus-token)".into(),
        Auth::Bearer(SecretSource::Env(name)) => {
            format!("check bearerTokenEnv (the token in ${name})")
        }
        Auth::Bearer(SecretSource::File(path)) => format!(
            "check the bearer token in {} (bearerTokenFile or --prometheus-token-file)",
            path.display()
        ),
        Auth::Bearer(SecretSource::Value(_)) => {
            "check --prometheus-token (or SHAKEDOWN_PROMETHEUS_TOKEN)".into()
        }
        Auth::Basic { username, .. } => {
            format!("check basicAuth (user `{username}` and its password)")
        }
    }
}

/// Why Prometheus (or Alertmanager) cannot be reached, in words: a TLS failure says
/// what to check.
fn unreachable(server: &str, url: &str, cause: &str) -> String {
    let tls = ["certificate", "tls", "ssl", "handshake"]
        .iter()
        .any(|word| cause.to_ascii_lowercase().contains(word));
    if tls {
        format!(
            "{server} at {url} failed the TLS handshake: {cause}: check {}.caFile (or the server's certificate)",
            server.to_ascii_lowercase()
        )
    } else {
        format!("{server} at {url} is unreachable: {cause}")
    }
}

/// What Prometheus answered: the series, and any warnings (a partial response).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub values: Vec<SeriesValue>,
    pub warnings: Vec<String>,
    /// Why some series are no data although Prometheus returned them: their sample is
    /// older than the staleness bound or in the future (their value is then `None`).
    pub stale: Option<String>,
}

/// A range query's answer: per step, the value of each series.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAnswer {
    pub points: Vec<(Timestamp, Vec<SeriesValue>)>,
    pub warnings: Vec<String>,
    /// Samples dropped because they lie outside the asked window (a server that answers
    /// with old or future data): they are no data, never points that held.
    pub outside: usize,
}

/// Why an answer's body was not read in full.
enum BodyError {
    TooLarge { read: usize },
    Transport(reqwest::Error),
}

/// Reads a body chunk by chunk and stops at `cap`: an oversized answer costs at most
/// the cap plus one chunk of memory, whatever the server sends or claims.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if let Some(length) = response.content_length()
        && length > cap as u64
    {
        return Err(BodyError::TooLarge { read: 0 });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        body.extend_from_slice(&chunk);
        if body.len() > cap {
            return Err(BodyError::TooLarge { read: body.len() });
        }
    }
    Ok(body)
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
    /// The HTTP status, when the server answered at all.
    pub(super) status: Option<StatusCode>,
    pub(super) message: String,
}

/// One request [`PrometheusEndpoint::send_request`] sends: the method, the path under
/// the base URL (empty for the base URL itself), query parameters, an optional body with
/// its content type, and headers of its own (a signature) on top of the configured ones.
pub(super) struct Outgoing<'a> {
    pub method: reqwest::Method,
    pub path: &'a str,
    pub params: &'a [(&'a str, String)],
    pub body: Option<(&'static str, Vec<u8>)>,
    pub headers: Vec<(String, String)>,
}

impl<'a> Outgoing<'a> {
    pub fn get(path: &'a str, params: &'a [(&'a str, String)]) -> Self {
        Self {
            method: reqwest::Method::GET,
            path,
            params,
            body: None,
            headers: Vec::new(),
        }
    }

    /// A request with a body (`POST`/`PUT` of JSON, text exposition, a report file).
    pub fn with_body(
        method: reqwest::Method,
        path: &'a str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Self {
        Self {
            method,
            path,
            params: &[],
            body: Some((content_type, body)),
            headers: Vec::new(),
        }
    }
}

impl Failure {
    pub(super) fn permanent(message: String) -> Self {
        Self {
            transient: false,
            status: None,
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

/// Reads an answer without an envelope (Alertmanager's API v2): a 2xx JSON body, or
/// an error that quotes the start of the body.
pub(super) fn parse_plain(status: StatusCode, body: &str) -> Result<Value, Failure> {
    let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    let snippet = || body.trim().chars().take(200).collect::<String>();
    if !status.is_success() {
        return Err(Failure {
            transient,
            status: Some(status),
            message: format!("answered {status}: {}", snippet()),
        });
    }
    serde_json::from_str(body).map_err(|_| Failure {
        transient: false,
        status: Some(status),
        message: format!(
            "answered {status} with a body that is not JSON: {}",
            snippet()
        ),
    })
}

/// Reads the Prometheus HTTP API's envelope: its `data` and warnings. Warnings are
/// kept, not dropped: a partial answer from Thanos must not be judged as if it were
/// complete. Only a 2xx answer is data: a 500 or 404 whose body claims
/// `"status":"success"` (a proxy's cached page, a broken gateway) is an error.
pub(super) fn parse_response(
    status: StatusCode,
    body: &str,
) -> Result<(Value, Vec<String>), Failure> {
    let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    let envelope = serde_json::from_str::<Value>(body).ok();
    let error = |kind: Option<&str>, detail: String| Failure {
        transient: transient || matches!(kind, Some("timeout" | "unavailable")),
        status: Some(status),
        message: format!("answered {status}: {detail}"),
    };
    let Some(mut envelope) = envelope else {
        let snippet: String = body.trim().chars().take(200).collect();
        return Err(if status.is_success() {
            error(None, format!("not a Prometheus API answer: {snippet}"))
        } else {
            error(None, snippet)
        });
    };
    if !status.is_success() || envelope["status"] != "success" {
        let kind = envelope["errorType"].as_str();
        let message = envelope["error"].as_str().unwrap_or("no error message");
        let detail = match (kind, envelope["status"].as_str()) {
            (Some(kind), _) => format!("{kind}: {message}"),
            (None, Some("success")) => {
                "an error status with a body that claims success is not data".to_owned()
            }
            (None, _) => message.to_owned(),
        };
        return Err(error(kind, detail));
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
