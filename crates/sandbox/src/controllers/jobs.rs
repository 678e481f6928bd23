//! The Job controller and the volume binder, as far as an in-cluster run needs them:
//! a Job gets one pod from its template (labelled and owned as the real controller
//! labels and owns it) and its status counts it active and ready; a
//! PersistentVolumeClaim is bound at once to a volume of the size it asked for.
//! CronJobs are stored, listed and watched; nothing schedules them here.
//!
//! It must not finish Jobs: the sandbox's pods run until deleted.

use serde_json::{Value, json};

use super::cache::PodCache;
use super::new_named_pod;
use crate::objects::is_terminating;
use crate::store::{Store, name_of, now_rfc3339, uid_of};

pub(super) fn reconcile_jobs(store: &mut Store, cache: &mut PodCache) {
    if store.iter("jobs", None, None).next().is_none() {
        return;
    }
    let jobs: Vec<Value> = store
        .iter("jobs", None, None)
        .filter(|j| !is_terminating(j) && j["spec"]["suspend"] != true)
        .cloned()
        .collect();
    for job in jobs {
        let started = !job["status"]["startTime"].is_null();
        if !started && cache.owned(uid_of(&job)).next().is_none() {
            let uid = uid_of(&job).to_owned();
            let name = format!("{}-{}", name_of(&job), store.random_suffix());
            let labels = [
                ("batch.kubernetes.io/controller-uid", uid.clone()),
                ("batch.kubernetes.io/job-name", name_of(&job).to_owned()),
                ("controller-uid", uid),
                ("job-name", name_of(&job).to_owned()),
            ];
            new_named_pod(store, &job, &name, &labels, &json!({}));
        }
        // The pod just created is in the shared cache from here on.
        cache.sync(store);
        let pods: Vec<_> = cache.owned(uid_of(&job)).collect();
        let active = pods.iter().filter(|p| !p.terminating).count();
        let ready = pods.iter().filter(|p| p.serving).count();
        let mut updated = job.clone();
        let status = &mut updated["status"];
        if status["startTime"].is_null() {
            status["startTime"] = json!(now_rfc3339());
        }
        status["active"] = json!(active);
        status["ready"] = json!(ready);
        status["terminating"] = json!(pods.len() - active);
        if updated != job {
            store.update("jobs", updated);
        }
    }
}

pub(super) fn bind_claims(store: &mut Store) {
    let pending: Vec<Value> = store
        .iter("persistentvolumeclaims", None, None)
        .filter(|c| c["status"]["phase"] != "Bound" && !is_terminating(c))
        .cloned()
        .collect();
    for mut claim in pending {
        claim["spec"]["volumeName"] = json!(format!("pvc-{}", uid_of(&claim)));
        claim["status"] = json!({
            "phase": "Bound",
            "accessModes": claim["spec"]["accessModes"],
            "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
        });
        let annotations = &mut claim["metadata"]["annotations"];
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations["pv.kubernetes.io/bind-completed"] = json!("yes");
        store.update("persistentvolumeclaims", claim);
    }
}
