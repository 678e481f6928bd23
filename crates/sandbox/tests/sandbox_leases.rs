//! `coordination.k8s.io/v1` Leases behave as on a real API server (the lease strategy
//! and validation in kubernetes `pkg/registry/coordination/lease`): discovery, create
//! and 409 on a second create, get/list/watch, updates that must name the version they
//! replace (409 on a stale one, 422 on none), create-on-update, patch, delete with
//! preconditions, `leaseDurationSeconds > 0`, MicroTime with six fractional digits, and
//! dryRun. The run locks in `shakedown::cluster::lease` rely on every one of these.

mod common;

use common::{fast_shop, raw};
use serde_json::{Value, json};
use shakedown_sandbox::{self as sandbox, SandboxHandle};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn send(handle: &SandboxHandle, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let content = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let response = raw(
        handle,
        method,
        path,
        &format!("Content-Type: {content}\r\n"),
        &body.to_string(),
    )
    .await;
    let value = if response.body.trim().is_empty() {
        Value::Null
    } else {
        parse(&response.body)
    };
    (response.code, value)
}

fn lease(name: &str, holder: &str, renew: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": renew,
            "renewTime": renew,
        },
    })
}

async fn start() -> SandboxHandle {
    sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts")
}

#[tokio::test]
async fn discovery_serves_leases_in_coordination_v1() {
    let handle = start().await;
    let response = raw(&handle, "GET", "/apis/coordination.k8s.io/v1", "", "").await;
    assert_eq!(response.code, 200, "{}", response.body);
    let list = parse(&response.body);
    let leases = list["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|e| e["name"] == "leases"))
        .cloned()
        .expect("leases are listed");
    assert_eq!(leases["kind"], "Lease");
    assert_eq!(leases["namespaced"], true);
    for verb in [
        "create", "get", "list", "watch", "update", "patch", "delete",
    ] {
        assert!(
            leases["verbs"]
                .as_array()
                .is_some_and(|v| v.contains(&json!(verb))),
            "{verb}: {leases}"
        );
    }
    let groups = parse(&raw(&handle, "GET", "/apis", "", "").await.body);
    assert!(
        groups["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["name"] == "coordination.k8s.io")),
        "{groups}"
    );
}

#[tokio::test]
async fn create_is_atomic_and_micro_times_come_back_in_utc() {
    let handle = start().await;
    let (code, created) = send(
        &handle,
        "POST",
        LEASES,
        &lease("lock", "run-a", "2026-12-02T12:00:00.123456+02:00"),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["renewTime"], "2026-12-02T10:00:00.123456Z");
    assert_eq!(
        created["spec"]["acquireTime"],
        "2026-12-02T10:00:00.123456Z"
    );
    assert!(created["metadata"]["uid"].is_string());

    let (code, second) = send(
        &handle,
        "POST",
        LEASES,
        &lease("lock", "run-b", "2026-12-02T10:00:01.000000Z"),
    )
    .await;
    assert_eq!(code, 409, "{second}");
    assert_eq!(second["reason"], "AlreadyExists");

    let (code, got) = send(&handle, "GET", &format!("{LEASES}/lock"), &Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(
        got["spec"]["holderIdentity"], "run-a",
        "the first create won"
    );
    let (code, list) = send(&handle, "GET", LEASES, &Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "LeaseList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn invalid_leases_are_refused_like_the_api_server_does() {
    let handle = start().await;
    for (seconds, code) in [(0i32, 422), (-5, 422)] {
        let mut body = lease(
            &format!("zero{code}{}", seconds.abs()),
            "r",
            "2026-12-02T10:00:00.000000Z",
        );
        body["spec"]["leaseDurationSeconds"] = json!(seconds);
        let (got, status) = send(&handle, "POST", LEASES, &body).await;
        assert_eq!(got, code, "{status}");
        assert_eq!(status["reason"], "Invalid");
        assert!(
            status["message"]
                .as_str()
                .is_some_and(|m| m.contains("spec.leaseDurationSeconds")
                    && m.contains("must be greater than 0")),
            "{status}"
        );
    }
    for bad in ["2026-12-02T10:00:00Z", "2026-12-02T10:00:00.123Z", "soon"] {
        let (code, status) = send(&handle, "POST", LEASES, &lease("t", "r", bad)).await;
        assert_eq!(code, 400, "{bad}: {status}");
    }
    let mut body = lease("p", "r", "2026-12-02T10:00:00.000000Z");
    body["spec"]["preferredHolder"] = json!("someone");
    let (code, status) = send(&handle, "POST", LEASES, &body).await;
    assert_eq!(code, 422, "{status}");
    let mut body = lease("n", "r", "2026-12-02T10:00:00.000000Z");
    body["spec"]["leaseTransitions"] = json!(-1);
    let (code, status) = send(&handle, "POST", LEASES, &body).await;
    assert_eq!(code, 422, "{status}");
    let (code, status) = send(
        &handle,
        "POST",
        LEASES,
        &lease("Bad_Name", "r", "2026-12-02T10:00:00.000000Z"),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    let (_, list) = send(&handle, "GET", LEASES, &Value::Null).await;
    assert_eq!(list["items"], json!([]), "nothing invalid was stored");
}

#[tokio::test]
async fn an_update_must_name_the_version_it_replaces() {
    let handle = start().await;
    let (_, created) = send(
        &handle,
        "POST",
        LEASES,
        &lease("lock", "run-a", "2026-12-02T10:00:00.000000Z"),
    )
    .await;
    let path = format!("{LEASES}/lock");

    // Two runs read the same version; only the first update wins.
    let mut first = created.clone();
    first["spec"]["holderIdentity"] = json!("run-b");
    let (code, updated) = send(&handle, "PUT", &path, &first).await;
    assert_eq!(code, 200, "{updated}");
    assert_ne!(
        updated["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    let mut second = created.clone();
    second["spec"]["holderIdentity"] = json!("run-c");
    let (code, status) = send(&handle, "PUT", &path, &second).await;
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["reason"], "Conflict");

    // No version at all: leases allow no unconditional update.
    let mut blind = updated.clone();
    blind["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("resourceVersion");
    let (code, status) = send(&handle, "PUT", &path, &blind).await;
    assert_eq!(code, 422, "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("metadata.resourceVersion")),
        "{status}"
    );

    // A patch applies to the latest version.
    let (code, patched) = send(
        &handle,
        "PATCH",
        &path,
        &json!({"spec": {"renewTime": "2026-12-02T10:00:05.000000Z"}}),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["spec"]["holderIdentity"], "run-b");
    assert_eq!(patched["spec"]["renewTime"], "2026-12-02T10:00:05.000000Z");
    let (code, status) = send(
        &handle,
        "PATCH",
        &path,
        &json!({"spec": {"leaseDurationSeconds": 0}}),
    )
    .await;
    assert_eq!(code, 422, "a patch is validated too: {status}");
}

#[tokio::test]
async fn a_put_creates_a_missing_lease_unless_it_names_another_uid() {
    let handle = start().await;
    let body = lease("fresh", "run-a", "2026-12-02T10:00:00.000000Z");
    let (code, created) = send(&handle, "PUT", &format!("{LEASES}/fresh"), &body).await;
    assert_eq!(code, 201, "create-on-update: {created}");
    assert_eq!(created["spec"]["holderIdentity"], "run-a");

    // A renewal of a Lease someone deleted carries the old uid: a conflict, so the
    // holder learns it lost the lock instead of silently re-creating it.
    let path = format!("{LEASES}/fresh");
    let (code, _) = send(&handle, "DELETE", &path, &Value::Null).await;
    assert_eq!(code, 200);
    let (code, status) = send(&handle, "PUT", &path, &created).await;
    assert_eq!(code, 409, "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("UID")),
        "{status}"
    );
}

#[tokio::test]
async fn delete_honours_preconditions_and_dry_run_stores_nothing() {
    let handle = start().await;
    let (code, dry) = send(
        &handle,
        "POST",
        &format!("{LEASES}?dryRun=All"),
        &lease("dry", "run-a", "2026-12-02T10:00:00.000000Z"),
    )
    .await;
    assert_eq!(code, 201, "{dry}");
    assert!(handle.object("leases", "default", "dry").is_none());

    let (_, created) = send(
        &handle,
        "POST",
        LEASES,
        &lease("lock", "run-a", "2026-12-02T10:00:00.000000Z"),
    )
    .await;
    let path = format!("{LEASES}/lock");
    let stale = json!({"preconditions": {"resourceVersion": "1"}});
    let (code, status) = send(&handle, "DELETE", &path, &stale).await;
    assert_eq!(code, 409, "{status}");
    assert!(handle.object("leases", "default", "lock").is_some());
    let (code, status) = send(
        &handle,
        "DELETE",
        &format!("{path}?dryRun=All"),
        &Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{status}");
    assert!(handle.object("leases", "default", "lock").is_some());
    let current =
        json!({"preconditions": {"resourceVersion": created["metadata"]["resourceVersion"]}});
    let (code, status) = send(&handle, "DELETE", &path, &current).await;
    assert_eq!(code, 200, "{status}");
    assert!(handle.object("leases", "default", "lock").is_none());
}

#[tokio::test]
async fn a_watch_sees_a_lease_taken_renewed_and_released() {
    let handle = start().await;
    let (_, list) = send(&handle, "GET", LEASES, &Value::Null).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    let (_, created) = send(
        &handle,
        "POST",
        LEASES,
        &lease("lock", "run-a", "2026-12-02T10:00:00.000000Z"),
    )
    .await;
    let mut renewed = created.clone();
    renewed["spec"]["renewTime"] = json!("2026-12-02T10:00:05.000000Z");
    let (code, _) = send(&handle, "PUT", &format!("{LEASES}/lock"), &renewed).await;
    assert_eq!(code, 200);
    let (code, _) = send(&handle, "DELETE", &format!("{LEASES}/lock"), &Value::Null).await;
    assert_eq!(code, 200);
    let watch = raw(
        &handle,
        "GET",
        &format!("{LEASES}?watch=1&resourceVersion={rv}&timeoutSeconds=1"),
        "",
        "",
    )
    .await;
    assert_eq!(watch.code, 200);
    let types: Vec<String> = watch
        .body
        .lines()
        .map(parse)
        .map(|e| e["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
}

/// kube-rs, as shakedown uses it: typed Lease objects round-trip their MicroTimes.
#[tokio::test]
async fn kube_rs_round_trips_a_typed_lease() {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
    let handle = start().await;
    let api: kube::Api<Lease> = kube::Api::namespaced(common::client(&handle).await, "default");
    let now = jiff::Timestamp::now();
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("typed".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("run-a".into()),
            lease_duration_seconds: Some(20),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    };
    let created = api
        .create(&kube::api::PostParams::default(), &lease)
        .await
        .expect("create");
    let renewed = created
        .spec
        .and_then(|s| s.renew_time)
        .expect("renewTime")
        .0;
    assert_eq!(renewed.as_microsecond(), now.as_microsecond());
}

/// Real kubectl (the sandbox's fidelity target) applies, lists and deletes a Lease;
/// `get` prints its holder the way kube-apiserver's printer does.
#[tokio::test(flavor = "multi_thread")]
async fn kubectl_applies_lists_and_deletes_a_lease() {
    let handle = start().await;
    let home = std::env::temp_dir().join(format!(
        "shakedown-lease-kubectl-{}-{}",
        std::process::id(),
        handle.addr.port()
    ));
    std::fs::create_dir_all(&home).expect("temp home");
    let kubeconfig = home.join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let manifest = home.join("lease.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: gameday-lock, namespace: default}\nspec: {holderIdentity: run-x, leaseDurationSeconds: 20, renewTime: \"2026-12-02T10:00:00.000000Z\"}\n",
    )
    .expect("manifest");
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .env("HOME", &home)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .expect("kubectl is installed (scripts/test.sh installs kubernetes-client)");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let manifest = manifest.to_str().expect("utf8");
    let applied = tokio::task::block_in_place(|| kubectl(&["apply", "-f", manifest]));
    assert!(
        applied.contains("lease.coordination.k8s.io/gameday-lock"),
        "{applied}"
    );
    let listed = tokio::task::block_in_place(|| kubectl(&["get", "leases"]));
    let row = listed
        .lines()
        .find(|l| l.starts_with("gameday-lock"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        listed.starts_with("NAME") && listed.contains("HOLDER"),
        "{listed}"
    );
    assert!(row.split_whitespace().nth(1) == Some("run-x"), "{listed}");
    tokio::task::block_in_place(|| kubectl(&["delete", "lease", "gameday-lock"]));
    assert!(handle.object("leases", "default", "gameday-lock").is_none());
    let _ = std::fs::remove_dir_all(&home);
}
