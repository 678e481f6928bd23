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

/// `println!` that never panics: `shakedown plan -o json | head -1` closes stdout early,
/// and a broken pipe must not turn a verdict into exit 101 (or skip a revert).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` counterpart of [`out!`].
#[macro_export]
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
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
pub mod executor;
pub mod faults;
pub mod journal;
pub mod probes;
pub mod run;

// The pure layers live in their own crate so that a compile error, not a convention,
// keeps the cluster client out of them; re-exported so paths read `shakedown::spec`.
pub use shakedown_core::{events, exit, output, plan, report, spec};
pub use shakedown_vocab::{annotations, selector};
