//! shakedown's pure layers: what a run is (spec, plan), what happened (events), what it
//! means (reports) and how it ends (the exit-code contract).
//!
//! Nothing here talks to a cluster, to Prometheus or to an async runtime. That is not a
//! convention: this crate's manifest has no kube, tokio or hyper, so an import of them
//! is a compile error. The executor (in the `shakedown` crate) turns a [`plan::Plan`]
//! into [`events::RunEvent`]s; every report is a function of those events.

pub mod events;
pub mod exit;
pub mod output;
pub mod plan;
pub mod report;
pub mod spec;

pub use shakedown_vocab::{annotations, duration, selector};
