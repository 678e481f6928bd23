//! JUnit XML for CI gates (Jenkins, GitLab, GitHub test reporters).
//!
//! One `<testsuite>` per scenario step, one `<testcase>` per hypothesis × phase and two
//! per fault (inject, revert). A deviation is a `<failure>`; an infrastructure problem
//! (probe error, failed injection or revert) is an `<error>`; what never ran is
//! `<skipped>`. The output validates against Jenkins xunit's `junit-10.xsd`, the strictest
//! schema the common consumers publish, so it stays inside what all of them accept, with
//! one addition: `file` and `line` on `<testcase>`.
//!
//! Identities are stable and unique: `classname` is `experiment › step id` (so the rounds
//! of a `repeat` and a scenario used twice are different tests), `name` is the hypothesis
//! and phase or the fault and action. `file` and `line` point at the YAML that declared
//! the hypothesis or fault, which GitLab and GitHub annotators read; junit-10.xsd has no
//! place for them on `<testcase>`, but every consumer we target ignores attributes it
//! does not know (pytest's `xunit1` family writes the same two).

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::model::{
    self, CheckOutcome, CheckView, FaultActionKind, HypothesisView, RecoveryGate, RunView,
    StepState, StepView, phase_word, span_ms,
};
use super::text::{self, clean, clean_line};
use super::words::{self, ProbeText, verdict_word};
use crate::events::{BaselineCompared, PlannedStep, Record};
use crate::exit::Outcome;

/// Samples listed in a failure body; the journal has all of them.
const MAX_SAMPLES: usize = 60;
/// Timeline lines in one `system-out`.
const MAX_TIMELINE: usize = 2_000;

pub fn render(records: &[Record], truncated: bool) -> String {
    let view = model::analyze(records, truncated);
    let mut report = Report::new(clean_line(view.experiment()));
    report.add_test_suites(suites(&view, view.experiment()));
    if let Some(ms) = view.duration_ms() {
        report.set_time(Duration::from_millis(ms));
    }
    serialize(&report)
}

/// One JUnit file for several runs (a release gate that runs several experiments): the
/// suites of each run in order, each still carrying its own run's properties.
pub fn render_many(runs: &[(&[Record], bool)]) -> String {
    let mut report = Report::new("shakedown");
    let mut total_ms = 0;
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    for (records, truncated) in runs {
        let view = model::analyze(records, *truncated);
        // The same experiment twice in one gate: `gate`, then `gate #2`, so identities
        // stay unique and stable from one run of the gate to the next.
        let count = seen.entry(view.experiment().to_owned()).or_default();
        *count += 1;
        let name = match *count {
            1 => view.experiment().to_owned(),
            n => format!("{} #{n}", view.experiment()),
        };
        report.add_test_suites(suites(&view, &name));
        total_ms += view.duration_ms().unwrap_or(0);
    }
    report.set_time(Duration::from_millis(total_ms));
    serialize(&report)
}

/// The suites of one run; `experiment` names it in every `classname`.
fn suites(view: &RunView, experiment: &str) -> Vec<TestSuite> {
    let mut suites: Vec<TestSuite> = view
        .steps
        .iter()
        .filter(|s| s.is_checked())
        .map(|s| step_suite(view, s, experiment))
        .collect();
    if !view.experiment_hypotheses.is_empty() {
        suites.push(experiment_suite(view, experiment));
    }
    if let Some(compared) = &view.compared {
        suites.push(regression_suite(view, compared, experiment));
    }
    let explained = suites.iter().any(|s| s.failures + s.errors > 0);
    if view.partial || (view.outcome() != Some(Outcome::Passed) && !explained) {
        suites.push(run_suite(view, experiment));
    }
    suites
}

fn serialize(report: &Report) -> String {
    match report.to_string() {
        Ok(xml) => utc_as_z(&drop_root_skipped(&xml)),
        // Serialization only fails on I/O into a Vec, which cannot happen; still, a CI gate
        // must get a file that fails rather than nothing.
        Err(e) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"1\" failures=\"0\" errors=\"1\"><testsuite name=\"shakedown\" tests=\"1\" failures=\"0\" errors=\"1\"><testcase name=\"render\"><error message=\"{}\"/></testcase></testsuite></testsuites>\n",
            text::xml(&e.to_string())
        ),
    }
}

/// quick-junit always writes `skipped` on `<testsuites>`, which `junit-10.xsd` does not
/// allow there (Jenkins xunit rejects the file). Each `<testsuite>` still carries its own
/// count. Attribute values are escaped, so the first ` skipped="` in the root tag is the
/// attribute itself.
fn drop_root_skipped(xml: &str) -> String {
    let Some(root) = xml.find("<testsuites") else {
        return xml.to_owned();
    };
    let tag_end = xml[root..].find('>').map_or(xml.len(), |i| root + i);
    let Some(attr) = xml[root..tag_end].find(" skipped=\"").map(|i| root + i) else {
        return xml.to_owned();
    };
    let value_start = attr + " skipped=\"".len();
    let Some(value_len) = xml[value_start..].find('"') else {
        return xml.to_owned();
    };
    format!("{}{}", &xml[..attr], &xml[value_start + value_len + 1..])
}

fn properties(view: &RunView, step: Option<&StepView>) -> Vec<Property> {
    let mut props = Vec::new();
    let mut add = |name: &str, value: &str| props.push(Property::new(name, clean_line(value)));
    add("run_id", view.run_id());
    add("experiment", view.experiment());
    if let Some(s) = &view.started {
        add("source", &s.source);
        add("seed", &s.seed.to_string());
        add("context", s.context.as_deref().unwrap_or("unknown"));
        add("api_server", s.api_server.as_deref().unwrap_or("unknown"));
        add(
            "prometheus_url",
            s.prometheus_url.as_deref().unwrap_or("none"),
        );
        add("dry_run", &s.dry_run);
        add("shakedown_version", &s.version);
    }
    if let Some(step) = step {
        add("step", &step.id);
        add("step_status", &step.status_word());
        if let Some(fault) = step.fault_kind() {
            add("fault", fault);
        }
    }
    // Per alert of this suite: its time to detect and to resolve, for dashboards that
    // read properties rather than case bodies.
    let scope = step.map(|s| s.id.clone());
    for alert in view.alerts().into_iter().filter(|a| a.step == scope) {
        if let Some(ms) = alert.detect_ms {
            add(
                &format!("time_to_detect {}", alert.alert),
                &text::duration(ms),
            );
        }
        if let Some(ms) = alert.resolve_ms {
            add(
                &format!("time_to_resolve {}", alert.alert),
                &text::duration(ms),
            );
        }
    }
    add("exit_code", &view.exit_code().to_string());
    add("partial", if view.partial { "true" } else { "false" });
    props
}

/// `experiment › step id`: a step id is unique within a run (`3#2` is round 2 of step 3,
/// `4.1` the first member of group 4), so repeats and reused scenarios never collide.
fn classname(experiment: &str, scope: &str) -> String {
    clean_line(&format!("{experiment} › {scope}"))
}

/// The plan entry of a step, as `RunStarted` recorded it.
fn planned_step<'a>(view: &'a RunView, id: &str) -> Option<&'a PlannedStep> {
    view.started.as_ref()?.steps.iter().find(|s| s.id == id)
}

/// Where a test case is declared: the file and line CI tools annotate.
#[derive(Clone, Copy)]
struct Location<'a> {
    file: Option<&'a str>,
    line: Option<u32>,
}

impl<'a> Location<'a> {
    fn of_fault(view: &'a RunView, step: &StepView) -> Self {
        let planned = planned_step(view, &step.id);
        Location {
            file: planned.and_then(|p| p.file.as_deref()),
            line: planned.and_then(|p| p.fault_line),
        }
    }

    fn of_hypothesis(view: &'a RunView, step: Option<&StepView>, name: &str) -> Self {
        let started = view.started.as_ref();
        let (file, hypotheses) = match step {
            Some(step) => {
                let planned = planned_step(view, &step.id);
                (
                    planned.and_then(|p| p.file.as_deref()),
                    planned.map(|p| p.hypotheses.as_slice()),
                )
            }
            None => (
                started.map(|s| s.source.as_str()),
                started.map(|s| s.hypotheses.as_slice()),
            ),
        };
        let line = hypotheses
            .unwrap_or_default()
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| h.line);
        Location { file, line }
    }

    fn set_on(self, case: &mut TestCase) {
        if let Some(file) = self.file {
            case.extra.insert("file".into(), clean_line(file).into());
            if let Some(line) = self.line {
                case.extra.insert("line".into(), line.to_string().into());
            }
        }
    }
}

fn new_suite(view: &RunView, name: &str, step: Option<&StepView>) -> TestSuite {
    let mut suite = TestSuite::new(clean_line(name));
    suite.add_properties(properties(view, step));
    let (start, end) = match step {
        Some(s) => (s.started_at, s.ended_at),
        None => (view.started_at, view.ended_at),
    };
    if let Some(start) = start {
        suite.set_timestamp(chrono_time(start));
        if let Some(ms) = end.and_then(|end| span_ms(start, end)) {
            suite.set_time(Duration::from_millis(ms));
        }
    }
    suite
}

fn step_suite(view: &RunView, step: &StepView, experiment: &str) -> TestSuite {
    let scope = step.scenario.as_deref().unwrap_or(&step.name);
    let mut suite = new_suite(view, &format!("{scope} (step {})", step.id), Some(step));
    if let Some(file) = planned_step(view, &step.id).and_then(|p| p.file.as_deref()) {
        suite.extra.insert("file".into(), clean_line(file).into());
    }
    let class = classname(experiment, &step.id);
    for h in &step.hypotheses {
        for check in &h.checks {
            suite.add_test_case(check_case(view, Some(step), h, check, &class));
        }
    }
    if let Some(kind) = step.fault_kind() {
        suite.add_test_case(inject_case(view, step, kind, &class));
        suite.add_test_case(revert_case(view, step, kind, &class));
    }
    for gate in step.recovery_gates() {
        suite.add_test_case(recovery_case(view, step, &gate, &class));
    }
    suite.set_system_out(system_out(view, Some(&step.id)));
    suite
}

fn experiment_suite(view: &RunView, experiment: &str) -> TestSuite {
    let mut suite = new_suite(
        view,
        &format!("{} (experiment-wide)", view.experiment()),
        None,
    );
    if let Some(started) = &view.started {
        suite
            .extra
            .insert("file".into(), clean_line(&started.source).into());
    }
    let class = classname(experiment, "experiment-wide");
    for h in &view.experiment_hypotheses {
        for check in &h.checks {
            suite.add_test_case(check_case(view, None, h, check, &class));
        }
    }
    suite.set_system_out(system_out(view, None));
    suite
}

/// Says what the exit code means when no other test case does (an interrupted run, a
/// cluster that was never reached), and marks a partial journal as not passing.
fn run_suite(view: &RunView, experiment: &str) -> TestSuite {
    let mut suite = new_suite(view, &format!("{} (run)", view.experiment()), None);
    let code = view.exit_code();
    let status = if view.partial {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_type("PartialJournal").set_message(format!(
            "partial report: {} (exit {code})",
            view.verdict_sentence()
        ));
        s
    } else if view.outcome() == Some(Outcome::Passed) {
        TestCaseStatus::success()
    } else if view.outcome() == Some(Outcome::DryRun) {
        // Not a failure (exit 0), and not a pass either: nothing was proven.
        let mut s = TestCaseStatus::skipped();
        s.set_message(format!(
            "DRY RUN: {} (exit {code})",
            view.verdict_sentence()
        ));
        s
    } else {
        let kind = if view.outcome() == Some(Outcome::Deviated) {
            NonSuccessKind::Failure
        } else {
            NonSuccessKind::Error
        };
        let mut s = TestCaseStatus::non_success(kind);
        s.set_type(view.verdict_label().replace(' ', ""))
            .set_message(format!("{} (exit {code})", view.verdict_sentence()));
        s
    };
    let mut case = TestCase::new("run outcome", status);
    case.set_classname(classname(experiment, "run"));
    if let Some(ms) = view.duration_ms() {
        case.set_time(Duration::from_millis(ms));
    }
    suite.add_test_case(case);
    suite.set_system_out(system_out(view, None));
    suite
}

/// The regression gate (`run --baseline`): one failed case per regression, named after
/// what regressed, with both values in its message; one passing case when none did.
fn regression_suite(view: &RunView, compared: &BaselineCompared, experiment: &str) -> TestSuite {
    let baseline = clean_line(&compared.baseline);
    let mut suite = new_suite(
        view,
        &format!("{} (compared with {baseline})", view.experiment()),
        None,
    );
    let class = classname(experiment, "regression");
    for r in &compared.regressions {
        let message = clean_line(&format!(
            "{}: {} in baseline run {baseline}, {} now (allowed {})",
            r.what, r.baseline, r.current, r.allowed
        ));
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_type("Regression")
            .set_message(message.clone())
            .set_description(format!(
                "baseline: {}\ncurrent: {}\nallowed: {}\n",
                clean_line(&r.baseline),
                clean_line(&r.current),
                clean_line(&r.allowed)
            ));
        let mut case = TestCase::new(clean_line(&format!("regression {}", r.what)), status);
        case.set_classname(class.clone());
        case.set_system_out(message);
        suite.add_test_case(case);
    }
    if compared.regressions.is_empty() {
        let mut case = TestCase::new(
            clean_line(&format!("no regression against {baseline}")),
            TestCaseStatus::success(),
        );
        case.set_classname(class);
        case.set_system_out(clean_line(&format!("limits: {}", compared.limits)));
        suite.add_test_case(case);
    }
    suite
}

fn check_case(
    view: &RunView,
    step: Option<&StepView>,
    h: &HypothesisView,
    check: &CheckView,
    class: &str,
) -> TestCase {
    let phase = phase_word(check.phase);
    let name = clean_line(&format!("{} [{phase}]", h.name));
    let message = check.verdict.as_ref().map(|v| clean_line(&v.message));
    let headline = |m: &str| clean_line(&format!("{} {phase}: {m}", h.name));
    let status = match check.outcome() {
        CheckOutcome::Held => TestCaseStatus::success(),
        CheckOutcome::Deviated | CheckOutcome::Inconclusive | CheckOutcome::Error => {
            let (kind, ty) = match check.outcome() {
                CheckOutcome::Deviated => (NonSuccessKind::Failure, "SteadyStateDeviated"),
                CheckOutcome::Inconclusive => (NonSuccessKind::Failure, "Inconclusive"),
                _ => (NonSuccessKind::Error, "ProbeError"),
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_type(ty)
                .set_message(headline(message.as_deref().unwrap_or("no message")))
                .set_description(check_body(view, h, check));
            s
        }
        CheckOutcome::NotRun => {
            let reason = match (&check.verdict, step) {
                (Some(v), _) => format!("{}: {}", verdict_word(v.verdict), v.message),
                (None, step) => view.not_run_reason(step),
            };
            let mut s = TestCaseStatus::skipped();
            s.set_message(clean_line(&reason));
            s
        }
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(class);
    Location::of_hypothesis(view, step, &h.name).set_on(&mut case);
    if let (Some(a), Some(b)) = (check.first_at(), check.last_at()) {
        case.set_time(Duration::from_millis(span_ms(a, b).unwrap_or(0)));
    }
    if check.outcome() == CheckOutcome::Held
        && let Some(m) = message
    {
        case.set_system_out(m);
    }
    case
}

fn not_injected_reason(view: &RunView, step: &StepView) -> String {
    match &step.state {
        StepState::Finished(_) => format!(
            "not injected: the step {} before the fault",
            step.status_word()
        ),
        StepState::Running => {
            "not injected: the journal ends before any injection (partial report)".into()
        }
        _ => format!("not injected: {}", view.not_run_reason(Some(step))),
    }
}

/// Expectation, PromQL and samples: what a reader needs to re-check the verdict.
fn check_body(view: &RunView, h: &HypothesisView, check: &CheckView) -> String {
    let mut body = String::new();
    if let Some(v) = &check.verdict {
        let _ = writeln!(
            body,
            "verdict: {} ({} of {} samples held)",
            verdict_word(v.verdict),
            v.passed,
            v.samples
        );
        let _ = writeln!(body, "observed: {}", clean_line(&v.message));
        let resolves = h.expectation.trim_start().starts_with("resolved within");
        if let Some(ms) = v.recovery_ms {
            let what = if resolves {
                "time to resolve"
            } else {
                "time to recover"
            };
            let _ = writeln!(body, "{what}: {}", text::duration(ms));
        }
        if let Some(ms) = v.detect_ms {
            let _ = writeln!(body, "time to detect: {}", text::duration(ms));
        }
    }
    let _ = writeln!(body, "expectation: {}", clean_line(&h.expectation));
    match words::probe_text(&h.probe) {
        ProbeText::Promql(query) => {
            let _ = writeln!(body, "query:");
            for line in clean(&query).lines() {
                let _ = writeln!(body, "    {line}");
            }
        }
        ProbeText::Words(probe) => {
            let _ = writeln!(body, "probe: {probe}");
        }
    }
    let (shown, more) = text::cap(&check.samples, MAX_SAMPLES);
    let _ = writeln!(body, "samples ({}):", check.samples.len());
    for s in shown {
        let values = words::values(&s.values);
        let outcome = words::sample_word(s.outcome);
        let _ = write!(
            body,
            "    {} {:>7}  {outcome:<6}  {}",
            text::time(s.eval_time),
            text::offset(view.started_at, s.eval_time),
            clean_line(&values)
        );
        if let Some(d) = &s.detail {
            let _ = write!(body, "  ({})", clean_line(d));
        }
        body.push('\n');
    }
    if more > 0 {
        let _ = writeln!(
            body,
            "    … {more} more samples (truncated; see the journal)"
        );
    }
    body
}

fn inject_case(view: &RunView, step: &StepView, kind: &str, class: &str) -> TestCase {
    let injected: Vec<_> = step
        .faults
        .iter()
        .filter(|f| f.kind == FaultActionKind::Injected)
        .collect();
    let failed: Vec<_> = step
        .faults
        .iter()
        .filter(|f| f.kind == FaultActionKind::InjectFailed)
        .collect();
    let status = if let Some(first) = failed.first() {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_type("FaultInjectFailed")
            .set_message(clean_line(&format!(
                "{} of {} injection(s) failed; first: {}: {}",
                failed.len(),
                failed.len() + injected.len(),
                first.target,
                first.text
            )))
            .set_description(fault_lines(view, step, &[FaultActionKind::InjectFailed]));
        s
    } else if injected.is_empty() {
        match &step.state {
            StepState::Finished(crate::events::StepStatus::Completed) => {
                // A chaos test that injected nothing did not pass.
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_type("NothingInjected").set_message(format!(
                    "{kind}: the step completed but no target was faulted"
                ));
                s
            }
            _ => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(clean_line(&not_injected_reason(view, step)));
                s
            }
        }
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(clean_line(&format!("fault {kind} [inject]")), status);
    case.set_classname(class);
    Location::of_fault(view, step).set_on(&mut case);
    let times: Vec<_> = injected.iter().chain(&failed).map(|f| f.at).collect();
    if let (Some(a), Some(b)) = (times.iter().min(), times.iter().max()) {
        case.set_time(Duration::from_millis(span_ms(*a, *b).unwrap_or(0)));
    }
    if !injected.is_empty() {
        case.set_system_out(fault_lines(view, step, &[FaultActionKind::Injected]));
    }
    case
}

fn revert_case(view: &RunView, step: &StepView, kind: &str, class: &str) -> TestCase {
    let failed: Vec<_> = step
        .faults
        .iter()
        .filter(|f| f.kind == FaultActionKind::RevertFailed)
        .collect();
    let open = step.unreverted_targets();
    let injected = step.count(FaultActionKind::Injected);
    let recover = if view.is_dry_run() {
        "a dry run faulted nothing, so nothing is left faulted"
    } else {
        "the cluster may still be faulted: run `shakedown recover`"
    };
    let status = if let Some(first) = failed.first() {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_type("RevertFailed")
            .set_message(clean_line(&format!(
                "revert failed for {} target(s); first: {}: {}; {recover}",
                failed.len(),
                first.target,
                first.text
            )))
            .set_description(fault_lines(view, step, &[FaultActionKind::RevertFailed]));
        s
    } else if !open.is_empty() {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_type("NotReverted").set_message(clean_line(&format!(
            "{} target(s) injected and never reverted: {}; {recover}",
            open.len(),
            open.join(", ")
        )));
        s
    } else if injected == 0 {
        let mut s = TestCaseStatus::skipped();
        s.set_message("nothing to revert: nothing was injected");
        s
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(clean_line(&format!("fault {kind} [revert]")), status);
    case.set_classname(class);
    Location::of_fault(view, step).set_on(&mut case);
    let times: Vec<_> = step
        .faults
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FaultActionKind::Reverted | FaultActionKind::RevertFailed
            )
        })
        .map(|f| f.at)
        .collect();
    if let (Some(a), Some(b)) = (times.iter().min(), times.iter().max()) {
        case.set_time(Duration::from_millis(span_ms(*a, *b).unwrap_or(0)));
    }
    let mut out = fault_lines(view, step, &[FaultActionKind::Reverted]);
    if injected > 0 && kind == "pod-delete" {
        out.push_str("nothing to undo: the owners recreate deleted pods\n");
    }
    for r in &step.recoveries {
        let _ = writeln!(
            out,
            "{} recovered after {}",
            clean_line(&r.workload),
            text::duration(r.after_ms)
        );
    }
    if !out.is_empty() {
        case.set_system_out(out);
    }
    case
}

/// One owner's recovery-time objective (`recovery deployment/shop/checkout within 60s`):
/// a failure when it took longer or was never seen whole, with the measured time as the
/// case's `time` and both numbers in the message and `system-out`.
fn recovery_case(view: &RunView, step: &StepView, gate: &RecoveryGate, class: &str) -> TestCase {
    let said = clean_line(&gate.said());
    let numbers = format!(
        "measured_ms: {}\nwithin_ms: {}\n",
        gate.measured_ms
            .map_or_else(|| "none (never recovered)".to_owned(), |ms| ms.to_string()),
        gate.within_ms
    );
    let status = match gate.passed {
        Some(true) => TestCaseStatus::success(),
        Some(false) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("RecoveryObjectiveMissed")
                .set_message(said.clone())
                .set_description(numbers.clone());
            s
        }
        None => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(said.clone());
            s
        }
    };
    let mut case = TestCase::new(clean_line(&gate.name()), status);
    case.set_classname(class);
    Location::of_fault(view, step).set_on(&mut case);
    if let Some(ms) = gate.measured_ms.or(gate.waited_ms) {
        case.set_time(Duration::from_millis(ms));
    }
    case.set_system_out(format!("{said}\n{numbers}"));
    case
}

fn fault_lines(view: &RunView, step: &StepView, kinds: &[FaultActionKind]) -> String {
    let mut out = String::new();
    for f in step.faults.iter().filter(|f| kinds.contains(&f.kind)) {
        let _ = writeln!(
            out,
            "{} {:>7}  {}: {}",
            text::time(f.at),
            text::offset(view.started_at, f.at),
            clean_line(&f.target),
            clean_line(&f.text)
        );
    }
    out
}

/// The run header and the timeline (of one step, or of the whole run).
fn system_out(view: &RunView, step: Option<&str>) -> String {
    let mut out = String::new();
    let version = view.started.as_ref().map_or("?", |s| s.version.as_str());
    let seed = view
        .started
        .as_ref()
        .map_or("?".to_owned(), |s| s.seed.to_string());
    let _ = writeln!(
        out,
        "shakedown {} · run {} · experiment {} · seed {seed}",
        clean_line(version),
        clean_line(view.run_id()),
        clean_line(view.experiment())
    );
    let _ = writeln!(
        out,
        "verdict: {} (exit {}): {}",
        view.verdict_label(),
        view.exit_code(),
        view.verdict_sentence()
    );
    if view.partial {
        let _ = writeln!(
            out,
            "PARTIAL REPORT: the journal ends before the run finished (cut short by a crash, or still running)."
        );
    }
    let entries: Vec<_> = view
        .timeline
        .iter()
        .filter(|e| step.is_none() || e.step.as_deref() == step)
        .collect();
    let start = view.started_at.map_or("?".into(), text::time);
    let _ = writeln!(out, "timeline (offsets from {start}):");
    let (shown, more) = text::cap(&entries, MAX_TIMELINE);
    for e in shown {
        let _ = writeln!(
            out,
            "  {:>7}  {}",
            text::offset(view.started_at, e.at),
            e.text
        );
    }
    if more > 0 {
        let _ = writeln!(out, "  … {more} more entries (truncated; see the journal)");
    }
    out
}

/// quick-junit writes every `timestamp` with an offset, UTC as `+00:00`; the journal,
/// the live log and the other reports say `Z`, and so does this one. Only `timestamp`
/// attribute values are touched (a `"` inside any value is escaped, so one cannot start).
fn utc_as_z(xml: &str) -> String {
    const ATTRIBUTE: &str = " timestamp=\"";
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(at) = rest.find(ATTRIBUTE) {
        let start = at + ATTRIBUTE.len();
        let Some(len) = rest[start..].find('"') else {
            break;
        };
        let value = &rest[start..start + len];
        out.push_str(&rest[..start]);
        match value.strip_suffix("+00:00") {
            Some(utc) => {
                out.push_str(utc);
                out.push('Z');
            }
            None => out.push_str(value),
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

fn chrono_time(at: jiff::Timestamp) -> chrono::DateTime<chrono::FixedOffset> {
    let utc = chrono::DateTime::<chrono::Utc>::from_timestamp(
        at.as_second(),
        at.subsec_nanosecond().max(0) as u32,
    )
    .unwrap_or_default();
    utc.fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{
        HypothesisVerdict, PlannedHypothesis, PlannedStep, ProbeSample, RunEvent, RunStarted,
        SampleOutcome, SeriesValue, Verdict,
    };
    use crate::spec::Phase;

    /// Everything XML 1.0 cannot carry, or a terminal would interpret.
    const NASTY: &str = "a\u{1b}[31mred\u{1b}[0m ]]> <x/> & \" ' \u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}\u{7f}\u{85}\u{fffe}\u{ffff} \u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7} \r end";

    fn record(seq: u64, event: RunEvent) -> Record {
        Record {
            seq,
            at: jiff::Timestamp::from_second(1_800_000_000 + seq as i64).expect("time"),
            event,
        }
    }

    fn nasty_run() -> Vec<Record> {
        let step = || NASTY.to_owned();
        vec![
            record(
                1,
                RunEvent::RunStarted(RunStarted {
                    run_id: step(),
                    experiment: step(),
                    source: step(),
                    seed: 1,
                    context: Some(step()),
                    api_server: Some(step()),
                    prometheus_url: Some(step()),
                    dry_run: step(),
                    version: step(),
                    steps: vec![PlannedStep {
                        id: step(),
                        name: step(),
                        scenario: Some(step()),
                        fault: Some(step()),
                        hypotheses: vec![PlannedHypothesis {
                            name: step(),
                            probe: step(),
                            expectation: step(),
                            phases: vec![Phase::During],
                            weight: 1.0,
                            tolerance: 100.0,
                            abort: false,
                            every_ms: 1000,
                            line: Some(7),
                        }],
                        file: Some(step()),
                        fault_line: Some(3),
                    }],
                    hypotheses: Vec::new(),
                    labels: Default::default(),
                }),
            ),
            record(2, RunEvent::StepStarted { step: step() }),
            record(
                3,
                RunEvent::FaultInjectFailed {
                    step: step(),
                    target: step(),
                    error: step(),
                },
            ),
            record(
                4,
                RunEvent::ProbeSample(ProbeSample {
                    step: Some(step()),
                    hypothesis: step(),
                    phase: Phase::During,
                    eval_time: jiff::Timestamp::from_second(1_800_000_004).expect("time"),
                    query: step(),
                    values: vec![SeriesValue {
                        labels: [(step(), step())].into_iter().collect(),
                        value: Some(0.5),
                    }],
                    outcome: SampleOutcome::Fail,
                    detail: Some(step()),
                }),
            ),
            record(
                5,
                RunEvent::HypothesisVerdict(HypothesisVerdict {
                    step: Some(step()),
                    hypothesis: step(),
                    phase: Phase::During,
                    verdict: Verdict::Deviated,
                    expectation: step(),
                    message: step(),
                    samples: 1,
                    passed: 0,
                    recovery_ms: None,
                    detect_ms: None,
                }),
            ),
            record(
                6,
                RunEvent::RevertFailed {
                    step: step(),
                    target: step(),
                    error: step(),
                },
            ),
        ]
    }

    /// Regression (rough edge): JUnit timestamps said `+00:00` where every other report
    /// says `Z`; only `timestamp` values change.
    #[test]
    fn junit_timestamps_are_utc_with_z() {
        let xml = r#"<testsuite timestamp="2027-01-15T08:00:01.000+00:00" message="at 08:00+00:00"><testcase timestamp="2027-01-15T08:00:02.500+00:00"/>"#;
        assert_eq!(
            utc_as_z(xml),
            r#"<testsuite timestamp="2027-01-15T08:00:01.000Z" message="at 08:00+00:00"><testcase timestamp="2027-01-15T08:00:02.500Z"/>"#
        );
    }

    #[test]
    fn several_runs_make_one_file_with_every_suite() {
        let nasty = nasty_run();
        let one = render(&nasty, true);
        let both = render_many(&[(&nasty, true), (&nasty, true)]);
        let one = Report::deserialize_from_str(&one).expect("well-formed");
        let both = Report::deserialize_from_str(&both).expect("well-formed");
        assert_eq!(both.test_suites.len(), 2 * one.test_suites.len());
        assert_eq!(both.tests, 2 * one.tests);
        assert_eq!(both.errors, 2 * one.errors);
        // The same experiment twice: still no two cases with one identity.
        let mut ids = std::collections::BTreeSet::new();
        for suite in &both.test_suites {
            for case in &suite.test_cases {
                let class = case.classname.as_ref().map(|c| c.as_str().to_owned());
                assert!(
                    ids.insert((class.clone(), case.name.as_str().to_owned())),
                    "{class:?} {} twice",
                    case.name.as_str()
                );
            }
        }
    }

    #[test]
    fn ansi_cdata_terminators_and_control_characters_still_give_well_formed_xml() {
        let xml = render(&nasty_run(), true);
        let parsed = Report::deserialize_from_str(&xml)
            .unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}"));
        for forbidden in [
            '\u{1b}', '\u{0}', '\u{1}', '\u{7}', '\u{b}', '\u{7f}', '\u{fffe}',
        ] {
            assert!(!xml.contains(forbidden), "{forbidden:?} in the XML");
        }
        assert!(
            xml.contains("]]&gt;"),
            "`]]>` is escaped text, not a CDATA end"
        );
        let suite = &parsed.test_suites[0];
        let failure = suite
            .test_cases
            .iter()
            .find_map(|c| match &c.status {
                TestCaseStatus::NonSuccess {
                    kind: NonSuccessKind::Failure,
                    message,
                    ..
                } => message.as_ref().map(|m| m.as_str().to_owned()),
                _ => None,
            })
            .expect("the deviation is a failure");
        // Controls are written out, never passed to the XML or a terminal showing it.
        assert!(
            failure.contains("\\x1b[31mred\\x1b[0m ]]> <x/> & \" '"),
            "{failure}"
        );
        assert!(failure.ends_with("\\x07 \\r end"), "{failure}");
        assert_eq!(
            parsed.errors, 3,
            "inject failed, revert failed, partial journal"
        );
    }

    #[test]
    fn the_root_skipped_count_is_dropped_and_nothing_else() {
        let xml = "<?xml?>\n<testsuites name=\"a skipped=&quot;1\" tests=\"2\" skipped=\"1\" failures=\"0\">\n<testsuite name=\"x\" skipped=\"1\">";
        assert_eq!(
            drop_root_skipped(xml),
            "<?xml?>\n<testsuites name=\"a skipped=&quot;1\" tests=\"2\" failures=\"0\">\n<testsuite name=\"x\" skipped=\"1\">"
        );
    }
}
