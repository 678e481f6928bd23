//! Steady-state probes: something that can be sampled at a point in time, and the
//! judgement of a sample against a hypothesis's expectation.
//!
//! The executor only sees the `Probe` trait. `kube` probes (ready replicas, Ready
//! nodes) live in `kube.rs`, PromQL probes in `prometheus/`, HTTP probes in `http.rs`.

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
    /// The probe could not get an answer (server unreachable, error status, …).
    Error(String),
}

impl Observation {
    /// The values observed, for the record (none for an error).
    pub fn into_values(self) -> Vec<SeriesValue> {
        match self {
            Self::Values(values) | Self::Partial { values, .. } | Self::Violated { values, .. } => {
                values
            }
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
    /// The worst value among the points that did not hold.
    pub worst: Option<f64>,
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
                check.worst = observation
                    .clone()
                    .into_values()
                    .into_iter()
                    .filter_map(|v| v.value)
                    .fold(check.worst, |acc, v| Some(acc.map_or(v, |a| a.max(v))));
            }
            // No data at a step says nothing about the steady state either way.
            SampleOutcome::NoData | SampleOutcome::Error => {}
        }
    }
    Some(Ok(check))
}

/// Judges one observation: no data is never a pass unless the hypothesis says so.
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
    };
    let present: Vec<f64> = values
        .iter()
        .filter_map(|v| v.value)
        .filter(|v| !v.is_nan())
        .collect();
    if present.is_empty() || present.len() < values.len() && hypothesis.series == SeriesMatch::All {
        let outcome = match hypothesis.no_data {
            NoDataPolicy::Pass => SampleOutcome::Pass,
            NoDataPolicy::Fail => SampleOutcome::Fail,
            NoDataPolicy::Inconclusive => SampleOutcome::NoData,
        };
        return (outcome, Some("no data (empty result or NaN)".into()));
    }
    let Some(expectation) = hypothesis.expect else {
        return (SampleOutcome::Pass, None);
    };
    let holds = |v: &f64| expectation.holds(*v);
    let ok = match hypothesis.series {
        SeriesMatch::All => present.iter().all(holds),
        SeriesMatch::Any => present.iter().any(holds),
    };
    (
        if ok {
            SampleOutcome::Pass
        } else {
            SampleOutcome::Fail
        },
        None,
    )
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
        let pass = hypothesis("< 1", SeriesMatch::All, NoDataPolicy::Pass);
        assert_eq!(judge(&pass, &values(&[])).0, SampleOutcome::Pass);
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
    fn a_partial_answer_is_inconclusive_even_when_no_data_passes() {
        let h = hypothesis("< 1", SeriesMatch::All, NoDataPolicy::Pass);
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
                worst: Some(0.5)
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

    #[test]
    fn errors_are_errors() {
        let h = hypothesis("< 1", SeriesMatch::All, NoDataPolicy::Pass);
        assert_eq!(
            judge(&h, &Observation::Error("connection refused".into())).0,
            SampleOutcome::Error
        );
    }
}
