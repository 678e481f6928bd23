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
