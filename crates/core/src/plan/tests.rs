//! The plan's unit tests: ids, timeline, effective safety, default namespace, picks.

use std::path::{Path, PathBuf};

use super::*;
use crate::spec::{Exclusions, Percent, PodTarget};

fn inventory(pods: usize) -> Inventory {
    let pod = |i: usize, phase: &str| PodInfo {
        namespace: "shop".into(),
        name: format!("checkout-{i}"),
        labels: [("app".to_string(), "checkout".to_string())].into(),
        phase: phase.into(),
        node_name: format!("node-{}", i % 3),
        ..PodInfo::default()
    };
    let mut all: Vec<PodInfo> = (0..pods).map(|i| pod(i, "Running")).collect();
    all.push(pod(99, "Pending"));
    Inventory {
        pods: all,
        nodes: Vec::new(),
    }
}

fn pods(mode: Mode, count: Option<u32>, percent: Option<f64>) -> TargetSelection {
    let target = Target::Pods(PodTarget {
        namespaces: vec!["shop".into()],
        selector: Some("app=checkout".into()),
        field_selector: None,
        exclude: None,
        mode,
        count,
        percent: percent.map(Percent),
    });
    TargetSelection::resolve(&target, None)
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn settings(seed: u64, default_namespace: Option<&str>) -> PlanSettings {
    PlanSettings {
        seed,
        default_namespace: default_namespace.map(str::to_owned),
    }
}

#[test]
fn one_id_scheme_for_sequences_repeats_and_parallel_groups() {
    // The test's working directory is crates/core; the example references ../scenarios.
    let options = crate::spec::LoadOptions {
        allow_paths: vec![repo("")],
    };
    let loaded = crate::spec::load_with(&repo("experiments/gameday.yaml"), &options).unwrap();
    let plan = plan(&loaded, &settings(1, None));
    let faults: Vec<&str> = plan
        .fault_steps()
        .into_iter()
        .map(|(step, _)| step.id.as_str())
        .collect();
    assert_eq!(faults, ["1", "3#1", "3#2", "4.1", "4.2"]);
    let rows: Vec<String> = plan.entries().into_iter().map(|e| e.id).collect();
    assert_eq!(rows, ["1", "2", "3#1", "3#2", "4.1", "4.2"]);
    // The repeated step is one sequence of its rounds, which carries the step's id.
    assert!(matches!(&plan.steps[2].action, Action::Sequence(r) if r.len() == 2));
    assert_eq!(plan.steps[2].id, "3");
    // `after: 1m` belongs to the group; `after: 30s` to its second member only.
    assert_eq!(plan.steps[3].delay, Duration::from_secs(60));
    let Action::Parallel(group) = &plan.steps[3].action else {
        panic!("step 4 is a parallel group");
    };
    assert_eq!(group[0].delay, Duration::ZERO);
    assert_eq!(group[1].delay, Duration::from_secs(30));
    assert_eq!(
        group[1].start,
        plan.steps[3].start + Duration::from_secs(30)
    );
}

#[test]
fn a_repeated_step_inside_a_parallel_group_runs_its_rounds_in_order() {
    let dir = scratch("repeat-in-parallel");
    std::fs::write(
        dir.join("s.yaml"),
        std::fs::read_to_string(repo("scenarios/pod-delete.yaml")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("e.yaml"),
        "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {name: e}\nspec:\n  safety: {allowedNamespaces: [shop]}\n  steps:\n    - parallel:\n        - scenario: s.yaml\n          repeat: 2\n        - pause: 1s\n",
    )
    .unwrap();
    let loaded = crate::spec::load(&dir.join("e.yaml")).unwrap();
    let plan = plan(&loaded, &settings(1, None));
    let Action::Parallel(group) = &plan.steps[0].action else {
        panic!("a parallel group");
    };
    let Action::Sequence(rounds) = &group[0].action else {
        panic!("the repeated member is a sequence of rounds");
    };
    let ids: Vec<&str> = rounds.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["1.1#1", "1.1#2"]);
    assert_eq!(
        rounds[1].start, rounds[0].end,
        "round 2 starts when round 1 ends"
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shakedown-plan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_default_namespace_is_resolved_into_the_plan_once() {
    let target = Target::Pods(PodTarget {
        namespaces: vec![],
        selector: Some("app=checkout".into()),
        field_selector: None,
        exclude: None,
        mode: Mode::One,
        count: None,
        percent: None,
    });
    let resolved = TargetSelection::resolve(&target, Some("shop"));
    assert_eq!(resolved.pod_namespaces(), ["shop"]);
    let offline = TargetSelection::resolve(&target, None);
    assert!(offline.pod_namespaces().is_empty());
    // A defaulted namespace was never validated: it must be on the allow-list.
    let safety = Safety {
        allowed_namespaces: vec!["payments".into()],
        max_target_percent: Percent(100.0),
        allowed_contexts: vec![],
        max_nodes: None,
        allow_empty_zone: false,
    };
    let err = select_targets(&resolved, Some(&safety), &inventory(3), 1).unwrap_err();
    assert_eq!(err, TargetError::DefaultNamespaceNotAllowed("shop".into()));
    let kube_system = TargetSelection::resolve(&target, Some("kube-system"));
    let everything = Safety {
        allowed_namespaces: vec!["kube-system".into()],
        ..safety
    };
    assert!(select_targets(&kube_system, Some(&everything), &inventory(3), 1).is_err());
}

#[test]
fn effective_safety_only_narrows() {
    let limits = |namespaces: &[&str], cap: f64| Safety {
        allowed_namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        max_target_percent: Percent(cap),
        allowed_contexts: vec![],
        max_nodes: None,
        allow_empty_zone: false,
    };
    let outer = limits(&["shop", "payments"], 100.0);
    let inner = limits(&["shop"], 34.0);
    let both = Safety::narrow(Some(&outer), Some(&inner)).unwrap();
    assert_eq!(both.allowed_namespaces, ["shop"]);
    assert_eq!(both.max_target_percent.0, 34.0);
    // Either order: the stricter value wins, never the outer one by position.
    let reversed = Safety::narrow(Some(&inner), Some(&outer)).unwrap();
    assert_eq!(reversed.max_target_percent.0, 34.0);
    assert_eq!(reversed.allowed_namespaces, ["shop"]);
    // An empty allow-list states none, so the other one stands.
    let open = limits(&[], 50.0);
    let narrowed = Safety::narrow(Some(&open), Some(&inner)).unwrap();
    assert_eq!(narrowed.allowed_namespaces, ["shop"]);
    assert_eq!(Safety::narrow(None, Some(&inner)), Some(inner.clone()));
    assert_eq!(Safety::narrow(None, None), None);
}

#[test]
fn an_outer_experiment_without_safety_keeps_an_inner_cap() {
    // The reliability issue's case: the outer experiment has no safety block, the
    // included one caps at 34%. The run must use 34%, as validation does.
    let dir = scratch("nested-cap");
    std::fs::write(
        dir.join("s.yaml"),
        "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("inner.yaml"),
        "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {name: inner}\nspec:\n  safety: {allowedNamespaces: [shop], maxTargetPercent: 34%}\n  steps:\n    - scenario: s.yaml\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("outer.yaml"),
        "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {name: outer}\nspec:\n  steps:\n    - experiment: inner.yaml\n",
    )
    .unwrap();
    let loaded = crate::spec::load(&dir.join("outer.yaml")).unwrap_or_else(|d| panic!("{d}"));
    let plan = plan(&loaded, &settings(1, None));
    let (_, fault) = plan.fault_steps()[0];
    let safety = fault.safety.as_ref().expect("the inner safety applies");
    assert_eq!(safety.max_target_percent.0, 34.0);
    let mut all = fault.selection.clone();
    all.pick = Pick::All;
    let err = select_targets(&all, fault.safety.as_ref(), &inventory(3), 1).unwrap_err();
    assert!(
        matches!(err, TargetError::AboveCap { cap, .. } if cap == 34.0),
        "{err}"
    );
}

#[test]
fn same_seed_same_picks_and_seeds_differ() {
    let inv = inventory(10);
    let target = pods(Mode::Count, Some(3), None);
    let a = select_targets(&target, None, &inv, 7).unwrap();
    assert_eq!(a, select_targets(&target, None, &inv, 7).unwrap());
    assert_eq!(a.len(), 3);
    let distinct: std::collections::BTreeSet<_> = (0..20)
        .map(|s| select_targets(&target, None, &inv, s).unwrap())
        .collect();
    assert!(distinct.len() > 1, "seeds must change the picks");
}

#[test]
fn only_running_pods_are_candidates() {
    let picked = select_targets(&pods(Mode::All, None, None), None, &inventory(3), 1).unwrap();
    assert_eq!(
        picked,
        ["shop/checkout-0", "shop/checkout-1", "shop/checkout-2"]
    );
}

#[test]
fn too_few_or_no_targets_is_an_error() {
    let err =
        select_targets(&pods(Mode::Count, Some(5), None), None, &inventory(3), 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("asked for 5 pods but only 3 match"),
        "{err}"
    );
    let err = select_targets(&pods(Mode::One, None, None), None, &inventory(0), 1).unwrap_err();
    assert!(err.to_string().starts_with("no pods match"), "{err}");
}

#[test]
fn percent_rounds_up_and_the_cap_holds() {
    let picked = select_targets(
        &pods(Mode::Percent, None, Some(30.0)),
        None,
        &inventory(10),
        1,
    )
    .unwrap();
    assert_eq!(picked.len(), 3);
    let safety = Safety {
        allowed_namespaces: vec!["shop".into()],
        max_target_percent: Percent(50.0),
        allowed_contexts: vec![],
        max_nodes: None,
        allow_empty_zone: false,
    };
    let err = select_targets(
        &pods(Mode::Count, Some(2), None),
        Some(&safety),
        &inventory(3),
        1,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("above safety.maxTargetPercent 50%"),
        "{err}"
    );
}

#[test]
fn exclusions_are_never_picked() {
    let mut target = pods(Mode::All, None, None);
    if let Objects::Pods { exclude, .. } = &mut target.objects {
        *exclude = Some(Exclusions {
            names: vec!["checkout-1".into()],
            selector: None,
        });
    }
    let picked = select_targets(&target, None, &inventory(3), 1).unwrap();
    assert_eq!(picked, ["shop/checkout-0", "shop/checkout-2"]);
}

/// Three nodes in two zones; checkout pods on every node, a node-exporter DaemonSet
/// pod on every node, and a `default` pod on node-b-1.
fn cluster() -> Inventory {
    let node = |name: &str, zone: &str| NodeInfo {
        name: name.into(),
        labels: [("topology.kubernetes.io/zone".to_string(), zone.to_string())].into(),
        unschedulable: false,
        ready: true,
    };
    let pod = |ns: &str, name: &str, node: &str, kind: &str| PodInfo {
        namespace: ns.into(),
        name: name.into(),
        phase: "Running".into(),
        node_name: node.into(),
        controller_kind: Some(kind.into()),
        ..PodInfo::default()
    };
    let mut pods = Vec::new();
    for n in ["node-a-1", "node-a-2", "node-b-1"] {
        pods.push(pod("shop", &format!("checkout-{n}"), n, "ReplicaSet"));
        pods.push(pod("monitoring", &format!("exporter-{n}"), n, "DaemonSet"));
    }
    pods.push(pod("default", "debug", "node-b-1", "ReplicaSet"));
    Inventory {
        pods,
        nodes: vec![
            node("node-a-1", "zone-a"),
            node("node-a-2", "zone-a"),
            node("node-b-1", "zone-b"),
        ],
    }
}

fn nodes(names: &[&str], accept: &[&str]) -> TargetSelection {
    TargetSelection {
        objects: Objects::Nodes {
            names: names.iter().map(|n| n.to_string()).collect(),
            selector: None,
            exclude: None,
            accept_collateral: accept.iter().map(|n| n.to_string()).collect(),
        },
        pick: Pick::All,
    }
}

fn shop_only() -> Safety {
    Safety {
        allowed_namespaces: vec!["shop".into()],
        max_target_percent: Percent(100.0),
        allowed_contexts: vec![],
        max_nodes: None,
        allow_empty_zone: false,
    }
}

#[test]
fn a_drain_never_takes_every_schedulable_node_by_default() {
    let all = TargetSelection {
        objects: Objects::Nodes {
            names: vec![],
            selector: Some(String::new()),
            exclude: None,
            accept_collateral: vec![],
        },
        pick: Pick::All,
    };
    let err = select_targets(&all, Some(&shop_only()), &cluster(), 1).unwrap_err();
    assert!(
        matches!(
            err,
            TargetError::AboveNodeCap {
                asked: 3,
                cap: 2,
                ..
            }
        ),
        "{err}"
    );
    let capped = Safety {
        max_nodes: Some(1),
        ..shop_only()
    };
    let two = nodes(&["node-a-1", "node-a-2"], &[]);
    let err = select_targets(&two, Some(&capped), &cluster(), 1).unwrap_err();
    assert!(err.to_string().contains("safety.maxNodes"), "{err}");
}

#[test]
fn a_zone_keeps_a_ready_node_unless_the_drill_allows_an_outage() {
    let zone_a = nodes(&["node-a-1", "node-a-2"], &[]);
    let err = select_targets(&zone_a, Some(&shop_only()), &cluster(), 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "draining node-a-1, node-a-2 would leave zone `zone-a` without a Ready node; a zone-outage drill sets safety.allowEmptyZone: true"
    );
    let drill = Safety {
        allow_empty_zone: true,
        ..shop_only()
    };
    assert!(select_targets(&zone_a, Some(&drill), &cluster(), 1).is_ok());
    // One node of two in zone-a leaves the other.
    let one = nodes(&["node-a-1"], &[]);
    assert!(select_targets(&one, Some(&shop_only()), &cluster(), 1).is_ok());
}

#[test]
fn pods_a_drain_would_evict_are_its_blast_radius() {
    // node-b-1 also runs default/debug; its DaemonSet pod is never evicted.
    let b = nodes(&["node-b-1"], &[]);
    let drill = Safety {
        allow_empty_zone: true,
        ..shop_only()
    };
    let err = select_targets(&b, Some(&drill), &cluster(), 1).unwrap_err();
    assert_eq!(
        err,
        TargetError::Collateral {
            nodes: "node-b-1".into(),
            pods: "default/debug".into()
        }
    );
    let accepted = nodes(&["node-b-1"], &["default"]);
    assert!(select_targets(&accepted, Some(&drill), &cluster(), 1).is_ok());
    let mut inventory = cluster();
    inventory.pods.push(PodInfo {
        namespace: "kube-system".into(),
        name: "coredns-1".into(),
        phase: "Running".into(),
        node_name: "node-a-1".into(),
        controller_kind: Some("ReplicaSet".into()),
        ..PodInfo::default()
    });
    let a = nodes(&["node-a-1"], &["kube-system"]);
    let err = select_targets(&a, Some(&drill), &inventory, 1).unwrap_err();
    assert!(matches!(err, TargetError::EvictsKubeSystem { .. }), "{err}");
}

/// The review's finding: the executor's eviction-time namespace check was a second copy
/// of the plan's collateral rule. Both now ask `DrainScope`, so a pod the plan would
/// refuse on the node is refused at eviction time, and one it accepts is evicted.
#[test]
fn the_eviction_time_check_is_the_plan_s_collateral_rule() {
    let drill = Safety {
        allow_empty_zone: true,
        ..shop_only()
    };
    for (accept, namespace) in [
        (&[][..], "shop"),
        (&[][..], "default"),
        (&["default"][..], "default"),
        (&["payments"][..], "default"),
    ] {
        let mut inventory = cluster();
        inventory.pods.retain(|p| p.node_name != "node-b-1");
        inventory.pods.push(PodInfo {
            namespace: namespace.into(),
            name: "late".into(),
            phase: "Running".into(),
            node_name: "node-b-1".into(),
            controller_kind: Some("ReplicaSet".into()),
            ..PodInfo::default()
        });
        let selection = nodes(&["node-b-1"], accept);
        let planned = select_targets(&selection, Some(&drill), &inventory, 1).is_ok();
        let accept: Vec<String> = accept.iter().map(|n| n.to_string()).collect();
        let scope = DrainScope::new(&accept, Some(&drill));
        assert_eq!(
            scope.may_evict_from(namespace),
            planned,
            "{namespace} with acceptCollateral {accept:?}"
        );
    }
    // kube-system never, whatever a scope names.
    let scope = DrainScope::new(&["kube-system".into()], Some(&drill));
    assert!(!scope.may_evict_from("kube-system"));
}

#[test]
fn a_drain_step_has_a_scope_and_a_pod_step_none() {
    let loaded = crate::spec::load(&repo("scenarios/node-drain.yaml")).unwrap();
    let drained = plan(&loaded, &settings(3, Some("shop")));
    let (_, drain) = drained.fault_steps()[0];
    let scope = drain.drain_scope().expect("a drain has a scope");
    assert!(scope.may_evict_from("shop"));
    assert!(!scope.may_evict_from("default"));
    let loaded = crate::spec::load(&repo("scenarios/pod-delete.yaml")).unwrap();
    let deleted = plan(&loaded, &settings(3, Some("shop")));
    let (_, pods) = deleted.fault_steps()[0];
    assert_eq!(pods.drain_scope(), None);
}

#[test]
fn the_plan_lists_the_pods_a_drain_would_evict() {
    let loaded = crate::spec::load(&repo("scenarios/node-drain.yaml")).unwrap();
    let mut plan = plan(&loaded, &settings(3, Some("shop")));
    plan.pick_targets(&cluster());
    let (_, fault) = plan.fault_steps()[0];
    let picked = fault.picks.clone().unwrap().unwrap();
    assert_eq!(picked.len(), 1);
    assert_eq!(fault.collateral, [format!("shop/checkout-{}", picked[0])]);
    let text = plan.to_string();
    assert!(
        text.contains(&format!("evicts: shop/checkout-{}", picked[0])),
        "{text}"
    );
}
