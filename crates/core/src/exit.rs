//! The exit-code contract (DESIGN.md, "Verdicts and exit codes").
//!
//! Every way the process can end maps to exactly one variant here, so CI pipelines can
//! gate on the number without parsing output. Nothing else in the crate picks a number.

use std::process::ExitCode;

/// How a shakedown invocation ended, as seen by a CI gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every hypothesis held, and every fault was injected and reverted.
    Passed,
    /// Steady state deviated: the system is not resilient, the gate should fail.
    Deviated,
    /// Invalid input (spec, flags): nothing in the cluster was touched.
    InvalidInput,
    /// Could not run: cluster or Prometheus unreachable, RBAC denied, baseline failed.
    CouldNotRun,
    /// A revert failed: the cluster may still be faulted.
    RevertFailed,
    /// Interrupted by SIGINT, after the revert completed.
    Interrupted,
    /// Terminated by SIGTERM, after the revert completed.
    Terminated,
}

impl Outcome {
    /// The documented process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Deviated => 1,
            Outcome::InvalidInput => 2,
            Outcome::CouldNotRun => 3,
            Outcome::RevertFailed => 4,
            Outcome::Interrupted => 130,
            Outcome::Terminated => 143,
        }
    }
}

impl Outcome {
    /// The outcome a documented exit code stands for (`shakedown report
    /// --mirror-exit-code` replays a run's code from its journal).
    pub const fn from_code(code: u8) -> Option<Outcome> {
        Some(match code {
            0 => Outcome::Passed,
            1 => Outcome::Deviated,
            2 => Outcome::InvalidInput,
            3 => Outcome::CouldNotRun,
            4 => Outcome::RevertFailed,
            130 => Outcome::Interrupted,
            143 => Outcome::Terminated,
            _ => return None,
        })
    }
}

impl Outcome {
    /// The one a pipeline must hear about first, when a session ends several ways: a
    /// cluster that may still be faulted outranks an interrupt, which outranks a run
    /// that could not run, and so on down to a pass.
    pub const fn worse(self, other: Outcome) -> Outcome {
        const fn rank(o: Outcome) -> u8 {
            match o {
                Outcome::Passed => 0,
                Outcome::Deviated => 1,
                Outcome::InvalidInput => 2,
                Outcome::CouldNotRun => 3,
                Outcome::Terminated | Outcome::Interrupted => 4,
                Outcome::RevertFailed => 5,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(outcome.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_documented_contract() {
        let table = [
            (Outcome::Passed, 0),
            (Outcome::Deviated, 1),
            (Outcome::InvalidInput, 2),
            (Outcome::CouldNotRun, 3),
            (Outcome::RevertFailed, 4),
            (Outcome::Interrupted, 130),
            (Outcome::Terminated, 143),
        ];
        for (outcome, code) in table {
            assert_eq!(outcome.code(), code, "{outcome:?}");
            assert_eq!(Outcome::from_code(code), Some(outcome), "{code}");
        }
        assert_eq!(Outcome::from_code(5), None);
    }
}
