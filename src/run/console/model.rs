//! What the console knows about the run, folded from the event stream alone: the plan
//! (from `RunStarted`), the step under way, its fault, targets and time left, each
//! hypothesis's latest value against its threshold with a unit, and the score so far.
//! Pure (times come in as arguments), so the heartbeat and the live screen are
//! unit-tested without a terminal or a clock.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;

use crate::events::{PlannedHypothesis, Record, RunEvent, SampleOutcome, Verdict};
use crate::report::text::number;
use crate::report::words::{self, ProbeText};

/// How many recent samples a hypothesis keeps for its sparkline.
const RECENT: usize = 24;

/// The unit a hypothesis's value is shown in, guessed from its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds: shown as `490 ms` or `1.20 s`.
    Seconds,
    /// A share between 0 and 1: shown as `%`.
    Ratio,
    /// A plain number (ready replicas, a count).
    Plain,
}

impl Unit {
    /// HTTP probes measure latency; PromQL on a `_seconds` metric is seconds (unless it
    /// counts observations); a PromQL division whose name says errors or ratio is a share.
    pub fn of(probe: &str) -> Self {
        match words::probe_text(probe) {
            ProbeText::Words(w) if w.contains("http://") || w.contains("https://") => Unit::Seconds,
            ProbeText::Words(_) => Unit::Plain,
            ProbeText::Promql(q) => {
                let q = q.to_ascii_lowercase();
                if q.contains("_seconds") && !q.contains("_count") && !q.contains("_total") {
                    Unit::Seconds
                } else if q.contains(" / ") || q.contains(")/") || q.contains("ratio") {
                    Unit::Ratio
                } else {
                    Unit::Plain
                }
            }
        }
    }

    pub fn show(self, value: f64) -> String {
        if !value.is_finite() {
            return number(value);
        }
        match self {
            Unit::Seconds if value.abs() < 1.0 => format!("{:.0} ms", value * 1000.0),
            Unit::Seconds => format!("{value:.2} s"),
            Unit::Ratio => format!("{:.2}%", value * 100.0),
            Unit::Plain => number(value),
        }
    }

    /// An expectation (`< 0.25`, `between 0.1 and 0.5`) with every number in this unit.
    pub fn threshold(self, expectation: &str) -> String {
        expectation
            .split(' ')
            .map(|word| match word.parse::<f64>() {
                Ok(v) => self.show(v),
                Err(_) => word.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One hypothesis as the console shows it.
#[derive(Debug, Clone)]
pub struct HypothesisState {
    pub step: Option<String>,
    pub name: String,
    pub expectation: String,
    pub unit: Unit,
    pub last: Option<f64>,
    pub outcome: Option<SampleOutcome>,
    /// The latest verdict of any phase, unless a sample came after it: the row's colour
    /// is whichever is newer.
    pub verdict: Option<Verdict>,
    pub recent: VecDeque<f64>,
    /// An alert hypothesis's measured time, once judged: `detected in 3.0s` (`firing
    /// within`) or `resolved in 4.2s` (`resolved within`).
    pub timing: Option<String>,
}

impl HypothesisState {
    fn new(step: Option<String>, planned: &PlannedHypothesis) -> Self {
        Self {
            step,
            name: planned.name.clone(),
            expectation: planned.expectation.clone(),
            unit: Unit::of(&planned.probe),
            last: None,
            outcome: None,
            verdict: None,
            recent: VecDeque::new(),
            timing: None,
        }
    }

    /// `0.49 s (limit < 250 ms)`, or `no value yet`.
    pub fn reading(&self) -> String {
        let value = match (self.last, self.outcome) {
            (Some(v), _) => self.unit.show(v),
            (None, Some(o)) => words::sample_word(o).to_owned(),
            (None, None) => "no value yet".to_owned(),
        };
        let reading = format!("{value} (limit {})", self.unit.threshold(&self.expectation));
        match &self.timing {
            Some(timing) => format!("{reading} · {timing}"),
            None => reading,
        }
    }

    /// What the row is coloured by: a verdict once there is one, else the last sample.
    pub fn state(&self) -> Shade {
        match (self.verdict, self.outcome) {
            (Some(Verdict::Passed), _) | (None, Some(SampleOutcome::Pass)) => Shade::Held,
            (Some(Verdict::Deviated | Verdict::Aborted), _) | (None, Some(SampleOutcome::Fail)) => {
                Shade::Deviated
            }
            (Some(_), _) | (None, Some(_)) => Shade::Inconclusive,
            (None, None) => Shade::Waiting,
        }
    }

    /// The last `room` samples as a sparkline, scaled between their own min and max.
    pub fn sparkline(&self, room: usize) -> String {
        const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        let (lo, hi) = self
            .recent
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        self.recent
            .iter()
            .skip(self.recent.len().saturating_sub(room))
            .map(|v| {
                let at = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                BARS[((at * 7.0).round() as usize).min(7)]
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shade {
    Held,
    Deviated,
    Inconclusive,
    Waiting,
}

impl Shade {
    pub fn word(self) -> &'static str {
        match self {
            Shade::Held => "held",
            Shade::Deviated => "deviated",
            Shade::Inconclusive => "inconclusive",
            Shade::Waiting => "waiting",
        }
    }
}

#[derive(Debug, Clone)]
struct PlannedStep {
    id: String,
    name: String,
    hypotheses: Vec<PlannedHypothesis>,
}

/// The step under way.
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub id: String,
    pub index: usize,
    pub name: String,
    /// `network-latency`, once its intent is recorded.
    pub fault: Option<String>,
    pub targets: Vec<String>,
    /// How long the fault holds (from its parameters), when it says.
    pub hold: Option<Duration>,
    /// When the first injection went through.
    pub injected_at: Option<Timestamp>,
    /// The fault was reverted: the step is now measuring recovery.
    pub reverted: bool,
}

/// The run as the console sees it.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub experiment: String,
    steps: Vec<PlannedStep>,
    pub current: Option<Current>,
    pub hypotheses: Vec<HypothesisState>,
    /// Verdicts that held, of those judged (skipped ones are not judged).
    pub held: u32,
    pub judged: u32,
    pub finished: bool,
}

impl Model {
    pub fn apply(&mut self, record: &Record) {
        match &record.event {
            RunEvent::RunStarted(s) => {
                self.experiment.clone_from(&s.experiment);
                self.steps = s
                    .steps
                    .iter()
                    .map(|p| PlannedStep {
                        id: p.id.clone(),
                        name: p.name.clone(),
                        hypotheses: p.hypotheses.clone(),
                    })
                    .collect();
                self.hypotheses = s
                    .hypotheses
                    .iter()
                    .map(|h| HypothesisState::new(None, h))
                    .collect();
            }
            RunEvent::StepStarted { step } => self.start(step),
            RunEvent::TargetsSelected { step, targets } => {
                if let Some(c) = self.current_mut(step) {
                    c.targets.clone_from(targets);
                }
            }
            RunEvent::FaultIntent(intent) => {
                if let Some(c) = self.current_mut(&intent.step) {
                    c.fault = Some(intent.fault.clone());
                    c.hold = intent
                        .params
                        .get("duration")
                        .and_then(|d| d.as_str())
                        .and_then(|d| shakedown_vocab::duration::parse_duration(d).ok());
                }
            }
            RunEvent::FaultInjected { step, .. } => {
                let at = record.at;
                if let Some(c) = self.current_mut(step) {
                    c.injected_at.get_or_insert(at);
                }
            }
            RunEvent::FaultReverted { step, .. } | RunEvent::RevertFailed { step, .. } => {
                if let Some(c) = self.current_mut(step) {
                    c.reverted = true;
                }
            }
            RunEvent::ProbeSample(s) => {
                if let Some(h) = self.hypothesis_mut(s.step.as_deref(), &s.hypothesis) {
                    h.outcome = Some(s.outcome);
                    h.verdict = None;
                    h.last = s.values.iter().find_map(|v| v.value);
                    if let Some(v) = h.last {
                        h.recent.push_back(v);
                        if h.recent.len() > RECENT {
                            h.recent.pop_front();
                        }
                    }
                }
            }
            RunEvent::HypothesisVerdict(v) => {
                if v.verdict != Verdict::Skipped {
                    self.judged += 1;
                    self.held += u32::from(v.verdict == Verdict::Passed);
                }
                if let Some(h) = self.hypothesis_mut(v.step.as_deref(), &v.hypothesis) {
                    h.verdict = Some(v.verdict);
                    let resolves = h.expectation.trim_start().starts_with("resolved within");
                    let shown = |ms: u64| crate::report::text::duration(ms);
                    if let Some(ms) = v.detect_ms {
                        h.timing = Some(format!("detected in {}", shown(ms)));
                    } else if let Some(ms) = v.recovery_ms.filter(|_| resolves) {
                        h.timing = Some(format!("resolved in {}", shown(ms)));
                    }
                }
            }
            RunEvent::StepFinished { step, .. } | RunEvent::StepSkipped { step, .. } => {
                if self.current.as_ref().is_some_and(|c| &c.id == step) {
                    self.current = None;
                }
            }
            RunEvent::RunFinished(_) => {
                self.finished = true;
                self.current = None;
            }
            RunEvent::Recovered { .. } | RunEvent::NotRecovered { .. } => {}
            RunEvent::FaultInjectFailed { .. } | RunEvent::Note { .. } => {}
            // The baseline gate and the trend are the report's; the live view has no row for them.
            RunEvent::BaselineCompared(_) | RunEvent::EarlierRuns { .. } => {}
            // A silence has no row: its lines (words.rs) are in the log.
            RunEvent::SilenceIntent(_)
            | RunEvent::SilenceCreated { .. }
            | RunEvent::SilenceExpired { .. }
            | RunEvent::SilenceNotExpired { .. } => {}
            // A missed notification is a line in the log above the live area, no row.
            RunEvent::DeliveryFailed { .. } => {}
        }
    }

    fn start(&mut self, step: &str) {
        let index = self.steps.iter().position(|s| s.id == step).unwrap_or(0);
        let planned = self.steps.get(index).cloned();
        // A step's hypotheses replace the previous step's; the run's own stay.
        self.hypotheses.retain(|h| h.step.is_none());
        if let Some(planned) = &planned {
            let own = planned
                .hypotheses
                .iter()
                .map(|h| HypothesisState::new(Some(step.to_owned()), h));
            self.hypotheses.splice(0..0, own);
        }
        self.current = Some(Current {
            id: step.to_owned(),
            index,
            name: planned.map(|p| p.name).unwrap_or_default(),
            ..Current::default()
        });
    }

    fn current_mut(&mut self, step: &str) -> Option<&mut Current> {
        self.current.as_mut().filter(|c| c.id == step)
    }

    fn hypothesis_mut(&mut self, step: Option<&str>, name: &str) -> Option<&mut HypothesisState> {
        self.hypotheses
            .iter_mut()
            .find(|h| h.step.as_deref() == step && h.name == name)
    }

    /// `step 2/3`, by plan position.
    pub fn step_of(&self, current: &Current) -> String {
        format!("step {}/{}", current.index + 1, self.steps.len().max(1))
    }

    /// How long the fault still holds at `now`: `None` before the injection, after the
    /// revert, or for a fault that holds until its owners recover.
    pub fn left(&self, now: Timestamp) -> Option<(Duration, Duration)> {
        let c = self.current.as_ref()?;
        let (hold, at) = (c.hold?, c.injected_at?);
        if c.reverted {
            return None;
        }
        let elapsed = Duration::try_from(now.duration_since(at)).unwrap_or_default();
        Some((hold.saturating_sub(elapsed), hold))
    }

    /// What the step is doing: `network-latency on 3 pods, 18 s left`.
    pub fn doing(&self, now: Timestamp) -> Option<String> {
        let c = self.current.as_ref()?;
        let what = match &c.fault {
            Some(fault) => format!("{fault} on {}", targets(&c.targets)),
            None if c.targets.is_empty() => "selecting targets".to_owned(),
            None => format!("{} selected, checking the baseline", targets(&c.targets)),
        };
        let when = if c.fault.is_none() {
            "nothing injected yet".to_owned()
        } else if c.reverted {
            "reverted, measuring recovery".to_owned()
        } else if c.injected_at.is_none() {
            "injecting".to_owned()
        } else {
            match self.left(now) {
                Some((left, _)) => format!("{} s left", left.as_secs()),
                None => "holding until its owners recover".to_owned(),
            }
        };
        Some(format!("{what}, {when}"))
    }

    /// The heartbeat line of plain output: the step, what it does, and every judged
    /// hypothesis's latest value against its limit.
    pub fn heartbeat(&self, now: Timestamp) -> Option<String> {
        let c = self.current.as_ref()?;
        let mut line = format!("{}: {}", self.step_of(c), self.doing(now)?);
        let readings: Vec<String> = self
            .hypotheses
            .iter()
            .filter(|h| h.outcome.is_some())
            .map(|h| format!("{} {}", h.name, h.reading()))
            .collect();
        if !readings.is_empty() {
            line.push_str("; ");
            line.push_str(&readings.join("; "));
        }
        Some(line)
    }

    /// `score 3/4 held`.
    pub fn score(&self) -> String {
        format!("score {}/{} held", self.held, self.judged)
    }
}

/// `3 pods`, `1 node`, `2 targets`.
fn targets(targets: &[String]) -> String {
    let n = targets.len();
    let pods = targets.iter().all(|t| t.contains('/'));
    let kind = match (pods, n) {
        (true, 1) => "pod",
        (true, _) => "pods",
        (false, 1) => "node",
        (false, _) => "nodes",
    };
    format!("{n} {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{FaultIntent, PlannedStep as Step, ProbeSample, RunStarted, SeriesValue};
    use crate::spec::Phase;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn hypothesis(name: &str, probe: &str, expectation: &str) -> PlannedHypothesis {
        PlannedHypothesis {
            name: name.into(),
            probe: probe.into(),
            expectation: expectation.into(),
            phases: vec![Phase::During],
            weight: 1.0,
            tolerance: 100.0,
            abort: false,
            every_ms: 1000,
            line: None,
        }
    }

    fn step(id: &str, name: &str, hypotheses: Vec<PlannedHypothesis>) -> Step {
        Step {
            id: id.into(),
            name: name.into(),
            scenario: None,
            fault: None,
            hypotheses,
            file: None,
            fault_line: None,
        }
    }

    #[test]
    fn units_follow_the_probe() {
        let p95 = "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))";
        assert_eq!(Unit::of(p95), Unit::Seconds);
        assert_eq!(Unit::of("GET http://x/health (status 200)"), Unit::Seconds);
        assert_eq!(
            Unit::of("sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))"),
            Unit::Ratio
        );
        assert_eq!(
            Unit::of("deployment shop/checkout ready replicas"),
            Unit::Plain
        );
        assert_eq!(Unit::Seconds.show(0.49), "490 ms");
        assert_eq!(Unit::Seconds.show(1.5), "1.50 s");
        assert_eq!(Unit::Ratio.show(0.0123), "1.23%");
        assert_eq!(
            Unit::Seconds.threshold("between 0.1 and 2"),
            "between 100 ms and 2.00 s"
        );
    }

    #[test]
    fn the_heartbeat_names_the_step_the_fault_the_time_left_and_each_value_against_its_limit() {
        let p95 = "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[1m]))";
        let records = [
            RunEvent::RunStarted(RunStarted {
                run_id: "r".into(),
                experiment: "e".into(),
                source: "e.yaml".into(),
                seed: 1,
                context: None,
                api_server: None,
                prometheus_url: None,
                dry_run: "none".into(),
                version: "0".into(),
                steps: vec![
                    step("1", "warm up", vec![]),
                    step(
                        "2",
                        "slow net",
                        vec![hypothesis("checkout p95", p95, "< 0.25")],
                    ),
                    step("3", "drain", vec![]),
                ],
                hypotheses: vec![],
                labels: Default::default(),
            }),
            RunEvent::StepStarted { step: "2".into() },
            RunEvent::TargetsSelected {
                step: "2".into(),
                targets: vec!["shop/a".into(), "shop/b".into(), "shop/c".into()],
            },
            RunEvent::FaultIntent(FaultIntent {
                step: "2".into(),
                fault: "network-latency".into(),
                targets: vec![],
                params: serde_json::json!({"type": "network-latency", "duration": "30s"}),
                revert: String::new(),
            }),
            RunEvent::FaultInjected {
                step: "2".into(),
                target: "shop/a".into(),
                detail: String::new(),
                dry_run: false,
            },
            RunEvent::ProbeSample(ProbeSample {
                step: Some("2".into()),
                hypothesis: "checkout p95".into(),
                phase: Phase::During,
                eval_time: at(5),
                query: p95.into(),
                values: vec![SeriesValue {
                    labels: Default::default(),
                    value: Some(0.49),
                }],
                outcome: SampleOutcome::Fail,
                detail: None,
            }),
        ];
        let mut model = Model::default();
        for (i, event) in records.into_iter().enumerate() {
            model.apply(&Record {
                seq: i as u64,
                at: at(0),
                event,
            });
        }
        assert_eq!(
            model.heartbeat(at(12)).as_deref(),
            Some(
                "step 2/3: network-latency on 3 pods, 18 s left; checkout p95 490 ms (limit < 250 ms)"
            )
        );
        let h = &model.hypotheses[0];
        assert_eq!(h.state(), Shade::Deviated);
        assert_eq!(h.sparkline(8).chars().count(), 1);
        assert_eq!(model.left(at(40)).map(|l| l.0), Some(Duration::ZERO));
    }

    /// Issue 16 item 3: the live view shows an alert's time to detect and to resolve.
    #[test]
    fn an_alert_row_shows_its_time_to_detect_then_to_resolve() {
        let alert = r#"alert CheckoutHighLatency{service="checkout"}"#;
        let verdict = |name: &str, phase, recovery_ms, detect_ms| {
            RunEvent::HypothesisVerdict(crate::events::HypothesisVerdict {
                step: Some("1".into()),
                hypothesis: String::from(name),
                phase,
                verdict: Verdict::Passed,
                expectation: String::new(),
                message: String::new(),
                samples: 3,
                passed: 2,
                recovery_ms,
                detect_ms,
            })
        };
        let records = [
            RunEvent::RunStarted(RunStarted {
                run_id: "r".into(),
                experiment: "e".into(),
                source: "e.yaml".into(),
                seed: 1,
                context: None,
                api_server: None,
                prometheus_url: None,
                dry_run: "none".into(),
                version: "0".into(),
                steps: vec![step(
                    "1",
                    "slow net",
                    vec![
                        hypothesis("fires", alert, "firing within 7s"),
                        hypothesis("resolves", alert, "resolved within 20s"),
                    ],
                )],
                hypotheses: vec![],
                labels: Default::default(),
            }),
            RunEvent::StepStarted { step: "1".into() },
            verdict("fires", Phase::During, None, Some(3000)),
            verdict("resolves", Phase::After, Some(4200), None),
        ];
        let mut model = Model::default();
        for (i, event) in records.into_iter().enumerate() {
            model.apply(&Record {
                seq: i as u64,
                at: at(0),
                event,
            });
        }
        let readings: Vec<String> = model.hypotheses.iter().map(|h| h.reading()).collect();
        assert!(readings[0].ends_with(" · detected in 3.0s"), "{readings:?}");
        assert!(readings[1].ends_with(" · resolved in 4.2s"), "{readings:?}");
    }
}
