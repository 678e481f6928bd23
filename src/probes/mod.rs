//! Steady-state probes: something that can be sampled at a point in time, and the
//! judgement of a sample against a hypothesis's expectation.
//!
//! The executor only sees the `Probe` trait. `kube` probes (ready replicas, Ready
//! nodes) live in `kube.rs`, PromQL probes in `prometheus/`, HTTP probes in `http.rs`,
//! alert probes (Prometheus or Alertmanager) in `alert.rs`.

pub mod alert;
pub mod http;
pub mod kube;
pub mod prometheus;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use jiff::Timestamp;

use crate::events::{SampleOutcome, SeriesValue};
use crate::spec::{Hypothesis, NoDataPolicy, SeriesMatch};

/// What one sample saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Values(Vec<SeriesValue>),
    /// An answer that cannot be trusted either way (Prometheus warnings, e.g. a partial
    /// response from Thanos): inconclusive whatever the `noData` policy says.
    Partial {
        values: Vec<SeriesValue>,
        reason: String,
    },
    /// An answer that breaks the hypothesis by itself, whatever the values (an HTTP
    /// probe got the wrong status or body, or no answer from the service).
    Violated {
        values: Vec<SeriesValue>,
        reason: String,
    },
    /// An answer in which some series are no data although present (a stale or future
    /// sample: its value is `None`): judged like `Values`, under the `noData` policy,
    /// with `reason` saying why instead of "empty result".
    Stale {
        values: Vec<SeriesValue>,
        reason: String,
    },
    /// The probe could not get an answer (server unreachable, error status, …).
    Error(String),
}

impl Observation {
    /// The values observed, for the record (none for an error).
    pub fn into_values(self) -> Vec<SeriesValue> {
        match self {
            Self::Values(values)
            | Self::Partial { values, .. }
            | Self::Violated { values, .. }
            | Self::Stale { values, .. } => values,
            Self::Error(_) => Vec::new(),
        }
    }
}

pub type SampleFuture<'a> = Pin<Box<dyn Future<Output = Observation> + Send + 'a>>;
/// Observations at each step of a window, or why the look back failed.
pub type RangeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<(Timestamp, Observation)>, QueryError>> + Send + 'a>>;

/// A query that failed for good, after any retries: what went wrong and where. It keeps
/// text rather than the transport error on purpose: the text has been scrubbed of
/// secrets, and a transport error's causes (a URL, an echoed header) may hold one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

pub trait Probe: Send + Sync {
    /// The query, URL or object, as shown in reports.
    fn describe(&self) -> String;
    /// Samples at `at` (probes that can pin time, like PromQL, evaluate exactly then).
    fn sample(&self, at: Timestamp) -> SampleFuture<'_>;
    /// What a sample that did not end within `budget` (shorter than the interval)
    /// observed: by default the probe could not answer, an error.
    fn timed_out(&self, budget: Duration) -> Observation {
        Observation::Error(format!(
            "no answer within {budget:?} (a sample must end before the next one is due)"
        ))
    }
    /// Looks back over `[start, end]` every `step`, for probes whose backend keeps
    /// history (PromQL). `None`: this kind of probe cannot look back.
    fn sample_range(
        &self,
        _start: Timestamp,
        _end: Timestamp,
        _step: Duration,
    ) -> Option<RangeFuture<'_>> {
        None
    }
}

/// A fault window judged point by point from a range query: it sees breaches that
/// fall between two `every` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowCheck {
    /// Points with data.
    pub points: u32,
    pub held: u32,
    /// The worst breaching series among the points that did not hold.
    pub worst: Option<SeriesValue>,
}

impl WindowCheck {
    pub fn share(&self) -> f64 {
        f64::from(self.held) * 100.0 / f64::from(self.points.max(1))
    }
}

/// Judges `[start, end]` with a range query at a step finer than `every` (at most one
/// point a second, at most 500 points). `None` when the probe cannot look back.
pub async fn check_window(
    hypothesis: &Hypothesis,
    probe: &dyn Probe,
    start: Timestamp,
    end: Timestamp,
) -> Option<Result<WindowCheck, QueryError>> {
    let window = end.duration_since(start).unsigned_abs();
    let step = (window / 500)
        .max(Duration::from_secs(1))
        .min(hypothesis.every.0.max(Duration::from_secs(1)));
    let points = match probe.sample_range(start, end, step)?.await {
        Ok(points) => points,
        Err(e) => return Some(Err(e)),
    };
    let mut check = WindowCheck {
        points: 0,
        held: 0,
        worst: None,
    };
    for (_, observation) in &points {
        match judge(hypothesis, observation).0 {
            SampleOutcome::Pass => {
                check.points += 1;
                check.held += 1;
            }
            SampleOutcome::Fail => {
                check.points += 1;
                let values = observation.clone().into_values();
                let breach = breaching(hypothesis, &values).cloned();
                check.worst = worse(hypothesis, check.worst.take(), breach);
            }
            // No data at a step says nothing about the steady state either way.
            SampleOutcome::NoData | SampleOutcome::Error => {}
        }
    }
    Some(Ok(check))
}

const NO_DATA: &str = "no data (empty result or NaN)";

/// Judges one observation: no data is never a pass. A failure says which series
/// breached and with what value.
pub fn judge(
    hypothesis: &Hypothesis,
    observation: &Observation,
) -> (SampleOutcome, Option<String>) {
    let values = match observation {
        Observation::Error(e) => return (SampleOutcome::Error, Some(e.clone())),
        Observation::Partial { reason, .. } => {
            return (SampleOutcome::NoData, Some(reason.clone()));
        }
        Observation::Violated { reason, .. } => return (SampleOutcome::Fail, Some(reason.clone())),
        Observation::Values(values) => values,
        Observation::Stale { values, reason } => {
            let (outcome, detail) = judge(hypothesis, &Observation::Values(values.clone()));
            let no_data = detail.as_deref() == Some(NO_DATA);
            return (
                outcome,
                if no_data {
                    Some(reason.clone())
                } else {
                    detail
                },
            );
        }
    };
    let present = values
        .iter()
        .filter(|v| v.value.is_some_and(|v| !v.is_nan()))
        .count();
    if present == 0 || present < values.len() && hypothesis.series == SeriesMatch::All {
        let outcome = match hypothesis.no_data {
            NoDataPolicy::Fail => SampleOutcome::Fail,
            NoDataPolicy::Inconclusive => SampleOutcome::NoData,
        };
        return (outcome, Some(NO_DATA.into()));
    }
    let Some(expectation) = hypothesis.expect else {
        return (SampleOutcome::Pass, None);
    };
    let holds = |v: &SeriesValue| v.value.is_some_and(|v| expectation.holds(v));
    let with_data = || {
        values
            .iter()
            .filter(|v| v.value.is_some_and(|v| !v.is_nan()))
    };
    let ok = match hypothesis.series {
        SeriesMatch::All => with_data().all(holds),
        SeriesMatch::Any => with_data().any(holds),
    };
    if ok {
        return (SampleOutcome::Pass, None);
    }
    let detail = breaching(hypothesis, values).map(|series| {
        let breached = values.iter().filter(|v| !holds(v)).count();
        let of = match (hypothesis.series, values.len()) {
            (_, 1) => String::new(),
            (SeriesMatch::All, n) => format!(" ({breached} of {n} series breach)"),
            (SeriesMatch::Any, n) => format!(" (none of {n} series holds)"),
        };
        format!("{} vs {expectation}{of}", show_series(series))
    });
    (SampleOutcome::Fail, detail)
}

/// The series that breaches the expectation the most: the one to name in a failure.
pub fn breaching<'v>(
    hypothesis: &Hypothesis,
    values: &'v [SeriesValue],
) -> Option<&'v SeriesValue> {
    let expectation = hypothesis.expect?;
    values
        .iter()
        .filter(|v| {
            v.value
                .is_some_and(|x| !x.is_nan() && !expectation.holds(x))
        })
        .max_by(|a, b| {
            let distance = |v: &SeriesValue| distance(hypothesis, v.value.unwrap_or(0.0));
            distance(a).total_cmp(&distance(b))
        })
}

/// Of two breaching series, the one further from what was expected.
pub fn worse(
    hypothesis: &Hypothesis,
    a: Option<SeriesValue>,
    b: Option<SeriesValue>,
) -> Option<SeriesValue> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let d = |v: &SeriesValue| distance(hypothesis, v.value.unwrap_or(0.0));
            Some(if d(&b) > d(&a) { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

/// How far a value lies from the expectation's bound (0 when it holds).
fn distance(hypothesis: &Hypothesis, value: f64) -> f64 {
    use crate::spec::{CompareOp, Expectation};
    match hypothesis.expect {
        Some(Expectation::Compare(CompareOp::Lt | CompareOp::Le, bound)) => value - bound,
        Some(Expectation::Compare(CompareOp::Gt | CompareOp::Ge, bound)) => bound - value,
        Some(Expectation::Compare(_, bound)) => (value - bound).abs(),
        Some(Expectation::Between(low, high)) => (low - value).max(value - high),
        // Alert counts: the more alerts firing, the further from "not firing".
        Some(Expectation::Resolved(_) | Expectation::NotFiring) => value,
        Some(Expectation::Firing(_)) => -value,
        None => 0.0,
    }
}

/// A value with its series' labels, as shown in a verdict: `0.412 {service="checkout"}`.
pub fn show_series(series: &SeriesValue) -> String {
    let value = series.value.map_or_else(
        || "no value".to_owned(),
        |v| {
            format!("{v:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        },
    );
    if series.labels.is_empty() {
        return value;
    }
    let labels: Vec<String> = series
        .labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{value} {{{}}}", labels.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::read::parse_expectation;
    use crate::spec::{Percent, Phase, Probe as ProbeSpec, Span};
    use std::time::Duration;

    fn hypothesis(expect: &str, series: SeriesMatch, no_data: NoDataPolicy) -> Hypothesis {
        Hypothesis {
            name: "h".into(),
            probe: ProbeSpec::Promql("up".into()),
            expect: Some(parse_expectation(expect).unwrap()),
            phases: vec![Phase::Before],
            every: Span(Duration::from_secs(1)),
            tolerance: Percent(100.0),
            abort: false,
            failure_threshold: 1,
            error_threshold: 2,
            series,
            no_data,
            weight: 1.0,
            line: None,
        }
    }

    fn values(vs: &[Option<f64>]) -> Observation {
        Observation::Values(
            vs.iter()
                .map(|v| SeriesValue {
                    labels: Default::default(),
                    value: *v,
                })
                .collect(),
        )
    }

    #[test]
    fn no_data_is_never_a_pass_by_default() {
        let h = hypothesis("< 1", SeriesMatch::All, NoDataPolicy::Inconclusive);
        assert_eq!(judge(&h, &values(&[])).0, SampleOutcome::NoData);
        assert_eq!(
            judge(&h, &values(&[Some(f64::NAN)])).0,
            SampleOutcome::NoData
        );
        assert_eq!(judge(&h, &values(&[None])).0, SampleOutcome::NoData);
        let fail = hypothesis("< 1", SeriesMatch::All, NoDataPolicy::Fail);
        assert_eq!(judge(&fail, &values(&[])).0, SampleOutcome::Fail);
    }

    #[test]
    fn all_and_any_series() {
        let all = hypothesis(
            "between 1 and 2",
            SeriesMatch::All,
            NoDataPolicy::Inconclusive,
        );
        let any = hypothesis(
            "between 1 and 2",
            SeriesMatch::Any,
            NoDataPolicy::Inconclusive,
        );
        let mixed = values(&[Some(1.5), Some(3.0)]);
        assert_eq!(judge(&all, &mixed).0, SampleOutcome::Fail);
        assert_eq!(judge(&any, &mixed).0, SampleOutcome::Pass);
        assert_eq!(
            judge(&all, &values(&[Some(1.0), Some(2.0)])).0,
            SampleOutcome::Pass
        );
    }

    #[test]
    fn a_partial_answer_is_inconclusive_even_when_no_data_fails() {
        let h = hypothesis("< 1", SeriesMatch::All, NoDataPolicy::Fail);
        let partial = Observation::Partial {
            values: vec![SeriesValue {
                labels: Default::default(),
                value: Some(0.5),
            }],
            reason: "partial response".into(),
        };
        assert_eq!(judge(&h, &partial).0, SampleOutcome::NoData);
        let violated = Observation::Violated {
            values: Vec::new(),
            reason: "HTTP 503".into(),
        };
        assert_eq!(judge(&h, &violated).0, SampleOutcome::Fail);
    }

    /// Looks back with canned points: 0.0, 0.5, no data, 0.2.
    struct History;

    impl Probe for History {
        fn describe(&self) -> String {
            "history".into()
        }
        fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
            Box::pin(async { values(&[Some(0.0)]) })
        }
        fn sample_range(
            &self,
            start: Timestamp,
            _end: Timestamp,
            _step: Duration,
        ) -> Option<RangeFuture<'_>> {
            Some(Box::pin(async move {
                Ok([Some(0.0), Some(0.5), None, Some(0.2)]
                    .iter()
                    .map(|v| (start, values(&[*v])))
                    .collect())
            }))
        }
    }

    #[tokio::test]
    async fn a_window_is_judged_point_by_point_and_no_data_points_do_not_count() {
        let h = hypothesis("< 0.1", SeriesMatch::All, NoDataPolicy::Inconclusive);
        let now = Timestamp::now();
        let check = check_window(&h, &History, now, now).await.unwrap().unwrap();
        assert_eq!(
            check,
            WindowCheck {
                points: 3,
                held: 1,
                worst: Some(SeriesValue {
                    labels: Default::default(),
                    value: Some(0.5)
                })
            }
        );
        let none = check_window(&h, &kube_like(), now, now).await;
        assert!(
            none.is_none(),
            "a probe without history is not looked back on"
        );
    }

    fn kube_like() -> impl Probe {
        struct Now;
        impl Probe for Now {
            fn describe(&self) -> String {
                "now".into()
            }
            fn sample(&self, _at: Timestamp) -> SampleFuture<'_> {
                Box::pin(async { values(&[Some(1.0)]) })
            }
        }
        Now
    }

    /// Regression (issue 11): a `series: all` failure printed a passing series' value
    /// (the largest) instead of the failing one.
    #[test]
    fn a_series_all_failure_names_the_failing_series_and_its_value() {
        let h = hypothesis("> 3", SeriesMatch::All, NoDataPolicy::Inconclusive);
        let series = |pod: &str, v: f64| SeriesValue {
            labels: [("pod".to_owned(), pod.to_owned())].into(),
            value: Some(v),
        };
        let observation =
            Observation::Values(vec![series("a", 9.0), series("b", 1.0), series("c", 2.5)]);
        let (outcome, detail) = judge(&h, &observation);
        assert_eq!(outcome, SampleOutcome::Fail);
        assert_eq!(
            detail.as_deref(),
            Some("1 {pod=\"b\"} vs > 3 (2 of 3 series breach)")
        );
        let values = observation.into_values();
        assert_eq!(breaching(&h, &values), Some(&series("b", 1.0)));
    }

    #[test]
    fn errors_are_errors() {
        let h = hypothesis("< 1", SeriesMatch::All, NoDataPolicy::Fail);
        assert_eq!(
            judge(&h, &Observation::Error("connection refused".into())).0,
            SampleOutcome::Error
        );
    }
}
