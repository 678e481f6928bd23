//! The sandbox's HTTP surface where clients are picky: discovery, content
//! negotiation, watch semantics, patch flavours, API faults and the request log.

mod common;

use std::time::Duration;

use common::{DEADLINE, fast_shop, raw};
use serde_json::{Value, json};
use shakedown_sandbox::{self as sandbox, ApiFaults, SandboxHandle};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn get_json(handle: &SandboxHandle, path: &str) -> Value {
    let response = raw(handle, "GET", path, "", "").await;
    assert_eq!(response.code, 200, "{path}: {}", response.body);
    parse(&response.body)
}

async fn wait_for_pods(
    handle: &SandboxHandle,
    namespace: &str,
    app: &str,
    ready: usize,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let pods: Vec<Value> = handle
            .objects("pods", Some(namespace))
            .into_iter()
            .filter(|p| {
                p["metadata"]["labels"]["app"] == app
                    && p["metadata"]["deletionTimestamp"].is_null()
            })
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .collect();
        if pods.len() == ready {
            return pods;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{app}: {} ready, wanted {ready}",
            pods.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn discovery_lists_every_served_group_and_no_policy_v1beta1_as_a_1_33_server() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let version = get_json(&handle, "/version").await;
    assert_eq!(
        (version["major"].as_str(), version["minor"].as_str()),
        (Some("1"), Some("33"))
    );
    let groups = get_json(&handle, "/apis").await;
    let policy = groups["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == "policy"))
        .cloned()
        .expect("policy group");
    let versions: Vec<&str> = policy["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    // policy/v1beta1 stopped being served in 1.25; this server reports 1.33.
    assert_eq!(versions, ["v1"]);
    assert_eq!(
        raw(&handle, "GET", "/apis/policy/v1beta1", "", "")
            .await
            .code,
        404
    );
    for gv in [
        "/apis/apps/v1",
        "/apis/policy/v1",
        "/apis/authorization.k8s.io/v1",
        "/apis/events.k8s.io/v1",
        "/api/v1",
    ] {
        let list = get_json(&handle, gv).await;
        assert_eq!(list["kind"], "APIResourceList", "{gv}");
    }
    let core = get_json(&handle, "/api/v1").await;
    let names: Vec<&str> = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in [
        "namespaces",
        "nodes",
        "pods",
        "pods/status",
        "pods/eviction",
        "pods/ephemeralcontainers",
        "pods/exec",
        "events",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(raw(&handle, "GET", "/apis/nope/v1", "", "").await.code, 404);
}

#[tokio::test]
async fn protobuf_requests_get_json_and_kubectl_tables_get_tables() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    wait_for_pods(&handle, "shop", "checkout", 3).await;
    let proto = raw(
        &handle,
        "GET",
        "/api/v1/namespaces/shop/pods",
        "Accept: application/vnd.kubernetes.protobuf, */*\r\n",
        "",
    )
    .await;
    assert_eq!(proto.code, 200);
    assert!(
        proto
            .headers
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        proto.headers
    );
    assert_eq!(parse(&proto.body)["kind"], "PodList");

    let accept = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json\r\n";
    let table = raw(
        &handle,
        "GET",
        "/api/v1/namespaces/shop/pods?labelSelector=app%3Dcheckout",
        accept,
        "",
    )
    .await;
    let table = parse(&table.body);
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        &columns[..5],
        ["Name", "Ready", "Status", "Restarts", "Age"]
    );
    let rows = table["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["cells"][1], "1/1");
    assert_eq!(rows[0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn selectors_filter_lists_and_unsupported_fields_are_rejected() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let checkout = wait_for_pods(&handle, "shop", "checkout", 3).await;
    let node = checkout[0]["spec"]["nodeName"]
        .as_str()
        .expect("scheduled")
        .to_owned();
    let on_node = get_json(
        &handle,
        &format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}"),
    )
    .await;
    let items = on_node["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(items.iter().all(|p| p["spec"]["nodeName"] == node.as_str()));

    let set = get_json(
        &handle,
        "/api/v1/namespaces/shop/pods?labelSelector=app%20in%20(checkout,catalog),app!%3Dfrontend",
    )
    .await;
    assert_eq!(set["items"].as_array().map(Vec::len), Some(4));
    let running = get_json(
        &handle,
        "/api/v1/pods?fieldSelector=status.phase%3DRunning,metadata.namespace%3Dshop",
    )
    .await;
    assert_eq!(running["items"].as_array().map(Vec::len), Some(6));

    let bad = raw(
        &handle,
        "GET",
        "/api/v1/pods?fieldSelector=spec.bogus%3Dx",
        "",
        "",
    )
    .await;
    assert_eq!(bad.code, 400);
    assert!(
        parse(&bad.body)["message"]
            .as_str()
            .unwrap_or("")
            .contains("field label not supported")
    );
    let page = get_json(&handle, "/api/v1/namespaces/shop/pods?limit=4").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(4));
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let rest = get_json(
        &handle,
        &format!("/api/v1/namespaces/shop/pods?limit=4&continue={token}"),
    )
    .await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(2));
    assert!(rest["metadata"]["continue"].is_null());
}

#[tokio::test]
async fn watches_resume_expire_bookmark_and_time_out() {
    let mut config = fast_shop();
    config.timings.bookmark_interval = Duration::from_millis(200);
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");
    wait_for_pods(&handle, "shop", "catalog", 1).await;
    let list = get_json(&handle, "/api/v1/namespaces/default/pods").await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
    let created = raw(
        &handle,
        "POST",
        "/api/v1/namespaces/default/pods",
        "Content-Type: application/json\r\n",
        &pod.to_string(),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);

    let watch = raw(&handle, "GET", &format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"), "", "").await;
    assert_eq!(watch.code, 200);
    let events: Vec<Value> = watch.body.lines().map(parse).collect();
    assert_eq!(
        events.first().map(|e| e["type"].clone()),
        Some(json!("ADDED")),
        "{events:?}"
    );
    assert_eq!(events[0]["object"]["metadata"]["name"], "w");
    assert!(
        events.iter().any(|e| e["type"] == "MODIFIED"),
        "the scheduler and kubelet update it: {events:?}"
    );
    assert!(events.iter().any(|e| e["type"] == "BOOKMARK"), "{events:?}");

    handle.compact();
    let gone = raw(
        &handle,
        "GET",
        &format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}"),
        "",
        "",
    )
    .await;
    assert_eq!(gone.code, 200);
    let error = parse(gone.body.lines().next().expect("an ERROR event"));
    assert_eq!(error["type"], "ERROR");
    assert_eq!(
        (
            error["object"]["code"].as_i64(),
            error["object"]["reason"].as_str()
        ),
        (Some(410), Some("Expired"))
    );

    let started = std::time::Instant::now();
    let quiet = raw(
        &handle,
        "GET",
        "/api/v1/namespaces/kube-system/pods?watch=1&timeoutSeconds=1",
        "",
        "",
    )
    .await;
    assert_eq!(quiet.code, 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1) && started.elapsed() < Duration::from_secs(5)
    );
}

#[tokio::test]
async fn patches_follow_pod_update_rules_and_dry_run_persists_nothing() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let pod = wait_for_pods(&handle, "shop", "catalog", 1).await.remove(0);
    let name = pod["metadata"]["name"].as_str().expect("name").to_owned();
    let path = format!("/api/v1/namespaces/shop/pods/{name}");

    let smp = "Content-Type: application/strategic-merge-patch+json\r\n";
    let annotated = raw(
        &handle,
        "PATCH",
        &path,
        smp,
        r#"{"metadata":{"annotations":{"shakedown.dev/fault":"{}"}}}"#,
    )
    .await;
    assert_eq!(annotated.code, 200, "{}", annotated.body);
    let jsonpatch = "Content-Type: application/json-patch+json\r\n";
    let removed = raw(
        &handle,
        "PATCH",
        &path,
        jsonpatch,
        r#"[{"op":"remove","path":"/metadata/annotations/shakedown.dev~1fault"}]"#,
    )
    .await;
    assert_eq!(removed.code, 200, "{}", removed.body);
    assert!(
        parse(&removed.body)["metadata"]["annotations"]
            .get("shakedown.dev/fault")
            .is_none()
    );

    let ephemeral =
        r#"{"spec":{"ephemeralContainers":[{"name":"netem","image":"tc:1","command":["tc"]}]}}"#;
    let forbidden = raw(&handle, "PATCH", &path, smp, ephemeral).await;
    assert_eq!(
        forbidden.code, 422,
        "ephemeral containers only through their subresource"
    );
    let dry = raw(
        &handle,
        "PATCH",
        &format!("{path}/ephemeralcontainers?dryRun=All"),
        smp,
        ephemeral,
    )
    .await;
    assert_eq!(dry.code, 200, "{}", dry.body);
    assert!(
        handle.object("pods", "shop", &name).expect("pod")["spec"]["ephemeralContainers"].is_null()
    );
    let added = raw(
        &handle,
        "PATCH",
        &format!("{path}/ephemeralcontainers"),
        smp,
        ephemeral,
    )
    .await;
    assert_eq!(added.code, 200, "{}", added.body);
    assert_eq!(
        parse(&added.body)["spec"]["ephemeralContainers"][0]["name"],
        "netem"
    );

    let stale = raw(
        &handle,
        "PATCH",
        &path,
        "Content-Type: application/merge-patch+json\r\n",
        r#"{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}"#,
    )
    .await;
    assert_eq!(stale.code, 409);
    assert_eq!(parse(&stale.body)["reason"], "Conflict");
    let yaml = raw(
        &handle,
        "PATCH",
        &path,
        "Content-Type: application/yaml\r\n",
        "metadata: {}",
    )
    .await;
    assert_eq!(yaml.code, 415);

    let mutating: Vec<(String, u16)> = handle
        .request_log()
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(mutating.len(), 7);
    assert!(mutating.iter().all(|(m, _)| m == "PATCH"));
}

#[tokio::test]
async fn api_faults_answer_a_share_of_requests_and_are_logged() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    handle.set_api_faults(ApiFaults {
        error_share: 0.5,
        error_code: 429,
        ..ApiFaults::default()
    });
    let mut codes = Vec::new();
    for _ in 0..10 {
        let response = raw(&handle, "GET", "/api/v1/nodes", "", "").await;
        if response.code == 429 {
            assert!(
                response.headers.contains("retry-after: 1")
                    || response.headers.contains("Retry-After: 1"),
                "{}",
                response.headers
            );
        }
        codes.push(response.code);
    }
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 5, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 5, "{codes:?}");
    let metrics = raw(&handle, "GET", "/metrics", "", "").await;
    assert_eq!(metrics.code, 200, "scrapes are not faulted");

    handle.set_api_faults(ApiFaults {
        latency: Duration::from_millis(300),
        drop_watches_after: Some(Duration::from_millis(500)),
        ..ApiFaults::default()
    });
    let started = std::time::Instant::now();
    let watch = raw(
        &handle,
        "GET",
        "/api/v1/nodes?watch=1&timeoutSeconds=30",
        "",
        "",
    )
    .await;
    let took = started.elapsed();
    assert_eq!(watch.code, 200);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "dropped after {took:?}"
    );
    assert_eq!(
        watch.body.lines().count(),
        3,
        "the initial ADDED events, then the drop"
    );

    let log = handle.request_log();
    let logged: Vec<u16> = log
        .iter()
        .filter(|r| r.path == "/api/v1/nodes" && r.query.is_empty())
        .map(|r| r.status)
        .collect();
    assert_eq!(logged, codes);
    assert!(log.iter().all(|r| !r.is_mutating()));
}

#[tokio::test]
async fn workload_errors_rise_when_checkout_loses_pods_and_latency_follows_netem() {
    let mut config = fast_shop();
    // Long enough that the replacements are still starting while errors are measured.
    config.timings.startup_delay = Duration::from_secs(2);
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");
    let pods = wait_for_pods(&handle, "shop", "checkout", 3).await;
    let counter = |handle: &SandboxHandle, code: &str| -> f64 {
        let needle = format!(
            "http_requests_total{{namespace=\"shop\",service=\"checkout\",code=\"{code}\"}} "
        );
        handle
            .metrics()
            .lines()
            .find_map(|l| l.strip_prefix(&needle).and_then(|v| v.parse().ok()))
            .unwrap_or(0.0)
    };
    let window = async |handle: &SandboxHandle| -> (f64, f64) {
        let (ok0, err0) = (counter(handle, "200"), counter(handle, "503"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        (counter(handle, "200") - ok0, counter(handle, "503") - err0)
    };
    let (ok, errors) = window(&handle).await;
    assert!(
        ok > 0.0 && errors == 0.0,
        "steady state: ok={ok} errors={errors}"
    );

    for pod in &pods[..2] {
        let name = pod["metadata"]["name"].as_str().expect("name");
        let deleted = raw(
            &handle,
            "DELETE",
            &format!("/api/v1/namespaces/shop/pods/{name}"),
            "",
            "",
        )
        .await;
        assert_eq!(deleted.code, 200);
    }
    let (ok, errors) = window(&handle).await;
    let ratio = errors / (ok + errors);
    assert!(
        ratio > 0.4,
        "one pod for 30 rps at 15 rps each: error ratio {ratio}"
    );
    let metrics = handle.metrics();
    assert!(
        metrics.contains(
            "kube_deployment_spec_replicas{namespace=\"shop\",deployment=\"checkout\"} 3"
        ),
        "{metrics}"
    );

    let pods = wait_for_pods(&handle, "shop", "checkout", 3).await;
    let (ok, errors) = window(&handle).await;
    assert!(
        ok > 0.0 && errors == 0.0,
        "recovered: ok={ok} errors={errors}"
    );

    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60)).to_string();
    let fault = json!({"kind": "network-latency", "delayMs": 400, "expires": expires}).to_string();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().expect("name");
        let patch =
            json!({"metadata": {"annotations": {"shakedown.dev/fault": fault}}}).to_string();
        let r = raw(
            &handle,
            "PATCH",
            &format!("/api/v1/namespaces/shop/pods/{name}"),
            "Content-Type: application/merge-patch+json\r\n",
            &patch,
        )
        .await;
        assert_eq!(r.code, 200, "{}", r.body);
    }
    let slow = |handle: &SandboxHandle| -> f64 {
        let needle = "http_request_duration_seconds_bucket{namespace=\"shop\",service=\"checkout\",le=\"0.25\"} ";
        handle
            .metrics()
            .lines()
            .find_map(|l| l.strip_prefix(needle).and_then(|v| v.parse().ok()))
            .unwrap_or(0.0)
    };
    let (fast0, total0) = (slow(&handle), counter(&handle, "200"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fast1, total1) = (slow(&handle), counter(&handle, "200"));
    assert!(total1 > total0);
    assert_eq!(
        fast1, fast0,
        "with 400ms of netem no request is under 250ms"
    );
}

#[tokio::test]
async fn exec_speaks_the_v4_channel_protocol_and_records_the_command() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let pod = wait_for_pods(&handle, "shop", "catalog", 1).await.remove(0);
    let name = pod["metadata"]["name"].as_str().expect("name");
    let path = format!(
        "/api/v1/namespaces/shop/pods/{name}/exec?command=tc&command=qdisc&command=del&container=catalog&stdout=true&stderr=true"
    );
    let headers = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n";
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(handle.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}\r\n",
        handle.addr
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buffer.windows(2).any(|w| w == [0x88, 2]) {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("in time")
            .expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&buffer));
        buffer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buffer);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("sec-websocket-protocol: v4.channel.k8s.io"),
        "{text}"
    );
    let head_end = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    let frames = &buffer[head_end..];
    assert_eq!(frames[0], 0x82, "a binary frame");
    assert_eq!(frames[2], 3, "on the error channel");
    let status = parse(&String::from_utf8_lossy(
        &frames[3..2 + usize::from(frames[1])],
    ));
    assert_eq!(status["status"], "Success");
    let log = handle.exec_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].command, ["tc", "qdisc", "del"]);
    assert_eq!(log[0].protocol, "v4.channel.k8s.io");

    let refused = raw(
        &handle,
        "POST",
        &format!("/api/v1/namespaces/shop/pods/{name}/exec?command=ls"),
        "Upgrade: SPDY/3.1\r\nConnection: Upgrade\r\n",
        "",
    )
    .await;
    assert_eq!(refused.code, 400);
}

#[tokio::test]
async fn table_watches_send_column_definitions_once_like_kubectl_get_w_expects() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    wait_for_pods(&handle, "shop", "checkout", 3).await;
    let accept = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json\r\n";
    let watch = raw(
        &handle,
        "GET",
        "/api/v1/namespaces/shop/pods?watch=1&labelSelector=app%3Dcheckout&timeoutSeconds=1",
        accept,
        "",
    )
    .await;
    let events: Vec<Value> = watch.body.lines().map(parse).collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e["type"] == "ADDED" && e["object"]["kind"] == "Table")
    );
    assert!(events[0]["object"]["columnDefinitions"].is_array());
    assert!(events[1]["object"].get("columnDefinitions").is_none());
    assert_eq!(events[2]["object"]["rows"][0]["cells"][2], "Running");
}

#[tokio::test]
async fn bodies_in_yaml_are_accepted_and_protobuf_is_415() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: from-yaml\n";
    let created = raw(
        &handle,
        "POST",
        "/api/v1/namespaces",
        "Content-Type: application/yaml\r\n",
        yaml,
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    assert_eq!(parse(&created.body)["status"]["phase"], "Active");
    let proto = raw(
        &handle,
        "POST",
        "/api/v1/namespaces",
        "Content-Type: application/vnd.kubernetes.protobuf\r\n",
        "k8s\0",
    )
    .await;
    assert_eq!(proto.code, 415);
    assert_eq!(parse(&proto.body)["reason"], "UnsupportedMediaType");
    let missing = raw(
        &handle,
        "POST",
        "/api/v1/namespaces/nope/pods",
        "Content-Type: application/json\r\n",
        r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
    )
    .await;
    assert_eq!(missing.code, 404, "creating in a missing namespace");
    assert_eq!(parse(&missing.body)["details"]["kind"], "namespaces");
}

#[tokio::test]
async fn api_faults_can_target_one_kind_of_request() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let pod = wait_for_pods(&handle, "shop", "catalog", 1).await.remove(0);
    let name = pod["metadata"]["name"].as_str().expect("name");
    handle.set_api_faults(ApiFaults {
        error_share: 1.0,
        error_code: 500,
        matching: Some("/eviction".into()),
        ..ApiFaults::default()
    });
    let eviction =
        format!(r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{name}"}}}}"#);
    let path = format!("/api/v1/namespaces/shop/pods/{name}/eviction");
    let failed = raw(
        &handle,
        "POST",
        &path,
        "Content-Type: application/json\r\n",
        &eviction,
    )
    .await;
    assert_eq!(failed.code, 500);
    assert_eq!(parse(&failed.body)["reason"], "InternalError");
    assert_eq!(
        raw(&handle, "GET", "/api/v1/nodes", "", "").await.code,
        200,
        "other requests are untouched"
    );
    assert!(
        handle
            .object("pods", "shop", name)
            .is_some_and(|p| p["metadata"]["deletionTimestamp"].is_null()),
        "a faulted eviction evicts nothing"
    );
    handle.set_api_faults(ApiFaults::default());
    let evicted = raw(
        &handle,
        "POST",
        &path,
        "Content-Type: application/json\r\n",
        &eviction,
    )
    .await;
    assert_eq!(evicted.code, 201, "{}", evicted.body);
}

#[tokio::test]
async fn deleting_a_namespace_or_a_node_cleans_up_what_was_on_it() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    wait_for_pods(&handle, "shop", "checkout", 3).await;
    let deleted = raw(&handle, "DELETE", "/api/v1/namespaces/shop", "", "").await;
    assert_eq!(deleted.code, 200);
    assert_eq!(parse(&deleted.body)["status"]["phase"], "Terminating");
    let created = raw(
        &handle,
        "POST",
        "/api/v1/namespaces/shop/pods",
        "Content-Type: application/json\r\n",
        r#"{"metadata":{"name":"late"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
    )
    .await;
    assert_eq!(
        created.code, 403,
        "no new content in a terminating namespace: {}",
        created.body
    );
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while handle.object("namespaces", "", "shop").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the namespace never went away"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(handle.objects("pods", Some("shop")).is_empty());
    assert!(handle.objects("deployments", Some("shop")).is_empty());

    let node = raw(&handle, "DELETE", "/api/v1/nodes/node-b-1", "", "").await;
    assert_eq!(node.code, 200);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while handle
        .objects("pods", None)
        .iter()
        .any(|p| p["spec"]["nodeName"] == "node-b-1")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pods stayed on a deleted node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        handle.objects("pods", Some("monitoring")).len(),
        2,
        "node-exporter on the two nodes left"
    );
}

#[tokio::test]
async fn the_service_proxy_answers_like_the_workload_model() {
    let mut config = fast_shop();
    config.timings.startup_delay = Duration::from_secs(3);
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");
    let pods = wait_for_pods(&handle, "shop", "checkout", 3).await;
    let proxy = "/api/v1/namespaces/shop/services/checkout:http/proxy/healthz";
    let started = std::time::Instant::now();
    let ok = raw(&handle, "GET", proxy, "", "").await;
    assert_eq!(ok.code, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "base latency is 50ms"
    );
    assert_eq!(
        raw(
            &handle,
            "GET",
            "/api/v1/namespaces/shop/services/nope/proxy/",
            "",
            ""
        )
        .await
        .code,
        404
    );

    for pod in &pods[..2] {
        let name = pod["metadata"]["name"].as_str().expect("name");
        assert_eq!(
            raw(
                &handle,
                "DELETE",
                &format!("/api/v1/namespaces/shop/pods/{name}"),
                "",
                ""
            )
            .await
            .code,
            200
        );
    }
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(raw(&handle, "GET", proxy, "", "").await.code);
    }
    assert_eq!(
        codes.iter().filter(|c| **c == 503).count(),
        3,
        "one pod of three serves half: {codes:?}"
    );
    assert!(
        handle
            .request_log()
            .iter()
            .filter(|r| r.path == proxy)
            .all(|r| r.status == 200 || r.status == 503)
    );
}

#[tokio::test]
async fn a_continue_token_from_before_a_compaction_is_410() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    wait_for_pods(&handle, "shop", "checkout", 3).await;
    let page = get_json(&handle, "/api/v1/pods?limit=2").await;
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("more pages")
        .to_owned();
    handle.compact();
    let stale = raw(
        &handle,
        "GET",
        &format!("/api/v1/pods?limit=2&continue={token}"),
        "",
        "",
    )
    .await;
    assert_eq!(stale.code, 410);
    assert_eq!(parse(&stale.body)["reason"], "Expired");
    let fresh = get_json(&handle, "/api/v1/pods?limit=2").await;
    assert_eq!(
        fresh["items"].as_array().map(Vec::len),
        Some(2),
        "a new list works"
    );
}

#[tokio::test]
async fn orphan_propagation_keeps_the_pods_of_a_deleted_replicaset() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let pods = wait_for_pods(&handle, "shop", "frontend", 2).await;
    let rs = pods[0]["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .expect("owner")
        .to_owned();
    // The deployment would recreate its ReplicaSet; take it out of the picture first.
    let body = r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Orphan"}"#;
    let deleted = raw(
        &handle,
        "DELETE",
        "/apis/apps/v1/namespaces/shop/deployments/frontend",
        "Content-Type: application/json\r\n",
        body,
    )
    .await;
    assert_eq!(deleted.code, 200, "{}", deleted.body);
    let deleted = raw(
        &handle,
        "DELETE",
        &format!("/apis/apps/v1/namespaces/shop/replicasets/{rs}?propagationPolicy=Orphan"),
        "",
        "",
    )
    .await;
    assert_eq!(deleted.code, 200, "{}", deleted.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = handle.objects("pods", Some("shop"));
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().expect("name");
        let kept = left
            .iter()
            .find(|p| p["metadata"]["name"] == name)
            .expect("orphaned pod kept");
        assert!(kept["metadata"]["deletionTimestamp"].is_null());
        assert_eq!(
            kept["metadata"]["ownerReferences"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0),
            0
        );
    }
}

/// kube-apiserver's `legacyValidateEvent`: a core/v1 Event with `eventTime` needs a
/// reporting controller and instance (422 otherwise, as a real 1.32 server answers).
#[tokio::test]
async fn an_event_with_event_time_needs_a_reporting_instance() {
    let handle = sandbox::start(sandbox::SandboxConfig::empty(), 0)
        .await
        .expect("sandbox");
    let event = |instance: &str| {
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": "fid-", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": "default", "name": "x"},
            "reason": "ShakedownRevert", "message": "m", "type": "Warning",
            "eventTime": "2026-12-02T05:30:50.809461Z",
            "reportingComponent": "shakedown", "reportingInstance": instance, "action": "ShakedownRevert",
        })
        .to_string()
    };
    let path = "/api/v1/namespaces/default/events";
    let json = "Content-Type: application/json\r\n";
    let refused = raw(&handle, "POST", path, json, &event("")).await;
    assert_eq!(refused.code, 422, "{}", refused.body);
    let status: Value = serde_json::from_str(&refused.body).expect("status");
    assert_eq!(status["details"]["causes"][0]["field"], "reportingInstance");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueRequired"
    );
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("is invalid: reportingInstance: Required value")),
        "{status}"
    );
    let accepted = raw(&handle, "POST", path, json, &event("run-1")).await;
    assert_eq!(accepted.code, 201, "{}", accepted.body);
    handle.shutdown().await;
}

#[tokio::test]
async fn cordon_adds_the_unschedulable_taint_and_uncordon_removes_it() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let taints = |handle: &SandboxHandle| {
        handle
            .object("nodes", "", "node-b-1")
            .map(|n| n["spec"]["taints"].clone())
            .unwrap_or(Value::Null)
    };
    let patch =
        |unschedulable: Value| json!({"spec": {"unschedulable": unschedulable}}).to_string();
    let ct = "Content-Type: application/strategic-merge-patch+json\r\n";
    let path = "/api/v1/nodes/node-b-1";
    assert_eq!(
        raw(&handle, "PATCH", path, ct, &patch(json!(true)))
            .await
            .code,
        200
    );
    let deadline = tokio::time::Instant::now() + DEADLINE;
    // As the node lifecycle controller does, shortly after the cordon.
    while taints(&handle).as_array().is_none_or(|t| t.is_empty()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no taint after cordon"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let taint = &taints(&handle)[0];
    assert_eq!(taint["key"], "node.kubernetes.io/unschedulable");
    assert_eq!(taint["effect"], "NoSchedule");
    assert!(taint["timeAdded"].is_string());
    assert_eq!(
        raw(&handle, "PATCH", path, ct, &patch(Value::Null))
            .await
            .code,
        200
    );
    while !taints(&handle).is_null() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "taint kept after uncordon"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Regression: events were expired by their own `lastTimestamp`, so an event that
/// reported an older time vanished at the next controller pass.
#[tokio::test]
async fn an_event_reporting_an_old_time_lives_an_hour_from_when_it_was_stored() {
    let handle = sandbox::start(fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let old = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let event = json!({"metadata": {"name": "old", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "x"},
        "reason": "R", "message": "m", "type": "Normal", "firstTimestamp": old, "lastTimestamp": old});
    let ct = "Content-Type: application/json\r\n";
    let created = raw(
        &handle,
        "POST",
        "/api/v1/namespaces/shop/events",
        ct,
        &event.to_string(),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    // A cordon's taint shows that a whole controller pass (garbage collection
    // included) ran after the event was stored.
    let cordon = json!({"spec": {"unschedulable": true}}).to_string();
    let patch = "Content-Type: application/merge-patch+json\r\n";
    assert_eq!(
        raw(&handle, "PATCH", "/api/v1/nodes/node-a-1", patch, &cordon)
            .await
            .code,
        200
    );
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while handle
        .object("nodes", "", "node-a-1")
        .is_some_and(|n| n["spec"]["taints"].is_null())
    {
        assert!(tokio::time::Instant::now() < deadline, "no controller pass");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(handle.object("events", "shop", "old").is_some());
}

/// The audit log set in the topology (`auditLog:`) gets a line per request as it is
/// answered, tied to the response by its `Audit-Id` header; a patch is logged at level
/// `Request` with the patch as its request object.
#[tokio::test]
async fn the_config_audit_log_gets_a_line_per_request_matching_its_audit_id() {
    let path = std::env::temp_dir().join(format!("shakedown-audit-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut config = sandbox::SandboxConfig::from_yaml(&format!(
        "namespaces: [shop]\nauditLog: {}\n",
        path.display()
    ))
    .expect("auditLog is a config key");
    config.timings.startup_delay = Duration::from_millis(100);
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");
    let patch = r#"{"metadata":{"labels":{"team":"a"}}}"#;
    let patched = raw(
        &handle,
        "PATCH",
        "/api/v1/namespaces/shop?fieldManager=t",
        "Content-Type: application/merge-patch+json\r\nUser-Agent: audit-test/1\r\n",
        patch,
    )
    .await;
    assert_eq!(patched.code, 200, "{}", patched.body);
    let id = patched
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("audit-id: "))
        .expect("an Audit-Id header")
        .trim()
        .to_owned();
    let lines = std::fs::read_to_string(&path).expect("written before the sandbox stops");
    let event: Value = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON"))
        .find(|e| e["auditID"] == id.as_str())
        .expect("the line of that request");
    assert_eq!(event["verb"], "patch");
    assert_eq!(event["level"], "Request");
    assert_eq!(event["userAgent"], "audit-test/1");
    assert_eq!(
        event["objectRef"],
        json!({"resource": "namespaces", "namespace": "shop", "name": "shop", "apiVersion": "v1"})
    );
    assert_eq!(event["requestObject"], parse(patch));
    assert_eq!(event["responseStatus"]["code"], 200);
    let _ = std::fs::remove_file(&path);
}

/// ConfigMaps are served like kube-apiserver serves them (the kill switch's marker is
/// one): create, get, list, watch, patch, delete, with its Status bodies (409
/// AlreadyExists, 404 NotFound, 422 for a bad key or an immutable change) and dryRun.
#[tokio::test]
async fn config_maps_are_served_like_a_real_api_server() {
    let handle = sandbox::start(sandbox::SandboxConfig::empty(), 0)
        .await
        .expect("sandbox");
    let json = "Content-Type: application/json\r\n";
    let merge = "Content-Type: application/merge-patch+json\r\n";
    let collection = "/api/v1/namespaces/default/configmaps";
    let one = format!("{collection}/halt");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "halt"}, "data": {"reason": "incident"}}).to_string();

    let discovered = get_json(&handle, "/api/v1").await;
    let entry = discovered["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|e| e["name"] == "configmaps"))
        .cloned()
        .expect("discovery lists configmaps");
    assert_eq!(
        (entry["kind"].clone(), entry["namespaced"].clone()),
        (json!("ConfigMap"), json!(true))
    );
    assert_eq!(entry["shortNames"], json!(["cm"]));

    let missing = raw(&handle, "GET", &one, "", "").await;
    assert_eq!(missing.code, 404, "{}", missing.body);
    let status = parse(&missing.body);
    assert_eq!(
        (status["kind"].clone(), status["reason"].clone()),
        (json!("Status"), json!("NotFound"))
    );
    assert_eq!(status["message"], "configmaps \"halt\" not found");
    assert_eq!(status["details"]["kind"], "configmaps");

    let dry = raw(
        &handle,
        "POST",
        &format!("{collection}?dryRun=All"),
        json,
        &body,
    )
    .await;
    assert_eq!(dry.code, 201, "{}", dry.body);
    assert_eq!(parse(&dry.body)["data"]["reason"], "incident");
    assert!(
        handle.object("configmaps", "default", "halt").is_none(),
        "a dry run stores nothing"
    );

    // Watched later from this version: the history replays every change since.
    let before = get_json(&handle, collection).await["metadata"]["resourceVersion"]
        .as_str()
        .expect("list resourceVersion")
        .to_owned();
    let created = raw(&handle, "POST", collection, json, &body).await;
    assert_eq!(created.code, 201, "{}", created.body);
    let created = parse(&created.body);
    assert_eq!(created["metadata"]["namespace"], "default");
    assert!(created["metadata"]["uid"].is_string(), "{created}");
    assert!(created["metadata"]["creationTimestamp"].is_string());

    let again = raw(&handle, "POST", collection, json, &body).await;
    assert_eq!(again.code, 409, "{}", again.body);
    let status = parse(&again.body);
    assert_eq!(status["reason"], "AlreadyExists");
    assert_eq!(status["message"], "configmaps \"halt\" already exists");

    let got = get_json(&handle, &one).await;
    assert_eq!(got["data"]["reason"], "incident");
    let list = get_json(&handle, collection).await;
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");

    let patch = json!({"data": {"who": "alice@host"}}).to_string();
    let patched = raw(&handle, "PATCH", &one, merge, &patch).await;
    assert_eq!(patched.code, 200, "{}", patched.body);
    assert_eq!(
        parse(&patched.body)["data"],
        json!({"reason": "incident", "who": "alice@host"})
    );

    let bad_key = json!({"metadata": {"name": "bad"}, "data": {"no/slash": "x"}}).to_string();
    let refused = raw(&handle, "POST", collection, json, &bad_key).await;
    assert_eq!(refused.code, 422, "{}", refused.body);
    assert_eq!(
        parse(&refused.body)["details"]["causes"][0]["field"],
        "data[no/slash]"
    );

    let frozen =
        json!({"metadata": {"name": "frozen"}, "immutable": true, "data": {"a": "1"}}).to_string();
    assert_eq!(
        raw(&handle, "POST", collection, json, &frozen).await.code,
        201
    );
    let thaw = raw(
        &handle,
        "PATCH",
        &format!("{collection}/frozen"),
        merge,
        &json!({"data": {"a": "2"}}).to_string(),
    )
    .await;
    assert_eq!(thaw.code, 422, "{}", thaw.body);
    assert!(thaw.body.contains("field is immutable"), "{}", thaw.body);

    let dry_delete = raw(&handle, "DELETE", &format!("{one}?dryRun=All"), "", "").await;
    assert_eq!(dry_delete.code, 200, "{}", dry_delete.body);
    assert!(handle.object("configmaps", "default", "halt").is_some());
    let deleted = raw(&handle, "DELETE", &one, "", "").await;
    assert_eq!(deleted.code, 200, "{}", deleted.body);
    assert!(handle.object("configmaps", "default", "halt").is_none());
    let gone = raw(&handle, "DELETE", &one, "", "").await;
    assert_eq!(gone.code, 404, "{}", gone.body);
    assert_eq!(parse(&gone.body)["reason"], "NotFound");

    let watched = raw(
        &handle,
        "GET",
        &format!("{collection}?watch=1&resourceVersion={before}&fieldSelector=metadata.name%3Dhalt&timeoutSeconds=1"),
        "",
        "",
    )
    .await;
    assert_eq!(watched.code, 200, "{}", watched.body);
    let events: Vec<Value> = watched.body.lines().map(parse).collect();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"], "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e["object"]["metadata"]["name"] == "halt"),
        "the field selector keeps other ConfigMaps out: {events:?}"
    );
    handle.shutdown().await;
}

/// Pod Security admission from namespace labels, over the wire as a real server
/// answers: a Pod violating `enforce` is 403 with the plugin's message and the pod in
/// the details; a netem-style ephemeral container (NET_ADMIN) is refused under
/// `baseline`; a Job violating `warn` is stored with a `Warning: 299` header; a
/// namespace without labels admits all of it silently.
#[tokio::test]
async fn pod_security_labels_refuse_pods_and_warn_about_workloads() {
    let handle = sandbox::start(fast_shop(), 0).await.expect("sandbox");
    let json_body = "Content-Type: application/json\r\n";
    let ns = |name: &str, level: &str| {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
            "pod-security.kubernetes.io/enforce": level,
            "pod-security.kubernetes.io/warn": level}}})
        .to_string()
    };
    for (name, level) in [("strict", "restricted"), ("base", "baseline")] {
        let r = raw(
            &handle,
            "POST",
            "/api/v1/namespaces",
            json_body,
            &ns(name, level),
        )
        .await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    let bare = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
    .to_string();

    let r = raw(
        &handle,
        "POST",
        "/api/v1/namespaces/strict/pods",
        json_body,
        &bare,
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.body);
    let status = parse(&r.body);
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(status["details"], json!({"name": "bare", "kind": "pods"}));
    assert_eq!(
        status["message"],
        "pods \"bare\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
    assert!(handle.object("pods", "strict", "bare").is_none());

    // Baseline admits the bare pod, but not NET_ADMIN added to it afterwards.
    let r = raw(
        &handle,
        "POST",
        "/api/v1/namespaces/base/pods",
        json_body,
        &bare,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert!(
        !r.headers.to_lowercase().contains("warning:"),
        "{}",
        r.headers
    );
    let injector = json!({"spec": {"ephemeralContainers": [{"name": "netem", "image": "tc",
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}})
    .to_string();
    let r = raw(
        &handle,
        "PATCH",
        "/api/v1/namespaces/base/pods/bare/ephemeralcontainers",
        "Content-Type: application/strategic-merge-patch+json\r\n",
        &injector,
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.body);
    assert!(
        parse(&r.body)["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("violates PodSecurity \"baseline:latest\": non-default capabilities (container \"netem\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)")),
        "{}",
        r.body
    );

    // A workload is admitted, and warned about from its template.
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "app", "image": "nginx", "securityContext": {
                "allowPrivilegeEscalation": false, "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"]}}}]}}}})
    .to_string();
    let r = raw(
        &handle,
        "POST",
        "/apis/batch/v1/namespaces/strict/jobs",
        json_body,
        &job,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert!(
        r.headers.contains("299 - \"would violate PodSecurity \\\"restricted:latest\\\": seccompProfile (pod or container \\\"app\\\" must set securityContext.seccompProfile.type to \\\"RuntimeDefault\\\" or \\\"Localhost\\\")\""),
        "{}",
        r.headers
    );
    let r = raw(
        &handle,
        "POST",
        "/apis/batch/v1/namespaces/shop/jobs",
        json_body,
        &job,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert!(!r.headers.contains("PodSecurity"), "{}", r.headers);
}
