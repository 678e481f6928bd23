//! The YAML model: `Scenario` and `Experiment` files, validated with precise locations.
//!
//! This module does no I/O beyond reading spec files, and never imports the cluster client.

pub mod decode;
pub mod diagnostic;
pub mod duration;
pub mod node;
pub mod source;
