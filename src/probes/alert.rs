//! Alert probes: how many alerts named `alert.name` with `alert.labels` are firing now,
//! read from Prometheus (`/api/v1/alerts`; its `ALERTS` series for a look back over a
//! window) or, when the run has an `alertmanager:` block, from Alertmanager's API v2
//! (`/api/v2/alerts`), where a silenced or inhibited alert pages nobody and so does not
//! count.
//!
//! A sample is one series (the alert's name and labels) whose value is the count; the
//! alert expectations (`firing within`, `resolved within`, `not firing`) judge it like
//! any other value, so phases, tolerance, abort and the error rules are the PromQL
//! probes'. It goes through the Prometheus client (`prometheus::PrometheusEndpoint`):
//! same credentials, size cap, timeouts and retries, and an unreachable server is an
//! error, never a count of zero.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use super::prometheus::PrometheusEndpoint;
use super::{Observation, Probe, QueryError, RangeFuture, SampleFuture};
use crate::events::SeriesValue;
use crate::spec::{AlertProbe as AlertSpec, Expectation};

/// Where a run reads alerts.
#[derive(Clone)]
pub enum AlertSource {
    Prometheus(Arc<PrometheusEndpoint>),
    Alertmanager(Arc<PrometheusEndpoint>),
}

/// One alert hypothesis's probe.
pub struct AlertProbe {
    source: AlertSource,
    spec: AlertSpec,
    /// Whether a pending alert counts: only when `allowPending: false`, and never for
    /// `firing within`, which waits for `firing`.
    count_pending: bool,
}

impl AlertProbe {
    pub fn new(source: AlertSource, spec: AlertSpec, expect: Option<Expectation>) -> Self {
        let count_pending = !spec.allow_pending && !matches!(expect, Some(Expectation::Firing(_)));
        Self {
            source,
            spec,
            count_pending,
        }
    }

    /// The one series a sample reports: the alert's name and the labels asked for.
    fn series(&self, count: usize) -> SeriesValue {
        let mut labels = self.spec.labels.clone();
        labels.insert("alertname".into(), self.spec.name.clone());
        SeriesValue {
            labels,
            value: Some(count as f64),
        }
    }

    fn matches(&self, labels: &Value) -> bool {
        labels["alertname"].as_str() == Some(self.spec.name.as_str())
            && self
                .spec
                .labels
                .iter()
                .all(|(k, v)| labels[k].as_str() == Some(v.as_str()))
    }

    /// Counts the matching alerts in Prometheus's `/api/v1/alerts` answer.
    fn count_prometheus(&self, data: &Value) -> Result<usize, String> {
        let alerts = data["alerts"]
            .as_array()
            .ok_or("the answer of /api/v1/alerts has no `alerts` list")?;
        Ok(alerts
            .iter()
            .filter(|a| self.matches(&a["labels"]))
            .filter(|a| match a["state"].as_str() {
                Some("firing") => true,
                Some("pending") => self.count_pending,
                _ => false,
            })
            .count())
    }

    /// Counts the matching alerts in Alertmanager's `/api/v2/alerts` answer: `active`
    /// (and `unprocessed`, not yet checked against silences) page; `suppressed` do not.
    fn count_alertmanager(&self, body: &Value) -> Result<usize, String> {
        let alerts = body
            .as_array()
            .ok_or("the answer of /api/v2/alerts is not a list of alerts")?;
        Ok(alerts
            .iter()
            .filter(|a| self.matches(&a["labels"]))
            .filter(|a| {
                matches!(
                    a["status"]["state"].as_str(),
                    Some("active" | "unprocessed")
                )
            })
            .count())
    }

    /// `count(ALERTS{alertname="…", alertstate="firing", …}) or vector(0)`: the count
    /// a sample takes, at every step of a window.
    fn alerts_query(&self) -> String {
        let state = if self.count_pending {
            r#"alertstate=~"firing|pending""#
        } else {
            r#"alertstate="firing""#
        };
        let mut matchers = vec![format!("alertname={}", quoted(&self.spec.name))];
        matchers.push(state.to_owned());
        matchers.extend(
            self.spec
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={}", quoted(v))),
        );
        format!("count(ALERTS{{{}}}) or vector(0)", matchers.join(", "))
    }

    async fn observe(&self) -> Result<usize, QueryError> {
        match &self.source {
            AlertSource::Prometheus(endpoint) => {
                let data = endpoint.get_json("api/v1/alerts", &[], true).await?;
                self.count_prometheus(&data).map_err(|e| {
                    QueryError(format!("Prometheus at {}: {e}", endpoint.display_url()))
                })
            }
            AlertSource::Alertmanager(endpoint) => {
                let filters: Vec<(&str, String)> = std::iter::once(("alertname", &self.spec.name))
                    .chain(self.spec.labels.iter().map(|(k, v)| (k.as_str(), v)))
                    .map(|(k, v)| ("filter", format!("{k}={}", quoted(v))))
                    .collect();
                let body = endpoint.get_json("api/v2/alerts", &filters, false).await?;
                self.count_alertmanager(&body).map_err(|e| {
                    QueryError(format!("Alertmanager at {}: {e}", endpoint.display_url()))
                })
            }
        }
    }
}

/// A label value as a PromQL (and Alertmanager matcher) string literal.
fn quoted(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

impl Probe for AlertProbe {
    fn describe(&self) -> String {
        crate::report::words::alert_probe(&self.spec)
    }

    /// Alert state is only ever "now": `at` is the sample's time, and the answer is the
    /// server's state when it answers.
    fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
        Box::pin(async move {
            match self.observe().await {
                Ok(count) => Observation::Values(vec![self.series(count)]),
                Err(e) => Observation::Error(e.to_string()),
            }
        })
    }

    /// Prometheus keeps the `ALERTS` series, so a window can be looked back on; an
    /// Alertmanager keeps no history.
    fn sample_range(
        &self,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Option<RangeFuture<'_>> {
        let AlertSource::Prometheus(endpoint) = &self.source else {
            return None;
        };
        Some(Box::pin(async move {
            let answer = endpoint
                .range(&self.alerts_query(), start, end, step)
                .await?;
            Ok(answer
                .points
                .into_iter()
                .map(|(at, values)| {
                    let count = values.iter().filter_map(|v| v.value).sum::<f64>();
                    let mut series = self.series(0);
                    series.value = Some(count);
                    (at, Observation::Values(vec![series]))
                })
                .collect())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::prometheus::{PrometheusSettings, endpoint};
    use crate::spec::read::parse_expectation;

    fn probe(allow_pending: bool, expect: &str, alertmanager: bool) -> AlertProbe {
        let settings = PrometheusSettings {
            url: Some("http://127.0.0.1:9".into()),
            ..PrometheusSettings::default()
        };
        let endpoint = endpoint(&settings).expect("endpoint");
        let source = if alertmanager {
            AlertSource::Alertmanager(endpoint)
        } else {
            AlertSource::Prometheus(endpoint)
        };
        let spec = AlertSpec {
            name: "CheckoutHighLatency".into(),
            labels: [("service".to_owned(), "checkout".to_owned())].into(),
            allow_pending,
        };
        AlertProbe::new(source, spec, parse_expectation(expect).ok())
    }

    fn alert(name: &str, service: &str, state: &str) -> Value {
        serde_json::json!({"labels": {"alertname": name, "service": service}, "state": state})
    }

    #[test]
    fn prometheus_alerts_are_counted_by_name_labels_and_state() {
        let data = serde_json::json!({"alerts": [
            alert("CheckoutHighLatency", "checkout", "firing"),
            alert("CheckoutHighLatency", "checkout", "pending"),
            alert("CheckoutHighLatency", "cart", "firing"),
            alert("Other", "checkout", "firing"),
        ]});
        assert_eq!(
            probe(true, "not firing", false).count_prometheus(&data),
            Ok(1)
        );
        assert_eq!(
            probe(false, "not firing", false).count_prometheus(&data),
            Ok(2)
        );
        // `firing within` waits for firing whatever allowPending says.
        assert_eq!(
            probe(false, "firing within 2m", false).count_prometheus(&data),
            Ok(1)
        );
        assert!(
            probe(true, "not firing", false)
                .count_prometheus(&serde_json::json!({}))
                .is_err()
        );
    }

    #[test]
    fn a_silenced_or_inhibited_alert_in_alertmanager_pages_nobody() {
        let am = |state: &str| serde_json::json!({"labels": {"alertname": "CheckoutHighLatency", "service": "checkout"}, "status": {"state": state}});
        let body = serde_json::json!([am("active"), am("suppressed"), am("unprocessed")]);
        assert_eq!(
            probe(true, "not firing", true).count_alertmanager(&body),
            Ok(2)
        );
        assert!(
            probe(true, "not firing", true)
                .count_alertmanager(&serde_json::json!({"alerts": []}))
                .is_err()
        );
    }

    #[test]
    fn the_look_back_query_escapes_label_values() {
        let mut p = probe(true, "not firing", false);
        p.spec.labels.insert("path".into(), r#"/a"b\c"#.into());
        assert_eq!(
            p.alerts_query(),
            r#"count(ALERTS{alertname="CheckoutHighLatency", alertstate="firing", path="/a\"b\\c", service="checkout"}) or vector(0)"#
        );
    }
}
