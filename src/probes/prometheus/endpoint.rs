//! Where Prometheus is and how to reach it: the settings from flags and spec (flags win),
//! the base URL with any path prefix, the CA bundle, `insecureSkipVerify`, extra headers
//! and the timeout, built once into the `PrometheusEndpoint` a run's probes share.
//!
//! It must never accept or show a URL that carries credentials (user info, or a query
//! parameter such as `api_key`): `display_url` is the only form of the URL that reaches
//! people. Extra header values are secrets (scrubbed from all output) unless the header
//! is a known tenant or organisation id.

use std::path::PathBuf;
use std::time::Duration;

use prometheus_http_query::Client;
use prometheus_http_query::reqwest::{self, Url};
use reqwest::header::{HeaderName, HeaderValue};

use super::auth::{Auth, Secret, auth};
use crate::spec::PrometheusSpec;
use crate::spec::url::{UrlCredential, credential_in};

/// How long one query may take when `prometheus.timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read when `prometheus.maxResponseMiB` is not set.
pub const DEFAULT_MAX_RESPONSE_MIB: u32 = 8;

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
    #[error("no Alertmanager URL: set spec.alertmanager.url")]
    NoAlertmanagerUrl,
    #[error("no upload URL: set spec.upload.url or pass run --upload URL")]
    NoUploadUrl,
    #[error("no {0} URL")]
    NoUrlFor(&'static str),
    #[error("invalid Prometheus URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "the Prometheus URL must not carry {0}: use --prometheus-token-file, or basicAuth or bearerTokenFile in spec.prometheus"
    )]
    CredentialsInUrl(UrlCredential),
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
    pub(super) client: Client,
    /// The base URL as shown to people (never carries credentials).
    pub(super) display_url: String,
    pub(super) auth: Auth,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) timeout: Duration,
    /// Bytes of one answer read at most; a bigger answer is an error.
    pub(super) max_response: usize,
    /// What the server is, as messages name it: `Prometheus` or `Alertmanager`.
    pub(super) server: &'static str,
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

/// The URL for people: no user info, no query or fragment when either names a
/// credential, no trailing slash.
pub fn display_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            if credential_in(parsed.as_str()).is_some() {
                parsed.set_query(None);
                parsed.set_fragment(None);
            }
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// `--prometheus-url` (or `SHAKEDOWN_PROMETHEUS_URL`) checked before any command runs:
/// a URL carrying credentials is invalid input (exit 2), like one in a spec.
pub fn check_url_flag(url: &str) -> Result<(), SetupError> {
    match credential_in(url.trim()) {
        Some(credential) => Err(SetupError::CredentialsInUrl(credential)),
        None => Ok(()),
    }
}

/// Headers that route a request to a tenant or organisation rather than authenticate
/// it; their values (often a namespace-like name) are not scrubbed from output. Every
/// other extra header's value is treated as a secret.
const NOT_SECRET_HEADERS: [&str; 4] = [
    "x-scope-orgid",
    "thanos-tenant",
    "x-grafana-org-id",
    "x-prometheus-remote-read-version",
];

impl PrometheusEndpoint {
    pub fn new(settings: &PrometheusSettings) -> Result<Self, SetupError> {
        let spec = settings.spec.clone().unwrap_or_default();
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
            return Err(SetupError::CredentialsInUrl(UrlCredential::UserInfo));
        }
        if let Some(credential) = credential_in(parsed.as_str()) {
            return Err(SetupError::CredentialsInUrl(credential));
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
        for (name, value) in &spec.headers {
            if !NOT_SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                crate::run::redact::register(&format!("the value of header {name}"), value);
            }
        }
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
            max_response: spec.max_response_mib.unwrap_or(DEFAULT_MAX_RESPONSE_MIB) as usize
                * (1 << 20),
            server: "Prometheus",
        })
    }

    /// The run's Alertmanager from its `alertmanager:` block: the same connection
    /// options, secrets and caps as Prometheus (there are no flags for it).
    pub fn alertmanager(spec: &PrometheusSpec) -> Result<Self, SetupError> {
        let settings = PrometheusSettings {
            spec: Some(spec.clone()),
            ..PrometheusSettings::default()
        };
        let endpoint = Self::new(&settings).map_err(|e| match e {
            SetupError::NoUrl => SetupError::NoAlertmanagerUrl,
            other => other,
        })?;
        Ok(Self {
            server: "Alertmanager",
            ..endpoint
        })
    }

    pub fn display_url(&self) -> &str {
        &self.display_url
    }
}
