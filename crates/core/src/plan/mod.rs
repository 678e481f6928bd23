//! The plan: the program a run executes, built once from a validated spec.
//!
//! `plan()` turns a [`Loaded`] file into a tree of [`PlannedStep`]s with one id scheme
//! (`1`, `3#2` for a repeat, `4.1` inside a parallel group or an included experiment),
//! the default namespace resolved into every pod target, the effective safety of every
//! fault (`Safety::narrow`: an enclosing document only narrows), and the timeline.
//! Preflight, the executor, `RunStarted`, `shakedown plan` and the reports all read this
//! tree; nothing downstream walks the spec again.
//!
//! No I/O here. Target picks are seeded: the same seed and inventory give the same picks,
//! and every plan carries its seed so a run can be replayed with `--seed`.

mod blast_radius;
mod display;
mod prometheus;
mod select;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

pub use blast_radius::{DrainScope, evicted_by_drain};
pub use display::{PlanEntry, describe_fault, describe_target};
pub use prometheus::unconfigured_prometheus;
pub use select::{
    Inventory, NodeInfo, PodInfo, TargetError, candidates, derive_seed, select_targets,
};

use crate::spec::{
    Document, Exclusions, Fault, Hypothesis, Loaded, Mode, OnEmptyTargets, PrometheusSpec,
    Recovery, ResolvedAction, ResolvedStep, Safety, Scenario, Silence, Target,
};

/// `--dry-run`: how far a run may go. Settled once, before anything is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DryRun {
    /// Inject for real.
    None,
    /// Plan and preflight only: no mutating call at all.
    Client,
    /// Every mutating call carries `dryRun=All`: RBAC and admission run, nothing changes.
    Server,
}

/// A seed nobody chose: printed with the plan so the run can be reproduced.
pub fn fresh_seed() -> u64 {
    rand::random::<u64>() >> 11 // keep it exactly representable in JSON numbers
}

/// The choices a plan is built in the light of, settled once by the caller.
#[derive(Debug, Clone, Default)]
pub struct PlanSettings {
    pub seed: u64,
    /// For pod targets that name no namespace: `-n`, else the kubeconfig's. `None` when
    /// planning offline, where it is unknown.
    pub default_namespace: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub kind: &'static str,
    pub source: String,
    pub seed: u64,
    pub default_namespace: Option<String>,
    /// The top-level document's `metadata.labels`, for the reports.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The top-level document's own safety (what `--yes` and allowed contexts read).
    pub safety: Option<Safety>,
    /// The one Prometheus a run talks to: the experiment's, else the first of its
    /// scenarios' that names one.
    pub prometheus: Option<PrometheusSpec>,
    /// The Alertmanager alert probes read from, found like `prometheus`; `None`: they
    /// read Prometheus's own alerts.
    pub alertmanager: Option<PrometheusSpec>,
    /// Experiment-wide hypotheses, checked around all the steps.
    pub hypotheses: Vec<Hypothesis>,
    pub steps: Vec<PlannedStep>,
    /// Upper bound on wall time: every recovery window used to the full.
    pub longest: Duration,
    /// The experiment's silence, for the whole run: created after the baseline, `endsAt`
    /// = `longest` + its margin. (A scenario's silence is its step's: `FaultStep`.)
    pub silence: Option<Silence>,
}

#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// `2.1` is the first step of the parallel group that is step 2; `#3` marks a repeat.
    pub id: String,
    pub name: String,
    /// How long to wait before this step starts (the spec's `after`; a repeated step's
    /// sequence of rounds carries it, the rounds follow one another at once).
    pub delay: Duration,
    /// When it starts, counted from the start of the run.
    pub start: Duration,
    /// Latest end: the recovery window used to the full.
    pub end: Duration,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Action {
    Fault(Box<FaultStep>),
    Pause(Duration),
    /// Runs its steps at the same time.
    Parallel(Vec<PlannedStep>),
    /// An included experiment: its steps one after another.
    Sequence(Vec<PlannedStep>),
}

/// One scenario run: a fault, what it may hit, and the hypotheses judged around it.
#[derive(Debug, Clone)]
pub struct FaultStep {
    /// The scenario's name, for JUnit `<testsuite>` and `classname`.
    pub scenario: String,
    /// The scenario file it came from, as loaded (CI annotations point into it).
    pub file: String,
    pub fault: Fault,
    /// The line of the fault in `file`.
    pub fault_line: Option<u32>,
    pub selection: TargetSelection,
    /// After inheritance: the stricter of every enclosing document's limits.
    pub safety: Option<Safety>,
    pub hypotheses: Vec<Hypothesis>,
    pub recovery: Recovery,
    /// What a fault that reached no target amounts to (`onEmptyTargets`).
    pub on_empty_targets: OnEmptyTargets,
    /// When the fault is reverted, counted from the start of the run.
    pub fault_end: Duration,
    /// The targets it would hit now; only present when planned against an inventory.
    pub picks: Option<Result<Vec<String>, TargetError>>,
    /// For a drain: the pods it would evict from those picks (`namespace/name`).
    pub collateral: Vec<String>,
    /// The scenario's silence, for the step: `endsAt` = `window` + its margin.
    pub silence: Option<Silence>,
    /// The step's longest length: the fault and its recovery window used to the full.
    pub window: Duration,
}

/// What a fault may hit and how many of them.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSelection {
    pub objects: Objects,
    pub pick: Pick,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Objects {
    Pods {
        /// Resolved: the target's own, else the default namespace. Empty only when
        /// planned offline for a target that names none.
        namespaces: Vec<String>,
        /// The namespace came from `-n` or the kubeconfig, so validation never saw it.
        defaulted: bool,
        selector: Option<String>,
        field_selector: Option<String>,
        exclude: Option<Exclusions>,
    },
    Nodes {
        names: Vec<String>,
        selector: Option<String>,
        exclude: Option<Exclusions>,
        /// Namespaces whose pods a drain may evict beyond the allow-list.
        accept_collateral: Vec<String>,
    },
}

/// How many of the matching objects a fault hits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pick {
    One,
    Count(u32),
    /// Rounded up, at least one.
    Percent(f64),
    All,
}

impl FaultStep {
    /// Where this step's evictions may reach; `None` for a step that drains nothing.
    pub fn drain_scope(&self) -> Option<DrainScope> {
        match &self.selection.objects {
            Objects::Nodes {
                accept_collateral, ..
            } => Some(DrainScope::new(accept_collateral, self.safety.as_ref())),
            Objects::Pods { .. } => None,
        }
    }
}

impl TargetSelection {
    /// Resolves the spec's target: the default namespace goes in here and nowhere else.
    pub fn resolve(target: &Target, default_namespace: Option<&str>) -> Self {
        let pick = |mode: Mode, count: Option<u32>, percent: Option<f64>| match mode {
            Mode::One => Pick::One,
            Mode::Count => Pick::Count(count.unwrap_or(1)),
            Mode::Percent => Pick::Percent(percent.unwrap_or(0.0)),
            Mode::All => Pick::All,
        };
        match target {
            Target::Pods(p) => {
                let defaulted = p.namespaces.is_empty();
                let namespaces = if defaulted {
                    default_namespace.map(str::to_owned).into_iter().collect()
                } else {
                    p.namespaces.clone()
                };
                TargetSelection {
                    objects: Objects::Pods {
                        namespaces,
                        defaulted,
                        selector: p.selector.clone(),
                        field_selector: p.field_selector.clone(),
                        exclude: p.exclude.clone(),
                    },
                    pick: pick(p.mode, p.count, p.percent.map(|x| x.0)),
                }
            }
            Target::Nodes(n) => TargetSelection {
                objects: Objects::Nodes {
                    names: n.names.clone(),
                    selector: n.selector.clone(),
                    exclude: n.exclude.clone(),
                    accept_collateral: n.accept_collateral.clone(),
                },
                pick: pick(n.mode, n.count, n.percent.map(|x| x.0)),
            },
        }
    }

    /// The pod namespaces it reads; empty for nodes.
    pub fn pod_namespaces(&self) -> &[String] {
        match &self.objects {
            Objects::Pods { namespaces, .. } => namespaces,
            Objects::Nodes { .. } => &[],
        }
    }

    pub fn is_nodes(&self) -> bool {
        matches!(self.objects, Objects::Nodes { .. })
    }
}

impl Plan {
    /// Every fault step with its id, in plan order (depth first).
    pub fn fault_steps(&self) -> Vec<(&PlannedStep, &FaultStep)> {
        fn walk<'a>(steps: &'a [PlannedStep], out: &mut Vec<(&'a PlannedStep, &'a FaultStep)>) {
            for step in steps {
                match &step.action {
                    Action::Fault(fault) => out.push((step, fault)),
                    Action::Parallel(children) | Action::Sequence(children) => walk(children, out),
                    Action::Pause(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }

    /// What target selection must read from the cluster: pod namespaces, and whether
    /// nodes.
    pub fn inventory_needs(&self) -> (Vec<String>, bool) {
        let (mut namespaces, mut nodes) = (Vec::new(), false);
        for (_, fault) in self.fault_steps() {
            namespaces.extend(fault.selection.pod_namespaces().iter().cloned());
            nodes |= fault.selection.is_nodes();
        }
        namespaces.sort();
        namespaces.dedup();
        (namespaces, nodes)
    }

    /// Picks every fault's targets from `inventory`, as the run would right now.
    pub fn pick_targets(&mut self, inventory: &Inventory) {
        fn walk(steps: &mut [PlannedStep], seed: u64, inventory: &Inventory) {
            for step in steps {
                match &mut step.action {
                    Action::Fault(fault) => {
                        let picks = select_targets(
                            &fault.selection,
                            fault.safety.as_ref(),
                            inventory,
                            derive_seed(seed, &step.id),
                        );
                        if let (Ok(nodes), true) = (&picks, fault.selection.is_nodes()) {
                            fault.collateral = evicted_by_drain(nodes, inventory)
                                .map(|p| format!("{}/{}", p.namespace, p.name))
                                .collect();
                        }
                        fault.picks = Some(picks);
                    }
                    Action::Parallel(children) | Action::Sequence(children) => {
                        walk(children, seed, inventory)
                    }
                    Action::Pause(_) => {}
                }
            }
        }
        walk(&mut self.steps, self.seed, inventory);
    }

    /// Whether any fault has no acceptable targets (only known after `pick_targets`).
    pub fn unresolved(&self) -> Vec<(&PlannedStep, &TargetError)> {
        self.fault_steps()
            .into_iter()
            .filter_map(|(step, fault)| match &fault.picks {
                Some(Err(e)) => Some((step, e)),
                _ => None,
            })
            .collect()
    }
}

/// Builds the plan of `loaded`. Pure: picks come later, from `Plan::pick_targets`.
pub fn plan(loaded: &Loaded, settings: &PlanSettings) -> Plan {
    let mut builder = Builder {
        default_namespace: settings.default_namespace.as_deref(),
        first_prometheus: None,
        first_alertmanager: None,
    };
    let silence = match &loaded.document {
        Document::Experiment(e) => e.spec.silence.clone(),
        Document::Scenario(_) => None,
    };
    let (kind, safety, (prometheus, alertmanager), hypotheses, steps) = match &loaded.document {
        Document::Scenario(scenario) => {
            let step = builder.scenario_step(
                "1",
                &scenario.metadata.name,
                (&loaded.path, scenario),
                Duration::ZERO,
                None,
            );
            let spec = &scenario.spec;
            (
                "Scenario",
                spec.safety.clone(),
                (spec.prometheus.clone(), spec.alertmanager.clone()),
                Vec::new(),
                vec![step],
            )
        }
        Document::Experiment(experiment) => {
            let spec = &experiment.spec;
            let steps = builder.sequence("", &loaded.steps, Duration::ZERO, spec.safety.as_ref());
            (
                "Experiment",
                spec.safety.clone(),
                (spec.prometheus.clone(), spec.alertmanager.clone()),
                spec.hypotheses.clone(),
                steps,
            )
        }
    };
    let longest = steps.iter().map(|s| s.end).max().unwrap_or_default();
    let labels = match &loaded.document {
        Document::Scenario(s) => s.metadata.labels.clone(),
        Document::Experiment(e) => e.metadata.labels.clone(),
    };
    Plan {
        name: loaded.name().to_owned(),
        labels,
        kind,
        source: loaded.path.display().to_string(),
        seed: settings.seed,
        default_namespace: settings.default_namespace.clone(),
        safety,
        prometheus: prometheus.or(builder.first_prometheus),
        alertmanager: alertmanager.or(builder.first_alertmanager),
        hypotheses,
        steps,
        longest,
        silence,
    }
}

struct Builder<'a> {
    default_namespace: Option<&'a str>,
    first_prometheus: Option<PrometheusSpec>,
    first_alertmanager: Option<PrometheusSpec>,
}

impl Builder<'_> {
    /// Lays out steps one after another from `start`.
    fn sequence(
        &mut self,
        prefix: &str,
        steps: &[ResolvedStep],
        start: Duration,
        safety: Option<&Safety>,
    ) -> Vec<PlannedStep> {
        let mut cursor = start;
        let mut out = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let planned = self.step(&format!("{prefix}{}", i + 1), step, cursor, safety);
            cursor = planned.end;
            out.push(planned);
        }
        out
    }

    /// One spec step. A repeated step becomes a sequence of its rounds (`3#1`, `3#2`),
    /// so the rounds run one after another even inside a parallel group.
    fn step(
        &mut self,
        id: &str,
        step: &ResolvedStep,
        start: Duration,
        safety: Option<&Safety>,
    ) -> PlannedStep {
        let first = start + step.after;
        if step.repeat <= 1 {
            let mut planned = self.round(id.to_owned(), step, first, safety);
            planned.delay = step.after;
            return planned;
        }
        let mut cursor = first;
        let mut rounds = Vec::new();
        for round in 1..=step.repeat {
            let planned = self.round(format!("{id}#{round}"), step, cursor, safety);
            cursor = planned.end;
            rounds.push(planned);
        }
        PlannedStep {
            id: id.to_owned(),
            name: step.name.clone(),
            delay: step.after,
            start: first,
            end: cursor,
            action: Action::Sequence(rounds),
        }
    }

    /// One round of a step, starting at `start`.
    fn round(
        &mut self,
        id: String,
        step: &ResolvedStep,
        start: Duration,
        safety: Option<&Safety>,
    ) -> PlannedStep {
        let (end, action) = match &step.action {
            ResolvedAction::Scenario { scenario, path } => {
                return self.scenario_step(&id, &step.name, (path, scenario), start, safety);
            }
            ResolvedAction::Experiment {
                steps, safety: own, ..
            } => {
                let narrowed = Safety::narrow(safety, own.as_ref());
                let children = self.sequence(&format!("{id}."), steps, start, narrowed.as_ref());
                let end = children.last().map_or(start, |c| c.end);
                (end, Action::Sequence(children))
            }
            ResolvedAction::Pause(length) => (start + *length, Action::Pause(*length)),
            ResolvedAction::Parallel(children) => {
                let children: Vec<PlannedStep> = children
                    .iter()
                    .enumerate()
                    .map(|(i, child)| self.step(&format!("{id}.{}", i + 1), child, start, safety))
                    .collect();
                let end = children.iter().map(|c| c.end).max().unwrap_or(start);
                (end, Action::Parallel(children))
            }
        };
        PlannedStep {
            id,
            name: step.name.clone(),
            delay: Duration::ZERO,
            start,
            end,
            action,
        }
    }

    fn scenario_step(
        &mut self,
        id: &str,
        name: &str,
        (file, scenario): (&Path, &Scenario),
        start: Duration,
        inherited: Option<&Safety>,
    ) -> PlannedStep {
        let spec = &scenario.spec;
        if self.first_prometheus.is_none() {
            self.first_prometheus = spec.prometheus.clone();
        }
        if self.first_alertmanager.is_none() {
            self.first_alertmanager = spec.alertmanager.clone();
        }
        let fault_end = start + spec.fault.active_for();
        let end = fault_end + spec.recovery.settle.0 + spec.recovery.within.0;
        PlannedStep {
            id: id.to_owned(),
            name: name.to_owned(),
            delay: Duration::ZERO,
            start,
            end,
            action: Action::Fault(Box::new(FaultStep {
                scenario: scenario.metadata.name.clone(),
                file: file.display().to_string(),
                fault: spec.fault.clone(),
                fault_line: spec.fault_line,
                selection: TargetSelection::resolve(&spec.target, self.default_namespace),
                safety: Safety::narrow(inherited, spec.safety.as_ref()),
                hypotheses: spec.hypotheses.clone(),
                recovery: spec.recovery.clone(),
                on_empty_targets: spec.on_empty_targets,
                fault_end,
                picks: None,
                collateral: Vec::new(),
                silence: spec.silence.clone(),
                window: end - start,
            })),
        }
    }
}

#[cfg(test)]
mod tests;
