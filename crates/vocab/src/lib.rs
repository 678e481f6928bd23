//! The words shakedown and its sandbox both speak, kept in one place so that neither
//! copies the other: Kubernetes label/field selectors, Prometheus-style durations, the
//! `shakedown.dev/*` annotations that mark what a run changed in a cluster, and the
//! one format of an error with its causes.
//!
//! Pure code: no I/O, no async runtime, no cluster client.

pub mod annotations;
pub mod duration;
pub mod error_chain;
pub mod selector;

pub use error_chain::error_chain;
