//! The words shakedown and its sandbox both speak, kept in one place so that neither
//! copies the other: Kubernetes label/field selectors, Prometheus-style durations, and
//! the `shakedown.dev/*` annotations that mark what a run changed in a cluster.
//!
//! Pure code: no I/O, no async runtime, no cluster client.

pub mod annotations;
pub mod duration;
pub mod selector;
