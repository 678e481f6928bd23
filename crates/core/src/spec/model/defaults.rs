//! Defaults for omitted keys. The decoder and the JSON Schema both use these, so the
//! documented default is the applied one.

use std::time::Duration;

use super::{Percent, Phase, Span};

pub fn interface() -> String {
    "eth0".into()
}
pub fn injector_image() -> String {
    "ghcr.io/nicolaka/netshoot:v0.13".into()
}
pub fn eviction_timeout() -> Span {
    Span(Duration::from_secs(120))
}
pub fn yes() -> bool {
    true
}
pub fn phases() -> Vec<Phase> {
    vec![Phase::Before, Phase::During, Phase::After]
}
pub fn every() -> Span {
    Span(Duration::from_secs(5))
}
pub fn tolerance() -> Percent {
    Percent(100.0)
}
pub fn failure_threshold() -> u32 {
    1
}
pub fn error_threshold() -> u32 {
    2
}
pub fn weight() -> f64 {
    1.0
}
pub fn http_method() -> String {
    "GET".into()
}
pub fn http_status() -> Vec<u16> {
    vec![200]
}
pub fn http_timeout() -> Span {
    Span(Duration::from_secs(5))
}
pub fn max_target_percent() -> Percent {
    Percent(100.0)
}
pub fn recovery_within() -> Span {
    Span(Duration::from_secs(300))
}
pub fn recovery_consecutive() -> u32 {
    2
}
pub fn repeat() -> u32 {
    1
}
pub fn allow_pending() -> bool {
    true
}

/// `regression.baseline`: the newest earlier run.
pub fn regression_baseline() -> String {
    "latest".into()
}
/// How long a silence outlasts its window: a minute for alerts still resolving.
pub fn silence_margin() -> Span {
    Span(Duration::from_secs(60))
}
