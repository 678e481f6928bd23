//! The workload model and `/metrics`: each configured service receives a steady
//! request rate, served by its ready pods up to their capacity. Excess requests are
//! answered 503. An active `shakedown.dev/fault` network-latency annotation on a
//! serving pod adds its delay to that pod's share. Counters are exported in the
//! Prometheus text format, next to kube-state-metrics-compatible series.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde_json::Value;
use shakedown_vocab::duration::parse_duration;

use super::config::{SandboxConfig, ServiceModel};
use super::controllers::PodCache;
use super::objects::{condition_is_true, is_terminating, pod_serving};
use super::store::{Store, labels_of, name_of, namespace_of, uid_of};

/// The annotation network faults put on a pod (see DESIGN.md, "Faults").
pub use shakedown_vocab::annotations::FAULT_ANNOTATION;

/// Prometheus' default histogram buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Cumulative counts per bucket, then `+Inf`.
    buckets: [f64; 12],
    sum: f64,
    count: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64, requests: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.buckets[i] += requests;
            }
        }
        self.buckets[11] += requests;
        self.sum += seconds * requests;
        self.count += requests;
    }
}

struct Service {
    namespace: String,
    name: String,
    selector: BTreeMap<String, String>,
    model: ServiceModel,
}

/// Accumulated traffic per service since the sandbox started.
pub struct Workload {
    services: Vec<Service>,
    requests: BTreeMap<(String, String, u16), f64>,
    latency: BTreeMap<(String, String), Histogram>,
    /// Per service: the accumulated refusal share, and whose turn it is.
    probe_turns: BTreeMap<(String, String), (f64, usize)>,
}

impl ServiceModel {
    /// Base latency in seconds, rising with utilisation as queues build up.
    fn latency_at(&self, served: f64, capacity: f64) -> f64 {
        let utilisation = if capacity > 0.0 {
            served / capacity
        } else {
            1.0
        };
        self.base_latency.as_secs_f64() * (1.0 + 0.5 * utilisation)
    }
}

/// A pod's network-latency fault annotation, read once per pod change (the pod
/// cache keeps it) and evaluated against the clock on every tick.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyFault {
    delay: Duration,
    /// `None` when absent or unreadable: such a fault does not expire.
    expires: Option<jiff::Timestamp>,
}

impl LatencyFault {
    /// The pod's network-latency fault, if it has one.
    pub(crate) fn of(pod: &Value) -> Option<Self> {
        let text = pod["metadata"]["annotations"][FAULT_ANNOTATION].as_str()?;
        let fault = serde_json::from_str::<Value>(text).ok()?;
        if fault["kind"].as_str().unwrap_or("") != "network-latency" {
            return None;
        }
        let expires = fault["expires"]
            .as_str()
            .and_then(|e| e.parse::<jiff::Timestamp>().ok());
        // `delayMs: 300` at the top or under `params`, or `params.delay: "300ms"`.
        let millis = fault["delayMs"]
            .as_f64()
            .or_else(|| fault["params"]["delayMs"].as_f64())
            .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        let text = fault["params"]["delay"]
            .as_str()
            .or_else(|| fault["delay"].as_str())
            .and_then(|d| parse_duration(d).ok());
        Some(Self {
            delay: millis.or(text).unwrap_or(Duration::ZERO),
            expires,
        })
    }

    /// The delay it adds at `now`: nothing once expired.
    pub(crate) fn delay_at(&self, now: jiff::Timestamp) -> Duration {
        if self.expires.is_some_and(|e| e <= now) {
            Duration::ZERO
        } else {
            self.delay
        }
    }
}

/// The extra delay an active network-latency fault adds to a pod, if any.
pub fn fault_delay(pod: &Value, now: jiff::Timestamp) -> Duration {
    LatencyFault::of(pod).map_or(Duration::ZERO, |f| f.delay_at(now))
}

impl Workload {
    pub fn new(config: &SandboxConfig) -> Self {
        let services = config
            .deployments
            .iter()
            .filter_map(|d| {
                d.service.clone().map(|model| Service {
                    namespace: d.namespace.clone(),
                    name: d.name.clone(),
                    selector: d.pod_labels(),
                    model,
                })
            })
            .collect();
        Self {
            services,
            requests: BTreeMap::new(),
            latency: BTreeMap::new(),
            probe_turns: BTreeMap::new(),
        }
    }

    /// The serving pods' extra delays for one service, as the pods are now.
    fn serving_delays(svc: &Service, store: &Store, now: jiff::Timestamp) -> Vec<Duration> {
        store
            .iter("pods", Some(&svc.namespace), None)
            .filter(|p| pod_serving(p))
            .filter(|p| {
                let labels = labels_of(p);
                svc.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|p| fault_delay(p, now))
            .collect()
    }

    /// Accounts `elapsed` worth of traffic against the pods as they are now, read from
    /// the controllers' pod cache (which keeps each service's pods as they change),
    /// so a tick does not look at every pod of the store.
    pub(crate) fn advance(&mut self, pods: &mut PodCache, elapsed: Duration) {
        let dt = elapsed.as_secs_f64();
        let now = jiff::Timestamp::now();
        for svc in &self.services {
            pods.track_traffic(&svc.namespace, &svc.name, &svc.selector);
            let delays: Vec<Duration> = pods
                .traffic(&svc.namespace, &svc.name)
                .filter(|p| p.serving)
                .map(|p| p.fault.as_ref().map_or(Duration::ZERO, |f| f.delay_at(now)))
                .collect();
            let offered = svc.model.requests_per_second * dt;
            let capacity = svc.model.capacity_per_pod * delays.len() as f64 * dt;
            let served = offered.min(capacity);
            let failed = offered - served;
            let key = (svc.namespace.clone(), svc.name.clone());
            *self
                .requests
                .entry((key.0.clone(), key.1.clone(), 200))
                .or_default() += served;
            *self
                .requests
                .entry((key.0.clone(), key.1.clone(), 503))
                .or_default() += failed;
            let histogram = self.latency.entry(key).or_default();
            let base = svc.model.latency_at(served, capacity);
            if !delays.is_empty() {
                let share = served / delays.len() as f64;
                for delay in &delays {
                    histogram.observe(base + delay.as_secs_f64(), share);
                }
            }
            // Rejected requests fail fast.
            histogram.observe(0.001, failed);
        }
    }

    /// One synthetic request to a service, as an HTTP probe would make it: which
    /// status it gets and how long it takes. Pods take turns; the share of requests
    /// over capacity is refused with 503, spread evenly so results are repeatable.
    pub fn probe(
        &mut self,
        store: &Store,
        namespace: &str,
        service: &str,
    ) -> Option<(u16, Duration)> {
        let now = jiff::Timestamp::now();
        let svc = self
            .services
            .iter()
            .find(|s| s.namespace == namespace && s.name == service)?;
        let delays = Self::serving_delays(svc, store, now);
        let offered = svc.model.requests_per_second;
        let capacity = svc.model.capacity_per_pod * delays.len() as f64;
        let refused_share = if offered > 0.0 {
            ((offered - capacity) / offered).max(0.0)
        } else {
            0.0
        };
        let turn = self
            .probe_turns
            .entry((namespace.to_owned(), service.to_owned()))
            .or_default();
        turn.0 += refused_share;
        if delays.is_empty() || turn.0 >= 1.0 {
            turn.0 = (turn.0 - 1.0).max(0.0);
            return Some((503, Duration::from_millis(1)));
        }
        turn.1 = turn.1.wrapping_add(1);
        let delay = delays[turn.1 % delays.len()];
        let base = svc.model.latency_at(offered.min(capacity), capacity);
        Some((200, Duration::from_secs_f64(base) + delay))
    }

    /// The application series: request counters and latency histograms.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP http_requests_total Requests served by the simulated services.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for ((ns, svc, code), value) in &self.requests {
            let _ = writeln!(
                out,
                "http_requests_total{{namespace=\"{ns}\",service=\"{svc}\",code=\"{code}\"}} {value}"
            );
        }
        out.push_str(
            "# HELP http_request_duration_seconds Request latency of the simulated services.\n",
        );
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for ((ns, svc), h) in &self.latency {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{namespace=\"{ns}\",service=\"{svc}\",le=\"{le}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{namespace=\"{ns}\",service=\"{svc}\",le=\"+Inf\"}} {}",
                h.buckets[11]
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{namespace=\"{ns}\",service=\"{svc}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{namespace=\"{ns}\",service=\"{svc}\"}} {}",
                h.count
            );
        }
    }
}

/// kube-state-metrics-compatible series, so hypotheses written for a real cluster work.
pub fn render_kube_state(store: &Store, out: &mut String) {
    out.push_str("# TYPE kube_deployment_spec_replicas gauge\n");
    for d in store.iter("deployments", None, None) {
        let _ = writeln!(
            out,
            "kube_deployment_spec_replicas{{namespace=\"{}\",deployment=\"{}\"}} {}",
            namespace_of(d),
            name_of(d),
            d["spec"]["replicas"].as_i64().unwrap_or(0)
        );
    }
    out.push_str("# TYPE kube_deployment_status_replicas_available gauge\n");
    for d in store.iter("deployments", None, None) {
        let _ = writeln!(
            out,
            "kube_deployment_status_replicas_available{{namespace=\"{}\",deployment=\"{}\"}} {}",
            namespace_of(d),
            name_of(d),
            d["status"]["availableReplicas"].as_i64().unwrap_or(0)
        );
    }
    out.push_str("# TYPE kube_pod_status_ready gauge\n");
    for p in store.iter("pods", None, None) {
        let ready = condition_is_true(&p["status"], "Ready") && !is_terminating(p);
        for (condition, value) in [("true", ready), ("false", !ready), ("unknown", false)] {
            let _ = writeln!(
                out,
                "kube_pod_status_ready{{namespace=\"{}\",pod=\"{}\",uid=\"{}\",condition=\"{condition}\"}} {}",
                namespace_of(p),
                name_of(p),
                uid_of(p),
                u8::from(value)
            );
        }
    }
    out.push_str("# TYPE kube_node_spec_unschedulable gauge\n");
    for n in store.iter("nodes", None, None) {
        let _ = writeln!(
            out,
            "kube_node_spec_unschedulable{{node=\"{}\"}} {}",
            name_of(n),
            u8::from(n["spec"]["unschedulable"] == true)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_expired_latency_fault_adds_nothing() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let active = json!({"metadata": {"annotations": {FAULT_ANNOTATION: r#"{"kind":"network-latency","delayMs":300,"expires":"2026-01-01T00:05:00Z"}"#}}});
        let expired = json!({"metadata": {"annotations": {FAULT_ANNOTATION: r#"{"kind":"network-latency","delayMs":300,"expires":"2025-12-31T23:00:00Z"}"#}}});
        assert_eq!(fault_delay(&active, now), Duration::from_millis(300));
        assert_eq!(fault_delay(&expired, now), Duration::ZERO);
        let typed = json!({"metadata": {"annotations": {FAULT_ANNOTATION: r#"{"runId":"r1","kind":"network-latency","params":{"delay":"250ms","jitter":"50ms"},"expires":"2026-01-01T00:05:00Z"}"#}}});
        assert_eq!(fault_delay(&typed, now), Duration::from_millis(250));
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.03, 10.0);
        assert_eq!(h.buckets[2], 0.0);
        assert_eq!(h.buckets[3], 10.0);
        assert_eq!(h.buckets[11], 10.0);
        assert!((h.sum - 0.3).abs() < 1e-9);
    }
}
