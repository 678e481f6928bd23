//! shakedown: chaos experiments for Kubernetes, judged by Prometheus SLOs.
//!
//! The flow runs one way (see DESIGN.md): `spec` (typed YAML, with source locations)
//! → `plan` (targets and timeline, pure) → executor → `RunEvent`s → reports.

/// `eprintln!` that never panics: with stderr closed (a pipe to `head`, a test that
/// stopped reading) a run must still revert and write its reports.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` counterpart of [`say!`].
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

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
