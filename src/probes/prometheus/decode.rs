//! Reading the `data` of an answer: an instant vector or scalar into series values, and
//! a range query's matrix regrouped by step. NaN is no value; `±Inf` is a value.
//!
//! Pure: it does no I/O and never sees a URL or credential, so it has nothing to leak.

use jiff::Timestamp;
use serde_json::Value;

use super::client::Failure;
use crate::events::SeriesValue;

/// The series of an instant query's answer: a vector, or a scalar as one series.
pub(super) fn instant_values(data: &Value) -> Result<Vec<SeriesValue>, Failure> {
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
pub(super) fn matrix_points(data: &Value) -> Result<Vec<(Timestamp, Vec<SeriesValue>)>, Failure> {
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
