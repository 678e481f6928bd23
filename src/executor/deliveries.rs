//! The run's outbound deliveries, settled before anything is touched: the `notify:`
//! receivers and `--notify` webhooks, the `pushgateway:` block and `--pushgateway`, each
//! with its connection (the Prometheus client's, `probes::prometheus`) and secrets read
//! and registered with the redactor. A receiver that cannot be set up (an unset
//! variable, an unreadable key file, a bad URL or CA bundle) is invalid input (exit 2).
//! Delivery itself is `run::outbound`'s, off the critical path.

use std::sync::Arc;

use crate::exit::{Failure, InvalidInput};
use crate::probes::prometheus::PrometheusEndpoint;
use crate::run::bus::EventBus;
use crate::run::outbound::notify::Notifier;
use crate::run::outbound::push::Pushgateway;
use crate::run::outbound::{Delivery, Outbound};
use crate::spec::{Document, Loaded, NotifyEvent, NotifyKind, NotifySpec, PrometheusSpec};

/// One receiver of notifications, ready to be started for a run.
struct Receiver {
    kind: NotifyKind,
    name: String,
    events: Vec<NotifyEvent>,
    key: Option<Vec<u8>>,
    endpoint: Arc<PrometheusEndpoint>,
}

/// One run file's deliveries.
#[derive(Default)]
pub struct Deliveries {
    receivers: Vec<Receiver>,
    pushgateway: Option<Arc<PrometheusEndpoint>>,
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries")
            .field("receivers", &self.receivers.len())
            .field("pushgateway", &self.pushgateway.is_some())
            .finish()
    }
}

/// Every file's deliveries, in the order of `loaded`: the experiment's blocks, then the
/// flags (`--notify` adds webhooks; `--pushgateway` sets the URL).
pub fn settle(
    loaded: &[Loaded],
    notify_flags: &[String],
    pushgateway_flag: Option<&str>,
) -> Result<Vec<Deliveries>, Failure> {
    loaded
        .iter()
        .map(|file| settle_one(file, notify_flags, pushgateway_flag))
        .collect::<Result<_, String>>()
        .map_err(|why| InvalidInput::Flag(why.into()).into())
}

fn settle_one(
    file: &Loaded,
    notify_flags: &[String],
    pushgateway_flag: Option<&str>,
) -> Result<Deliveries, String> {
    let (notify, pushgateway) = match &file.document {
        Document::Experiment(e) => (e.spec.notify.clone(), e.spec.pushgateway.clone()),
        Document::Scenario(_) => (Vec::new(), None),
    };
    let flags = notify_flags.iter().map(|url| NotifySpec {
        kind: NotifyKind::Webhook,
        url: Some(url.clone()),
        url_env: None,
        secret_env: None,
        secret_file: None,
        events: Vec::new(),
    });
    let receivers = notify
        .into_iter()
        .chain(flags)
        .map(|spec| receiver(&spec))
        .collect::<Result<_, _>>()?;
    let pushgateway = match (pushgateway, pushgateway_flag) {
        (None, None) => None,
        (spec, flag) => {
            let mut spec = spec.unwrap_or_default();
            if let Some(url) = flag {
                spec.url = Some(url.to_owned());
            }
            let endpoint = PrometheusEndpoint::outbound(&spec, "Pushgateway")
                .map_err(|e| format!("pushgateway: {}", shakedown_vocab::error_chain(&e)))?;
            Some(Arc::new(endpoint))
        }
    };
    Ok(Deliveries {
        receivers,
        pushgateway,
    })
}

fn receiver(spec: &NotifySpec) -> Result<Receiver, String> {
    let kind_word = match spec.kind {
        NotifyKind::Slack => "slack",
        NotifyKind::Webhook => "webhook",
    };
    let (url, name) = match (&spec.url, &spec.url_env) {
        (Some(url), _) => (url.clone(), format!("{kind_word} {}", display(url))),
        (None, Some(var)) => {
            let url = std::env::var(var)
                .map_err(|_| format!("notify: environment variable {var} (urlEnv) is not set"))?;
            let url = url.trim().to_owned();
            // The whole URL is the secret (a Slack webhook's path is its token).
            crate::run::redact::register(&format!("the URL in ${var}"), &url);
            (url, format!("{kind_word} (URL from ${var})"))
        }
        (None, None) => return Err("notify: an entry has neither url nor urlEnv".into()),
    };
    let key =
        match (&spec.secret_env, &spec.secret_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                format!("notify: environment variable {var} (secretEnv) is not set")
            })?),
            (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|e| {
                format!("notify: cannot read the signing key file {path} (secretFile): {e}")
            })?),
            (None, None) => None,
        };
    let key = key.map(|k| k.trim().to_owned());
    if let Some(key) = &key {
        if key.is_empty() {
            return Err("notify: the signing key is empty".into());
        }
        crate::run::redact::register("the notify signing key", key);
    }
    let connection = PrometheusSpec {
        url: Some(url),
        ..PrometheusSpec::default()
    };
    let server = match spec.kind {
        NotifyKind::Slack => "Slack",
        NotifyKind::Webhook => "webhook",
    };
    let endpoint = PrometheusEndpoint::outbound(&connection, server)
        .map_err(|e| format!("notify: {}", shakedown_vocab::error_chain(&e)))?;
    Ok(Receiver {
        kind: spec.kind,
        name,
        events: spec.events.clone(),
        key: key.map(String::into_bytes),
        endpoint: Arc::new(endpoint),
    })
}

impl Deliveries {
    /// Starts this file's deliveries on `bus` for one run of `experiment` whose reports
    /// go to `report_dir`.
    pub fn start(&self, bus: &EventBus, experiment: &str, report_dir: &str) -> Outbound {
        let mut deliveries: Vec<Delivery> = self
            .receivers
            .iter()
            .map(|r| Delivery {
                subscriber: Box::new(Notifier::new(
                    r.kind,
                    r.name.clone(),
                    r.events.clone(),
                    r.key.as_deref(),
                    report_dir.to_owned(),
                )),
                transport: r.endpoint.clone(),
            })
            .collect();
        if let Some(endpoint) = &self.pushgateway {
            deliveries.push(Delivery {
                subscriber: Box::new(Pushgateway::new(
                    format!("Pushgateway at {}", endpoint.display_url()),
                    experiment.to_owned(),
                )),
                transport: endpoint.clone(),
            });
        }
        Outbound::start(bus, deliveries)
    }
}

/// The URL as people read it: without credentials.
fn display(url: &str) -> String {
    crate::probes::prometheus::display_url(url)
}
