//! Every manifest of the deploy kit (deploy/base and its overlays) parses and names
//! what it is; the kit's one pod spec is hardened as issue 18 asks; the gameday
//! CronJob never overlaps. tests/deploy_kit.rs builds and applies the kit itself.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Every manifest under `dir` (recursively), kustomizations aside.
fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("deploy/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(manifests(&path));
        } else if path.extension().is_some_and(|e| e == "yaml")
            && path.file_name().is_some_and(|n| n != "kustomization.yaml")
        {
            out.push(path);
        }
    }
    out
}

fn read(path: &str) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect(path)).expect("parses")
}

#[test]
fn every_manifest_in_deploy_parses_and_is_a_kubernetes_object() {
    let mut seen = Vec::new();
    for path in manifests(Path::new("deploy")) {
        let text = std::fs::read_to_string(&path).expect("read");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!docs.is_empty(), "{} is empty", path.display());
        for doc in docs {
            for key in ["apiVersion", "kind"] {
                assert!(
                    doc[key].is_string(),
                    "{}: a document lacks {key}",
                    path.display()
                );
            }
            assert!(
                doc["metadata"]["name"].is_string(),
                "{}: a document lacks metadata.name",
                path.display()
            );
            seen.push(doc["kind"].as_str().unwrap_or_default().to_owned());
        }
    }
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "RoleBinding",
        "Job",
        "CronJob",
        "PersistentVolumeClaim",
    ] {
        assert!(seen.iter().any(|k| k == kind), "deploy/ has no {kind}");
    }
}

/// Issue 18: the pod passes `restricted`, cannot hang forever or retry blindly, is
/// cleaned up, and has time to revert when it is stopped.
#[test]
fn the_kits_pod_spec_is_hardened_and_outlasts_its_revert_deadline() {
    let job = read("deploy/base/job.yaml");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert!(job["spec"]["activeDeadlineSeconds"].as_i64() > Some(0));
    assert!(job["spec"]["ttlSecondsAfterFinished"].as_i64() > Some(0));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let context = &container["securityContext"];
    assert_eq!(context["readOnlyRootFilesystem"], true);
    assert_eq!(context["allowPrivilegeEscalation"], false);
    assert_eq!(context["capabilities"]["drop"], serde_json::json!(["ALL"]));
    for key in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][key][resource].is_string(),
                "{key}.{resource}"
            );
        }
    }
    let revert: u64 = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix("--revert-timeout="))
        .and_then(|d| d.strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .expect("the Job sets --revert-timeout in seconds");
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(
        grace > revert,
        "SIGTERM's grace ({grace}s) must outlast the revert deadline ({revert}s)"
    );
}

#[test]
fn the_gameday_cronjob_never_overlaps() {
    let cron = read("deploy/overlays/gameday/schedule/cronjob.yaml");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
}

/// The kill switch's RBAC: the runner may read and watch the marker exactly where runs
/// look for it (`cluster::halt`), may not write it (a run never halts others), and the
/// halter role may create it and delete it.
#[test]
fn deploy_rbac_lets_the_runner_watch_the_halt_marker_and_only_halters_pull_it() {
    use shakedown::cluster::halt::{DEFAULT_NAMESPACE, MARKER_NAME};
    let text = std::fs::read_to_string("deploy/base/rbac.yaml").expect("rbac");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("parses");
    let named = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("deploy/base/rbac.yaml has no {kind} {name}"))
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    // Verbs a role grants on the marker ConfigMap.
    let marker_verbs = |role: &Value| -> Vec<String> {
        role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                strings(&r["apiGroups"]).contains(&String::new())
                    && strings(&r["resources"]).contains(&"configmaps".to_owned())
                    && (r["resourceNames"].is_null()
                        || strings(&r["resourceNames"]).contains(&MARKER_NAME.to_owned()))
            })
            .flat_map(|r| strings(&r["verbs"]))
            .collect()
    };
    let watch = named("Role", "shakedown-halt-watch");
    assert_eq!(watch["metadata"]["namespace"], DEFAULT_NAMESPACE);
    let verbs = marker_verbs(watch);
    // A watch by name, and a get; nothing lists the marker (tests/deploy_rbac.rs).
    for verb in ["get", "watch"] {
        assert!(
            verbs.contains(&verb.to_owned()),
            "runner lacks {verb}: {verbs:?}"
        );
    }
    let binding = named("RoleBinding", "shakedown-halt-watch");
    assert_eq!(binding["metadata"]["namespace"], DEFAULT_NAMESPACE);
    assert_eq!(binding["roleRef"]["name"], "shakedown-halt-watch");
    let account = named("ServiceAccount", "shakedown");
    assert!(
        binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["kind"] == "ServiceAccount"
                && s["name"] == "shakedown"
                && s["namespace"] == account["metadata"]["namespace"]),
        "{binding}"
    );
    for runner in [
        named("ClusterRole", "shakedown"),
        named("ClusterRole", "shakedown-target"),
        watch,
    ] {
        let verbs = marker_verbs(runner);
        assert!(
            !verbs.iter().any(|v| v == "create" || v == "delete"),
            "{}: a runner must not write the marker: {verbs:?}",
            runner["metadata"]["name"]
        );
    }
    let halter = named("Role", "shakedown-halter");
    assert_eq!(halter["metadata"]["namespace"], DEFAULT_NAMESPACE);
    let verbs = marker_verbs(halter);
    for verb in ["create", "get", "delete"] {
        assert!(
            verbs.contains(&verb.to_owned()),
            "halter lacks {verb}: {verbs:?}"
        );
    }
    assert_eq!(
        named("RoleBinding", "shakedown-halter")["roleRef"]["name"],
        "shakedown-halter"
    );
}
