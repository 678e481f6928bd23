//! Credentials for Prometheus: the `Secret` that never prints, where a secret comes from
//! (a value, an env var, a file re-read on every request), bearer and basic auth, the
//! `Authorization` header, and the scrubbing of secrets from any text.
//!
//! Every secret is registered with the process's redactor (`run::redact`) the moment it
//! is read, in all its encodings (basic auth also as `user:password` and its base64), so
//! no output of the process can carry it.
//!
//! It must never put a secret into a `Debug`, an error or any message: errors here name
//! where a secret should have come from, never its value.

use std::path::PathBuf;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use prometheus_http_query::reqwest::header::HeaderValue;

use super::PrometheusSettings;
use crate::spec::PrometheusSpec;

/// A secret value. Its `Debug` never shows it, so it cannot leak through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub(super) fn expose(&self) -> &str {
        &self.0
    }

    /// Scrubs this secret from every output of the process from now on; `what` names it
    /// in the one warning a secret too short to scrub gets.
    pub fn register(&self, what: &str) {
        crate::run::redact::register(what, &self.0);
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
    /// The secret as it is now, registered for scrubbing (a re-read file may hold a new one).
    pub(super) fn resolve(&self) -> Result<Secret, CredentialError> {
        let secret = self.read()?;
        secret.register("a Prometheus credential");
        Ok(secret)
    }

    fn read(&self) -> Result<Secret, CredentialError> {
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
pub(super) enum Auth {
    None,
    Bearer(SecretSource),
    Basic {
        username: String,
        password: SecretSource,
    },
}

pub(super) fn auth(settings: &PrometheusSettings, spec: &PrometheusSpec) -> Auth {
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

impl Auth {
    pub(super) fn secrets(&self) -> Result<Vec<Secret>, CredentialError> {
        match self {
            Auth::None => Ok(Vec::new()),
            Auth::Bearer(source) => Ok(vec![source.resolve()?]),
            Auth::Basic { username, password } => {
                let password = password.resolve()?;
                crate::run::redact::register_basic(
                    "the Prometheus basic-auth password",
                    username,
                    password.expose(),
                );
                Ok(vec![password])
            }
        }
    }

    /// The `Authorization` header, marked sensitive so no log of the client shows it.
    pub(super) fn authorization(
        &self,
        secrets: &[Secret],
    ) -> Result<Option<HeaderValue>, CredentialError> {
        let text = match (self, secrets.first()) {
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
}

/// Defence in depth: whatever a server or library echoes, no secret leaves here. The
/// request's `secrets` were registered when resolved; the process's redactor scrubs
/// every encoding of every secret it knows (`run::redact`).
pub(super) fn scrub(text: String, secrets: &[Secret]) -> String {
    for secret in secrets {
        secret.register("a Prometheus credential");
    }
    match crate::run::redact::scrub(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(scrubbed) => scrubbed,
    }
}

/// Basic auth's encoding (RFC 7617): the standard alphabet, padded.
pub(super) fn base64(input: &[u8]) -> String {
    BASE64_STANDARD.encode(input)
}
