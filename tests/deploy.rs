//! Every manifest in deploy/ parses and names what it is; the Job and CronJob run the
//! experiment their ConfigMap ships, and that experiment validates.

use serde_json::Value;

#[test]
fn every_manifest_in_deploy_parses_and_is_a_kubernetes_object() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir("deploy").expect("deploy/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
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
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "RoleBinding",
        "Job",
        "CronJob",
        "ConfigMap",
    ] {
        assert!(seen.iter().any(|k| k == kind), "deploy/ has no {kind}");
    }
}

#[test]
fn the_cronjob_never_overlaps_and_the_configmap_experiment_validates() {
    let cron: Value =
        serde_saphyr::from_str(&std::fs::read_to_string("deploy/cronjob.yaml").expect("cronjob"))
            .expect("parses");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let configmap: Value = serde_saphyr::from_str(
        &std::fs::read_to_string("deploy/experiments-configmap.yaml").expect("configmap"),
    )
    .expect("parses");
    let dir = std::env::temp_dir().join(format!("shakedown-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    for (name, text) in configmap["data"].as_object().expect("data") {
        std::fs::write(dir.join(name), text.as_str().expect("text")).expect("write");
    }
    let loaded = shakedown::spec::load(&dir.join("gameday.yaml")).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(loaded.name(), "monthly-gameday");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The kill switch's RBAC: the runner may read and watch the marker exactly where runs
/// look for it (`cluster::halt`), may not write it (a run never halts others), and the
/// halter role may create it and delete it.
#[test]
fn deploy_rbac_lets_the_runner_watch_the_halt_marker_and_only_halters_pull_it() {
    use shakedown::cluster::halt::{DEFAULT_NAMESPACE, MARKER_NAME};
    let text = std::fs::read_to_string("deploy/rbac.yaml").expect("rbac");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("parses");
    let named = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("deploy/rbac.yaml has no {kind} {name}"))
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
