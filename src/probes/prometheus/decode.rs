//! Reading the `data` of an answer: an instant vector or scalar into series values, and
//! a range query's matrix regrouped by step. NaN is no value; `±Inf` is a value.
//!
//! Only data is data: a sample whose timestamp is older than the staleness bound (what
//! Prometheus itself looks back, 5 m) or ahead of the evaluation time beyond a small
//! clock skew is no value, and a range point outside the asked window is dropped. A
//! well-behaved Prometheus never sends either; a caching proxy or a broken server does.
//!
//! Pure: it does no I/O and never sees a URL or credential, so it has nothing to leak.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use super::client::Failure;
use crate::events::SeriesValue;

/// How old an instant query's sample may be: Prometheus's default lookback delta.
pub(super) const STALENESS: Duration = Duration::from_secs(5 * 60);
/// How far past the evaluation (or window end) a sample may lie: clock skew between
/// shakedown and Prometheus.
pub(super) const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// The series of an instant query's answer evaluated at `at` (a vector, or a scalar as
/// one series), and why any of them is no data although present (stale or future).
pub(super) fn instant_values(
    data: &Value,
    at: Timestamp,
) -> Result<(Vec<SeriesValue>, Option<String>), Failure> {
    let samples: Vec<(SeriesValue, Option<f64>)> = match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .map(|s| (series_value(s), sample_time(&s["value"])))
                    .collect()
            })
            .unwrap_or_default(),
        Some("scalar") => vec![(
            SeriesValue {
                labels: Default::default(),
                value: sample_value(&data["result"]),
            },
            sample_time(&data["result"]),
        )],
        Some(other) => {
            return Err(Failure::permanent(format!(
                "the query returns a {other}, not an instant vector or scalar (wrap a range selector in a function such as rate())"
            )));
        }
        None => return Err(Failure::permanent("the answer has no resultType".into())),
    };
    let oldest = at.as_millisecond() as f64 / 1000.0 - STALENESS.as_secs_f64();
    let newest = at.as_millisecond() as f64 / 1000.0 + CLOCK_SKEW.as_secs_f64();
    let mut why = None;
    let values = samples
        .into_iter()
        .map(|(mut value, time)| {
            let fresh = time.is_some_and(|t| (oldest..=newest).contains(&t));
            if !fresh {
                why.get_or_insert_with(|| stale_reason(time, at));
                value.value = None;
            }
            value
        })
        .collect();
    Ok((values, why))
}

fn stale_reason(time: Option<f64>, at: Timestamp) -> String {
    let Some(time) = time else {
        return "a sample has no timestamp: no data".into();
    };
    let lag = at.as_millisecond() as f64 / 1000.0 - time;
    if lag > 0.0 {
        format!(
            "a sample is {lag:.0}s older than the evaluation time (more than the {}s staleness bound): stale samples are no data",
            STALENESS.as_secs()
        )
    } else {
        format!(
            "a sample is {:.0}s in the future of the evaluation time: no data",
            -lag
        )
    }
}

/// A range query's values by step.
pub(super) type Points = Vec<(Timestamp, Vec<SeriesValue>)>;

/// A range query's matrix over `[start, end]`, regrouped by step: at each time, the
/// value of every series that has one; and how many samples lay outside the window.
pub(super) fn matrix_points(
    data: &Value,
    start: Timestamp,
    end: Timestamp,
) -> Result<(Points, usize), Failure> {
    if data["resultType"] != "matrix" {
        return Err(Failure::permanent(format!(
            "a range query returned {}, not a matrix",
            data["resultType"]
        )));
    }
    // The request rounds the window inwards to whole seconds; one second of slack.
    let first = start.as_millisecond() - 1000;
    let last = end.as_millisecond() + CLOCK_SKEW.as_millis() as i64;
    let mut outside = 0;
    let mut by_time: std::collections::BTreeMap<i64, Vec<SeriesValue>> = Default::default();
    for series in data["result"].as_array().into_iter().flatten() {
        let labels = series_value(series).labels;
        for sample in series["values"].as_array().into_iter().flatten() {
            let Some(seconds) = sample_time(sample) else {
                outside += 1;
                continue;
            };
            let ms = (seconds * 1000.0).round() as i64;
            if !(first..=last).contains(&ms) {
                outside += 1;
                continue;
            }
            by_time.entry(ms).or_default().push(SeriesValue {
                labels: labels.clone(),
                value: sample_value(sample),
            });
        }
    }
    let points = by_time
        .into_iter()
        .filter_map(|(ms, values)| Timestamp::from_millisecond(ms).ok().map(|t| (t, values)))
        .collect();
    Ok((points, outside))
}

/// `[<unix time>, "<value>"]`: the time, in seconds.
fn sample_time(sample: &Value) -> Option<f64> {
    sample
        .get(0)
        .and_then(Value::as_f64)
        .filter(|t| t.is_finite())
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
