//! shakedown: chaos experiments for Kubernetes, judged by Prometheus SLOs.
//!
//! The flow runs one way (see DESIGN.md): `spec` (typed YAML, with source locations)
//! → `plan` (targets and timeline, pure) → executor → `RunEvent`s → reports.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod demo;
pub mod events;
pub mod executor;
pub mod exit;
pub mod faults;
pub mod journal;
pub mod plan;
pub mod probes;
pub mod report;
pub mod sandbox;
pub mod selector;
pub mod spec;
