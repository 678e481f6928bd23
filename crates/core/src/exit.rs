//! The exit-code contract (DESIGN.md, "Verdicts and exit codes").
//!
//! Every way the process can end maps to exactly one [`Outcome`], and every outcome to one
//! number ([`Outcome::code`]) and one word ([`Outcome::label`]); nothing else in the
//! workspace picks a number or a verdict word, so CI pipelines can gate on the number and
//! reports never disagree with the process. What went wrong is a [`Failure`]: commands
//! return one, and one print site (`commands::dispatch`) prints it with its whole cause
//! chain ([`cause_chain`]) and exits with [`Failure::exit_code`].

use std::borrow::Cow;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::spec::Diagnostics;

/// A terminating signal the run reverted for before exiting with 128 + its number.
///
/// Adding a signal is adding a variant here (number, name, words): the exit code, the
/// labels and [`Outcome::from_code`] follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Signal {
    #[serde(rename = "SIGHUP")]
    Hup,
    #[serde(rename = "SIGINT")]
    Int,
    #[serde(rename = "SIGQUIT")]
    Quit,
    #[serde(rename = "SIGUSR1")]
    Usr1,
    #[serde(rename = "SIGUSR2")]
    Usr2,
    #[serde(rename = "SIGALRM")]
    Alrm,
    #[serde(rename = "SIGTERM")]
    Term,
}

impl Signal {
    /// Every signal shakedown reverts for: the ones that end a process by default and
    /// that a closed terminal, a CI runner, a supervisor or a mistyped `kill` send.
    /// [`Outcome::from_code`] looks codes up here.
    pub const ALL: [Signal; 7] = [
        Signal::Hup,
        Signal::Int,
        Signal::Quit,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Alrm,
        Signal::Term,
    ];

    /// The POSIX signal number (Linux numbering).
    pub const fn number(self) -> u8 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Quit => 3,
            Signal::Usr1 => 10,
            Signal::Usr2 => 12,
            Signal::Alrm => 14,
            Signal::Term => 15,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Signal::Hup => "SIGHUP",
            Signal::Int => "SIGINT",
            Signal::Quit => "SIGQUIT",
            Signal::Usr1 => "SIGUSR1",
            Signal::Usr2 => "SIGUSR2",
            Signal::Alrm => "SIGALRM",
            Signal::Term => "SIGTERM",
        }
    }

    pub const fn from_number(number: u8) -> Option<Signal> {
        let mut i = 0;
        while i < Signal::ALL.len() {
            if Signal::ALL[i].number() == number {
                return Some(Signal::ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// What the signal did to the run, as a past participle (`interrupted by SIGINT`).
    pub const fn verb(self) -> &'static str {
        match self {
            Signal::Int => "interrupted",
            Signal::Term => "terminated",
            Signal::Hup => "hung up",
            Signal::Quit | Signal::Usr1 | Signal::Usr2 | Signal::Alrm => "stopped",
        }
    }
}

/// How a shakedown invocation ended, as seen by a CI gate. In a journal (`RunFinished`)
/// it reads `"passed"`, `"deviated"`, `"invalidInput"`, `"couldNotRun"`,
/// `"revertFailed"`, `"dryRun"`, `"halted"` or `{"interrupted": "SIGINT"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    /// Stopped by a signal, after the revert completed (SIGINT 130, SIGTERM 143).
    Interrupted(Signal),
    /// `--dry-run=server`: every call was accepted by the API server with `dryRun=All`,
    /// nothing was faulted and no hypothesis was judged. Exit 0, but never `PASSED`.
    DryRun,
    /// Stopped by the kill switch (`shakedown halt`), after the revert completed.
    Halted,
}

/// Who pulled the kill switch (`shakedown halt`), when and why: what a halted run ends
/// with and what a refused run shows. Plain words, read from the cluster's halt marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltNotice {
    /// `user@host` of whoever ran `shakedown halt`.
    pub who: String,
    /// RFC 3339, UTC (`2026-12-02T09:44:11Z`).
    pub when: String,
    pub reason: String,
}

impl std::fmt::Display for HaltNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "halted by {} at {}: {}",
            self.who, self.when, self.reason
        )
    }
}

/// The label of an exit code no [`Outcome`] stands for (a hand-edited journal).
pub const UNKNOWN_LABEL: &str = "FAILED";
/// The meaning of an exit code no [`Outcome`] stands for.
pub const UNKNOWN_MEANING: &str = "the run failed";

impl Outcome {
    /// The documented process exit code: the one table from outcome to number.
    pub const fn code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Deviated => 1,
            Outcome::InvalidInput => 2,
            Outcome::CouldNotRun => 3,
            Outcome::RevertFailed => 4,
            Outcome::Interrupted(signal) => 128 + signal.number(),
            Outcome::DryRun => 0,
            Outcome::Halted => 5,
        }
    }

    /// The outcome a documented exit code stands for (`shakedown report
    /// --mirror-exit-code` replays a run's code from its journal).
    pub const fn from_code(code: u8) -> Option<Outcome> {
        Some(match code {
            0 => Outcome::Passed,
            1 => Outcome::Deviated,
            2 => Outcome::InvalidInput,
            3 => Outcome::CouldNotRun,
            4 => Outcome::RevertFailed,
            5 => Outcome::Halted,
            129..=255 => match Signal::from_number(code - 128) {
                Some(signal) => Outcome::Interrupted(signal),
                None => return None,
            },
            _ => return None,
        })
    }

    /// The verdict word reports print, in the vocabulary of DESIGN.md: the one label
    /// table. `aborted`: the run was stopped early by an `abort: true` hypothesis, so a
    /// deviation reads `ABORTED`.
    pub const fn label(self, aborted: bool) -> &'static str {
        match self {
            Outcome::Passed => "PASSED",
            Outcome::Deviated if aborted => "ABORTED",
            Outcome::Deviated => "DEVIATED",
            Outcome::InvalidInput => "INVALID INPUT",
            Outcome::CouldNotRun => "COULD NOT RUN",
            Outcome::RevertFailed => "REVERT FAILED",
            Outcome::Interrupted(Signal::Int) => "INTERRUPTED",
            Outcome::Interrupted(Signal::Term) => "TERMINATED",
            Outcome::Interrupted(Signal::Hup) => "HUNG UP",
            Outcome::Interrupted(_) => "STOPPED BY SIGNAL",
            Outcome::DryRun => "DRY RUN",
            Outcome::Halted => "HALTED",
        }
    }

    /// One sentence saying what the exit code means for a run.
    pub fn meaning(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Outcome::Passed => "every hypothesis held, and every fault was injected and reverted",
            Outcome::Deviated => "steady state deviated: the system did not stay resilient",
            Outcome::InvalidInput => "invalid input: nothing was touched",
            Outcome::CouldNotRun => {
                "the run could not complete (cluster or Prometheus unreachable, or the baseline failed)"
            }
            Outcome::RevertFailed => {
                "a revert failed or never happened: the cluster may still be faulted; run `shakedown recover`"
            }
            Outcome::DryRun => {
                "dry run: every call was accepted by the API server; nothing was faulted and no hypothesis was judged"
            }
            Outcome::Halted => "halted by the kill switch (`shakedown halt`) after reverting",
            Outcome::Interrupted(signal) => {
                return Cow::Owned(format!(
                    "{} by {} after reverting",
                    signal.verb(),
                    signal.name()
                ));
            }
        })
    }

    /// The one a pipeline must hear about first, when a session ends several ways: a
    /// cluster that may still be faulted outranks an interrupt, which outranks a run
    /// that could not run, and so on down to a pass.
    pub const fn worse(self, other: Outcome) -> Outcome {
        const fn rank(o: Outcome) -> u8 {
            match o {
                Outcome::Passed | Outcome::DryRun => 0,
                Outcome::Deviated => 1,
                Outcome::InvalidInput => 2,
                Outcome::CouldNotRun => 3,
                Outcome::Halted => 4,
                Outcome::Interrupted(_) => 5,
                Outcome::RevertFailed => 6,
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

/// The cause of a failure, from a layer this crate cannot name (the cluster client, the
/// journal, the sandbox). It stays an error, so its own causes print too.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, by the exit code it maps to. Its `Display` is what the user reads
/// after `shakedown: `, and its causes follow through `source()`. Some failures also carry
/// details the print site shows before the message: spec diagnostics
/// ([`Failure::diagnostics`]) and preflight problems ([`Failure::details`]).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Exit 2: nothing was touched.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// Exit 3: the run could not happen, or could not finish.
    #[error(transparent)]
    CouldNotRun(#[from] CouldNotRun),
    /// Exit 1: the system did not stay resilient.
    #[error(transparent)]
    Deviated(#[from] Deviation),
    /// Exit 4: `left_faulted` names each target whose revert failed, with why.
    #[error(
        "REVERT FAILED, the cluster may still be faulted: {}. Run `shakedown recover`.",
        .left_faulted.join("; ")
    )]
    RevertFailed { left_faulted: Vec<String> },
    /// Exit 128 + the signal's number, after every fault was reverted.
    #[error("{} by {}; every fault was reverted", .0.verb(), .0.name())]
    Interrupted(Signal),
    /// Exit 5: the kill switch stopped the run, after every fault was reverted.
    #[error("{0}; every fault was reverted")]
    Halted(HaltNotice),
}

/// Exit 2: the input is wrong, and nothing in the cluster was touched.
#[derive(Debug, thiserror::Error)]
pub enum InvalidInput {
    /// Spec files that do not validate. Each diagnostic names its `file:line:col`; the
    /// print site prints them (in colour when wanted) before this summary.
    #[error("invalid input; nothing was touched")]
    Specs(Vec<Diagnostics>),
    /// `shakedown validate`: some of the files checked do not validate.
    #[error("{} of {checked} file(s) invalid; nothing was run", .diagnostics.len())]
    Validation {
        diagnostics: Vec<Diagnostics>,
        checked: usize,
    },
    /// A flag problem the parser cannot see: a context that needs `--yes`.
    #[error(transparent)]
    Flag(Cause),
    /// A journal that cannot be read or is corrupt.
    #[error(transparent)]
    Journal(Cause),
    /// A journal with not one complete record.
    #[error("{}: the journal has no complete record; nothing to report", .path.display())]
    EmptyJournal { path: std::path::PathBuf },
    /// A sandbox topology file that cannot be read or is invalid.
    #[error(transparent)]
    SandboxConfig(Cause),
}

/// Exit 3: the run could not happen (or finish), through no fault of the system under test.
#[derive(Debug, thiserror::Error)]
pub enum CouldNotRun {
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("could not connect to the cluster")]
    Connect(#[source] Cause),
    #[error("could not read the cluster")]
    ReadCluster(#[source] Cause),
    /// RBAC, admission or target checks that failed before anything was touched; the
    /// print site lists each problem before this summary.
    #[error("preflight failed; nothing was touched")]
    Preflight { problems: Vec<String> },
    /// A fault found no targets (a chaos test that injected nothing did not pass).
    #[error("no targets: {}", .problems.join("; "))]
    NoTargets { problems: Vec<String> },
    /// Prometheus is configured unusably (no URL, a bad CA bundle, …).
    #[error("Prometheus cannot be used")]
    PrometheusSetup(#[source] Cause),
    #[error("experiment baseline failed")]
    BaselineFailed,
    /// What kept a started run from a verdict (probes that could not be evaluated, …).
    #[error("{}", .problems.join("; "))]
    Incomplete { problems: Vec<String> },
    /// The journal cannot be written: no mutation may happen without its intent record.
    #[error(transparent)]
    Journal(Cause),
    #[error(transparent)]
    WriteReport(Cause),
    /// `shakedown recover` could not even look for what to recover.
    #[error(transparent)]
    Recover(Cause),
    /// The sandbox (or the demo's Prometheus) could not start or write its kubeconfig.
    #[error(transparent)]
    Sandbox(Cause),
    #[error(transparent)]
    Demo(Cause),
    /// The kill switch is on (`shakedown halt`): no run starts until `halt --clear`.
    #[error("the cluster is {0}; nothing was touched (`shakedown halt --clear` lifts it)")]
    ClusterHalted(HaltNotice),
    /// `shakedown halt` could not read, write or delete the kill switch's marker.
    #[error(transparent)]
    KillSwitch(Cause),
}

/// Exit 1: why the steady state is not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum Deviation {
    /// An `abort: true` hypothesis breached; the faults were reverted early.
    #[error("aborted: `{hypothesis}` breached; every fault was reverted")]
    Aborted { hypothesis: String },
    /// Someone pressed `a` on the live console; the faults were reverted early and
    /// recovery was still measured.
    #[error("aborted from the console (key a); every fault was reverted")]
    AbortedFromConsole,
    #[error("steady state deviated or could not be confirmed")]
    NotConfirmed,
    /// `run --baseline`: worse than the baseline run by more than allowed.
    #[error("regressed against baseline run {baseline}: {}", .regressions.join("; "))]
    Regressed {
        baseline: String,
        regressions: Vec<String>,
    },
}

impl Failure {
    /// The outcome this failure ends the process with.
    pub const fn outcome(&self) -> Outcome {
        match self {
            Failure::InvalidInput(_) => Outcome::InvalidInput,
            Failure::CouldNotRun(_) => Outcome::CouldNotRun,
            Failure::Deviated(_) => Outcome::Deviated,
            Failure::RevertFailed { .. } => Outcome::RevertFailed,
            Failure::Interrupted(signal) => Outcome::Interrupted(*signal),
            Failure::Halted(_) => Outcome::Halted,
        }
    }

    /// The documented process exit code (through [`Outcome::code`], the one table).
    pub const fn exit_code(&self) -> u8 {
        self.outcome().code()
    }

    /// The executor's revert failures: each entry names a target left faulted and why.
    pub fn revert_failed(left_faulted: Vec<String>) -> Failure {
        Failure::RevertFailed { left_faulted }
    }

    /// A run stopped by `signal`, after its reverts.
    pub fn interrupted(signal: Signal) -> Failure {
        Failure::Interrupted(signal)
    }

    /// Spec diagnostics the print site shows before the message, if any.
    pub fn diagnostics(&self) -> &[Diagnostics] {
        match self {
            Failure::InvalidInput(
                InvalidInput::Specs(diagnostics) | InvalidInput::Validation { diagnostics, .. },
            ) => diagnostics,
            _ => &[],
        }
    }

    /// Lines the print site shows (each after `shakedown: `) before the message.
    pub fn details(&self) -> Vec<String> {
        match self {
            Failure::CouldNotRun(CouldNotRun::Preflight { problems }) => {
                problems.iter().map(|p| format!("preflight: {p}")).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// One row of the documented exit-code table: a code (`128 + n` for the signals), every
/// verdict label reports print with it, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitCodeRow {
    pub code: String,
    pub labels: Vec<&'static str>,
    pub meaning: String,
}

/// The exit-code table, generated from [`Outcome`] so `run --help` (and the README, which
/// a test holds to it) can never drift from the process: every outcome in code order,
/// `DRY RUN` beside `PASSED`, and one `128 + n` row for every signal in [`Signal::ALL`].
pub fn exit_code_table() -> Vec<ExitCodeRow> {
    let row = |o: Outcome, labels: Vec<&'static str>| ExitCodeRow {
        code: o.code().to_string(),
        labels,
        meaning: o.meaning().into_owned(),
    };
    let mut rows = vec![
        row(Outcome::Passed, vec![Outcome::Passed.label(false)]),
        row(Outcome::DryRun, vec![Outcome::DryRun.label(false)]),
        row(
            Outcome::Deviated,
            vec![
                Outcome::Deviated.label(false),
                Outcome::Deviated.label(true),
            ],
        ),
    ];
    for o in [
        Outcome::InvalidInput,
        Outcome::CouldNotRun,
        Outcome::RevertFailed,
        Outcome::Halted,
    ] {
        rows.push(row(o, vec![o.label(false)]));
    }
    let mut labels: Vec<&'static str> = Vec::new();
    for signal in Signal::ALL {
        let label = Outcome::Interrupted(signal).label(false);
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    let signals: Vec<String> = Signal::ALL
        .iter()
        .map(|s| format!("{} {}", 128 + s.number(), s.name()))
        .collect();
    rows.push(ExitCodeRow {
        code: "128 + n".into(),
        labels,
        meaning: format!(
            "stopped by a terminating signal, after reverting: {}",
            signals.join(", ")
        ),
    });
    rows
}

/// The table as `shakedown run --help` prints it after the flags.
pub fn exit_codes_help() -> String {
    let rows = exit_code_table();
    let code_width = rows.iter().map(|r| r.code.len()).max().unwrap_or(0);
    let mut text = String::from("Exit codes (the CI contract):\n");
    for row in &rows {
        text.push_str(&format!(
            "  {:<code_width$}  {} — {}\n",
            row.code,
            row.labels.join(", "),
            row.meaning
        ));
    }
    text
}

/// The one error-chain printer (`a: b: c`, each cause once), shared with the sandbox.
pub use shakedown_vocab::error_chain as cause_chain;

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_OUTCOME: [Outcome; 9] = [
        Outcome::Passed,
        Outcome::Deviated,
        Outcome::InvalidInput,
        Outcome::CouldNotRun,
        Outcome::RevertFailed,
        Outcome::Interrupted(Signal::Int),
        Outcome::Interrupted(Signal::Term),
        Outcome::DryRun,
        Outcome::Halted,
    ];

    #[test]
    fn codes_match_the_documented_contract() {
        let table = [
            (Outcome::Passed, 0),
            (Outcome::Deviated, 1),
            (Outcome::InvalidInput, 2),
            (Outcome::CouldNotRun, 3),
            (Outcome::RevertFailed, 4),
            (Outcome::Halted, 5),
            (Outcome::Interrupted(Signal::Hup), 129),
            (Outcome::Interrupted(Signal::Int), 130),
            (Outcome::Interrupted(Signal::Quit), 131),
            (Outcome::Interrupted(Signal::Usr1), 138),
            (Outcome::Interrupted(Signal::Usr2), 140),
            (Outcome::Interrupted(Signal::Alrm), 142),
            (Outcome::Interrupted(Signal::Term), 143),
        ];
        for (outcome, code) in table {
            assert_eq!(outcome.code(), code, "{outcome:?}");
            assert_eq!(Outcome::from_code(code), Some(outcome), "{code}");
        }
        // 137 (SIGKILL) cannot be caught, so no run ever ends with it after a revert.
        for unknown in [6, 127, 128, 137, 139, 255] {
            assert_eq!(Outcome::from_code(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn a_signal_exits_with_128_plus_its_number() {
        for signal in Signal::ALL {
            let outcome = Outcome::Interrupted(signal);
            assert_eq!(outcome.code(), 128 + signal.number(), "{signal:?}");
            assert_eq!(Signal::from_number(signal.number()), Some(signal));
        }
    }

    #[test]
    fn every_outcome_has_its_own_label() {
        let labels: Vec<&str> = EVERY_OUTCOME.iter().map(|o| o.label(false)).collect();
        assert_eq!(
            labels,
            [
                "PASSED",
                "DEVIATED",
                "INVALID INPUT",
                "COULD NOT RUN",
                "REVERT FAILED",
                "INTERRUPTED",
                "TERMINATED",
                "DRY RUN",
                "HALTED"
            ]
        );
        assert_eq!(Outcome::Deviated.label(true), "ABORTED");
        assert_eq!(Outcome::Passed.label(true), "PASSED");
        assert_eq!(
            Outcome::Interrupted(Signal::Term).meaning(),
            "terminated by SIGTERM after reverting"
        );
    }

    #[test]
    fn outcomes_read_back_from_a_journal() {
        for outcome in EVERY_OUTCOME {
            let json = serde_json::to_string(&outcome).expect("serialize");
            let back: Outcome = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, outcome, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Outcome::Interrupted(Signal::Int)).expect("serialize"),
            r#"{"interrupted":"SIGINT"}"#
        );
        assert_eq!(
            serde_json::to_string(&Outcome::CouldNotRun).expect("serialize"),
            r#""couldNotRun""#
        );
    }

    #[test]
    fn every_failure_maps_to_one_exit_code() {
        let io = || std::io::Error::other("boom");
        let table: [(Failure, u8); 8] = [
            (InvalidInput::Specs(Vec::new()).into(), 2),
            (InvalidInput::Flag("pass --yes".into()).into(), 2),
            (CouldNotRun::Runtime(io()).into(), 3),
            (CouldNotRun::BaselineFailed.into(), 3),
            (Deviation::NotConfirmed.into(), 1),
            (Failure::revert_failed(vec!["node/a: timeout".into()]), 4),
            (Failure::interrupted(Signal::Int), 130),
            (Failure::interrupted(Signal::Term), 143),
        ];
        for (failure, code) in table {
            assert_eq!(failure.exit_code(), code, "{failure}");
            assert_eq!(failure.outcome().code(), code, "{failure}");
        }
    }

    #[test]
    fn the_kill_switch_halts_with_5_and_refuses_with_3_naming_who_when_and_why() {
        let notice = HaltNotice {
            who: "alice@laptop".into(),
            when: "2026-12-02T09:44:11Z".into(),
            reason: "payments incident".into(),
        };
        let halted = Failure::Halted(notice.clone());
        assert_eq!(halted.exit_code(), 5);
        assert_eq!(halted.outcome().label(false), "HALTED");
        assert_eq!(
            halted.to_string(),
            "halted by alice@laptop at 2026-12-02T09:44:11Z: payments incident; every fault was reverted"
        );
        let refused: Failure = CouldNotRun::ClusterHalted(notice).into();
        assert_eq!(refused.exit_code(), 3);
        assert_eq!(
            refused.to_string(),
            "the cluster is halted by alice@laptop at 2026-12-02T09:44:11Z: payments incident; nothing was touched (`shakedown halt --clear` lifts it)"
        );
    }

    #[test]
    fn messages_name_what_is_left_and_the_whole_cause_chain() {
        let revert = Failure::revert_failed(vec!["node/a: timeout".into(), "pod/b: 500".into()]);
        assert_eq!(
            revert.to_string(),
            "REVERT FAILED, the cluster may still be faulted: node/a: timeout; pod/b: 500. Run `shakedown recover`."
        );
        assert_eq!(
            Failure::interrupted(Signal::Int).to_string(),
            "interrupted by SIGINT; every fault was reverted"
        );
        let connect: Failure =
            CouldNotRun::Connect(Box::new(std::io::Error::other("refused"))).into();
        assert_eq!(
            cause_chain(&connect),
            "could not connect to the cluster: refused"
        );
        let preflight: Failure = CouldNotRun::Preflight {
            problems: vec!["a".into(), "b".into()],
        }
        .into();
        assert_eq!(preflight.details(), ["preflight: a", "preflight: b"]);
        assert_eq!(
            preflight.to_string(),
            "preflight failed; nothing was touched"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read x: {source}")]
        struct Embeds {
            #[source]
            source: std::io::Error,
        }
        let failure: Failure = CouldNotRun::Journal(Box::new(Embeds {
            source: std::io::Error::other("denied"),
        }))
        .into();
        assert_eq!(cause_chain(&failure), "cannot read x: denied");
    }

    #[test]
    fn the_exit_code_table_covers_every_outcome_and_signal() {
        let rows = exit_code_table();
        let row_of = |o: Outcome| {
            let code = match o {
                Outcome::Interrupted(_) => "128 + n".to_owned(),
                other => other.code().to_string(),
            };
            rows.iter()
                .find(|r| r.code == code && r.labels.contains(&o.label(false)))
                .unwrap_or_else(|| panic!("{o:?} has no row in {rows:?}"))
        };
        for o in EVERY_OUTCOME {
            row_of(o);
        }
        for code in 0..=255 {
            if let Some(o) = Outcome::from_code(code) {
                row_of(o);
            }
        }
        assert!(row_of(Outcome::Deviated).labels.contains(&"ABORTED"));
        let dry = row_of(Outcome::DryRun);
        assert_eq!(
            (dry.code.as_str(), dry.labels.as_slice()),
            ("0", &["DRY RUN"][..])
        );
        assert_eq!(row_of(Outcome::Halted).code, "5");
        let signals = row_of(Outcome::Interrupted(Signal::Int));
        for s in Signal::ALL {
            assert!(
                signals
                    .meaning
                    .contains(&format!("{} {}", 128 + s.number(), s.name())),
                "{signals:?}"
            );
        }
        let help = exit_codes_help();
        assert!(help.contains("  5        HALTED — halted by"), "{help}");
        assert!(help.contains("  0        DRY RUN — dry run:"), "{help}");
    }
}
