//! RBAC in the sandbox (`rbac: true`), over the wire: ServiceAccount tokens from the
//! TokenRequest subresource, requests authorized from stored Roles and bindings with
//! kube-apiserver's 403 body, and the self-reviews answered from the same rules.

mod common;

use serde_json::{Value, json};
use shakedown_sandbox::{self as sandbox, SandboxHandle};

async fn rbac_sandbox() -> SandboxHandle {
    let mut config = common::fast_shop();
    config.rbac = true;
    config.namespaces.push("chaos".into());
    sandbox::start(config, 0).await.expect("sandbox starts")
}

/// A JSON request, as the admin (no token) or with `token`.
async fn call(
    handle: &SandboxHandle,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut headers = String::from("Content-Type: application/json\r\n");
    if let Some(token) = token {
        headers.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let response = common::raw(handle, method, path, &headers, &body).await;
    let value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    (response.code, value)
}

async fn admin_creates(handle: &SandboxHandle, path: &str, body: Value) {
    let (code, answer) = call(handle, "POST", path, None, body).await;
    assert_eq!(code, 201, "POST {path}: {answer}");
}

/// A ServiceAccount `chaos/runner` that may list pods and delete them in `shop` only
/// (a ClusterRole bound by a RoleBinding there), and its token from TokenRequest.
async fn runner(handle: &SandboxHandle) -> String {
    admin_creates(
        handle,
        "/api/v1/namespaces/chaos/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner"}}),
    )
    .await;
    admin_creates(
        handle,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "pod-killer"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]}]}),
    )
    .await;
    admin_creates(
        handle,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "pod-killer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-killer"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "chaos"}]}),
    )
    .await;
    let (code, answer) = call(
        handle,
        "POST",
        "/api/v1/namespaces/chaos/serviceaccounts/runner/token",
        None,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
    )
    .await;
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["kind"], "TokenRequest");
    answer["status"]["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_may_do_what_its_bindings_grant_and_is_refused_the_rest_with_a_real_403()
{
    let handle = rbac_sandbox().await;
    let token = runner(&handle).await;
    let token = Some(token.as_str());

    let (code, list) = call(
        &handle,
        "GET",
        "/api/v1/namespaces/shop/pods",
        token,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{list}");
    let pod = list["items"][0]["metadata"]["name"]
        .as_str()
        .expect("a shop pod")
        .to_owned();

    let (code, status) = call(
        &handle,
        "GET",
        &format!("/api/v1/namespaces/shop/pods/{pod}"),
        token,
        Value::Null,
    )
    .await;
    assert_eq!(code, 403, "get was not granted: {status}");
    assert_eq!(
        status,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("pods \"{pod}\" is forbidden: User \"system:serviceaccount:chaos:runner\" cannot get resource \"pods\" in API group \"\" in the namespace \"shop\""),
            "reason": "Forbidden",
            "details": {"name": pod, "kind": "pods"},
            "code": 403,
        })
    );
    let (code, status) = call(
        &handle,
        "GET",
        "/api/v1/namespaces/default/pods",
        token,
        Value::Null,
    )
    .await;
    assert_eq!(code, 403, "the RoleBinding grants in shop only: {status}");
    let (code, status) = call(
        &handle,
        "POST",
        &format!("/api/v1/namespaces/shop/pods/{pod}/eviction"),
        token,
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod}}),
    )
    .await;
    assert_eq!(code, 403, "{status}");
    assert!(
        status["message"].as_str().is_some_and(|m| m.ends_with(
            "cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"shop\""
        )),
        "{status}"
    );
    let (code, status) = call(
        &handle,
        "GET",
        "/apis/apps/v1/deployments",
        token,
        Value::Null,
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        status["details"],
        json!({"group": "apps", "kind": "deployments"})
    );
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("deployments.apps is forbidden: ")
                && m.ends_with("at the cluster scope")),
        "{status}"
    );

    let (code, status) = call(
        &handle,
        "DELETE",
        &format!("/api/v1/namespaces/shop/pods/{pod}"),
        token,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "delete is granted: {status}");
    assert!(
        handle
            .object("pods", "shop", &pod)
            .is_none_or(|p| !p["metadata"]["deletionTimestamp"].is_null())
    );

    // Discovery and the self-reviews are every authenticated caller's (bootstrap roles).
    let (code, _) = call(&handle, "GET", "/apis", token, Value::Null).await;
    assert_eq!(code, 200);
    let (code, status) = call(&handle, "GET", "/metrics", token, Value::Null).await;
    assert_eq!(
        (code, status["message"].as_str()),
        (
            403,
            Some(
                "forbidden: User \"system:serviceaccount:chaos:runner\" cannot get path \"/metrics\""
            )
        )
    );

    // The admin (no token) may do anything; an unknown token is not anyone.
    let (code, _) = call(
        &handle,
        "GET",
        "/apis/apps/v1/deployments",
        None,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (code, status) = call(
        &handle,
        "GET",
        "/api/v1/namespaces/shop/pods",
        Some("forged"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (401, Some("Unauthorized"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_reviews_answer_for_the_token_holder_from_the_same_rules() {
    let handle = rbac_sandbox().await;
    let token = runner(&handle).await;
    let token = Some(token.as_str());
    let review = |verb: &str, ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": "pods", "namespace": ns}}})
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (code, allowed) = call(&handle, "POST", path, token, review("delete", "shop")).await;
    assert_eq!(code, 201, "{allowed}");
    assert_eq!(
        allowed["status"],
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"pod-killer/shop\" of ClusterRole \"pod-killer\" to ServiceAccount \"runner/chaos\""})
    );
    let (_, denied) = call(&handle, "POST", path, token, review("delete", "web")).await;
    assert_eq!(denied["status"], json!({"allowed": false}));
    let (_, admin) = call(&handle, "POST", path, None, review("delete", "web")).await;
    assert_eq!(
        admin["status"],
        json!({"allowed": true}),
        "the admin is system:masters"
    );

    let (code, whoami) = call(
        &handle,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        token,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        whoami["status"]["userInfo"]["username"],
        "system:serviceaccount:chaos:runner"
    );
    assert_eq!(
        whoami["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:chaos",
            "system:authenticated"
        ])
    );

    let (_, rules) = call(&handle, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", token,
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "shop"}})).await;
    let resource_rules = rules["status"]["resourceRules"]
        .as_array()
        .expect("rules")
        .clone();
    assert!(
        resource_rules.contains(
            &json!({"verbs": ["list", "delete"], "apiGroups": [""], "resources": ["pods"]})
        ),
        "{rules}"
    );
    let (_, elsewhere) = call(&handle, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", token,
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "web"}})).await;
    assert!(
        !elsewhere["status"]["resourceRules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r["resources"] == json!(["pods"])),
        "{elsewhere}"
    );
}

/// Regression guard for the sandbox's default: without `rbac`, a token changes nothing
/// and reviews stay allowed (the existing `accessDenied` tests rely on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rbac_every_caller_may_do_everything() {
    let mut config = common::fast_shop();
    config.namespaces.push("chaos".into());
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");
    admin_creates(
        &handle,
        "/api/v1/namespaces/chaos/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner"}}),
    )
    .await;
    let token = handle
        .service_account_token("chaos", "runner")
        .expect("token");
    let (code, _) = call(
        &handle,
        "GET",
        "/apis/apps/v1/deployments",
        Some(&token),
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = call(
        &handle,
        "GET",
        "/api/v1/pods",
        Some("not-a-token"),
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        handle.objects("clusterroles", None).is_empty(),
        "no bootstrap roles without rbac"
    );
}

/// The audit log names who sent each request: the admin, or the ServiceAccount whose
/// token it carried (with its groups), as kube-apiserver's audit events do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_names_the_service_account_that_sent_a_request() {
    let path =
        std::env::temp_dir().join(format!("shakedown-rbac-audit-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut config = common::fast_shop();
    config.rbac = true;
    config.namespaces.push("chaos".into());
    config.audit_log = Some(path.clone());
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");
    let token = runner(&handle).await;
    let (code, _) = call(
        &handle,
        "GET",
        "/api/v1/namespaces/shop/pods",
        Some(&token),
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let text = std::fs::read_to_string(&path).expect("audit log");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let list = events
        .iter()
        .find(|e| e["verb"] == "list" && e["requestURI"] == "/api/v1/namespaces/shop/pods")
        .expect("the list is audited");
    assert_eq!(
        list["user"]["username"], "system:serviceaccount:chaos:runner",
        "{list}"
    );
    assert_eq!(
        list["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:chaos",
            "system:authenticated"
        ])
    );
    let created = events
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "serviceaccounts")
        .expect("the admin's create is audited");
    assert_eq!(
        created["user"]["username"],
        sandbox::audit::SANDBOX_USERNAME
    );
    let _ = std::fs::remove_file(&path);
}
