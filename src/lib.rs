//! shakedown: chaos experiments for Kubernetes, judged by Prometheus SLOs.
//!
//! The flow runs one way (see DESIGN.md): `spec` (typed YAML, with source locations)
//! → `plan` (targets and timeline, pure) → executor → `RunEvent`s → reports.

/// mimalloc, not glibc's malloc, for every program built on this library: the
/// `shakedown` binary (its runs, and the sandbox it serves for `sandbox` and `demo`), the
/// benches and the tests, so that what the benches measure is what ships. The sandbox and
/// a run allocate and free JSON across threads all the time; under glibc that fragmented
/// the heap and each round of `cargo bench --bench faults` on one sandbox was slower than
/// the one before (plain DELETEs of 1,000 pods: 0.50, 0.62, 0.80, 0.75, 0.80 s), which
/// made whichever contender ran last look worst. With mimalloc the rounds stay level.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `eprintln!` that never panics: with stderr closed (a pipe to `head`, a test that
/// stopped reading) a run must still revert and write its reports. The line is scrubbed
/// of secrets and its terminal controls are written out (`run::redact::for_terminal`).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = $crate::run::redact::for_terminal(&format!($($arg)*));
        // Above the live console when one is drawn, so the line does not tear it.
        if !$crate::run::console::say_above(&line) {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }};
}

/// `println!` that never panics: `shakedown plan -o json | head -1` closes stdout early,
/// and a broken pipe must not turn a verdict into exit 101 (or skip a revert). Scrubbed
/// and escaped like [`say!`]; JSON stays valid (see `report::text::clean`).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = $crate::run::redact::for_terminal(&format!($($arg)*));
        let _ = writeln!(std::io::stdout(), "{line}");
    }};
}

/// `print!` counterpart of [`out!`].
#[macro_export]
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = $crate::run::redact::for_terminal(&format!($($arg)*));
        let _ = write!(std::io::stdout(), "{text}");
    }};
}

/// `eprint!` counterpart of [`say!`], for text whose controls are the caller's own (the
/// diagnostics' colours): scrubbed of secrets, but escaped only by the caller.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = $crate::run::redact::scrub(&format!($($arg)*)).into_owned();
        let _ = write!(std::io::stderr(), "{text}");
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
