//! What the benches share: how a set of timings becomes one figure, and a ratio
//! against a floor measured in the same run.
#![allow(dead_code)] // each bench uses a different subset

use std::time::Duration;

/// The middle sample: one slow round (a controller pass, another process) moves it
/// less than it moves a mean.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `a` as a multiple of `b`; a zero `b` counts as a nanosecond, never a division by zero.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
