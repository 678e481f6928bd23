//! What the API server does on create for the kinds an in-cluster shakedown run is
//! made of: Jobs and CronJobs (batch/v1) and the PersistentVolumeClaims their pods
//! write reports to. Defaults are the ones kube-apiserver fills in (so `-o yaml` and
//! a server-side dry run show them), and a template that could never run (a Job's
//! pods must not restart) is refused with the server's words.
//!
//! It must not run anything: the Job controller and the claim binder live in
//! `controllers::jobs`.

use serde_json::{Value, json};

use crate::status::{ApiError, Cause};

fn default(obj: &mut Value, key: &str, value: Value) {
    if obj[key].is_null() {
        obj[key] = value;
    }
}

/// A Job's spec defaults, and its template checked as a Job's.
fn default_job_spec(spec: &mut Value, field: &str, kind: &str, name: &str) -> Result<(), ApiError> {
    default(spec, "parallelism", json!(1));
    default(spec, "completions", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    let restart = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("");
    let cause = match restart {
        "Never" | "OnFailure" => return Ok(()),
        "" => Cause::required(
            format!("{field}.template.spec.restartPolicy"),
            "valid values: \"OnFailure\", \"Never\"",
        ),
        other => Cause::not_supported(
            format!("{field}.template.spec.restartPolicy"),
            &format!("\"{other}\""),
            &["OnFailure", "Never"],
        ),
    };
    Err(ApiError::invalid_causes("batch", kind, name, vec![cause]))
}

pub fn default_job(obj: &mut Value, name: &str) -> Result<(), ApiError> {
    default_job_spec(&mut obj["spec"], "spec", "Job", name)
}

pub fn default_cron_job(obj: &mut Value, name: &str) -> Result<(), ApiError> {
    let spec = &mut obj["spec"];
    if spec["schedule"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid_causes(
            "batch",
            "CronJob",
            name,
            vec![Cause::required("spec.schedule", "")],
        ));
    }
    default(spec, "concurrencyPolicy", json!("Allow"));
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    default_job_spec(
        &mut spec["jobTemplate"]["spec"],
        "spec.jobTemplate.spec",
        "CronJob",
        name,
    )
}

/// A claim starts Pending with the volume mode defaulted; the binder binds it.
pub fn default_claim(obj: &mut Value, name: &str) -> Result<(), ApiError> {
    let spec = &mut obj["spec"];
    let mut causes = Vec::new();
    if spec["accessModes"].as_array().is_none_or(Vec::is_empty) {
        causes.push(Cause::required("spec.accessModes", ""));
    }
    if spec["resources"]["requests"]["storage"].is_null() {
        causes.push(Cause::required("spec.resources[storage]", ""));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid_causes(
            "",
            "PersistentVolumeClaim",
            name,
            causes,
        ));
    }
    default(spec, "volumeMode", json!("Filesystem"));
    obj["status"] = json!({"phase": "Pending"});
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_whose_pods_would_restart_forever_is_invalid() {
        let mut job = json!({"spec": {"template": {"spec": {"restartPolicy": "Always"}}}});
        let err = default_job(&mut job, "j").expect_err("Always is refused");
        assert_eq!(
            err.message,
            "Job.batch \"j\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        );
        let mut job =
            json!({"spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never"}}}});
        default_job(&mut job, "j").expect("Never is fine");
        assert_eq!(job["spec"]["backoffLimit"], 0, "a set field is kept");
        assert_eq!(job["spec"]["completions"], 1);
    }

    #[test]
    fn a_claim_starts_pending_and_needs_a_size_and_an_access_mode() {
        let mut claim = json!({"spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        default_claim(&mut claim, "c").expect("valid");
        assert_eq!(claim["status"]["phase"], "Pending");
        assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
        let err = default_claim(&mut json!({"spec": {}}), "c").expect_err("invalid");
        assert_eq!(err.code, 422);
    }
}
