//! shakedown: chaos experiments for Kubernetes, judged by Prometheus SLOs.
//!
//! The flow runs one way (see DESIGN.md): `spec` (typed YAML, with source locations)
//! → `plan` (targets and timeline, pure) → executor → `RunEvent`s → reports.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod plan;
pub mod sandbox;
pub mod selector;
pub mod spec;
