//! `shakedown sandbox` as a process: prints its URL, writes a kubeconfig, loads a
//! topology file, and stops on SIGTERM with the documented exit code.

use std::io::{BufRead, BufReader};
use std::ops::Not;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shakedown-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn sandbox_serves_a_topology_file_writes_a_kubeconfig_and_stops_on_sigterm() {
    let dir = temp_dir("serve");
    let topology = dir.join("topology.yaml");
    std::fs::write(
        &topology,
        "nodes:\n  - { name: solo, zone: z1 }\ndeployments:\n  - { namespace: team, name: api, replicas: 2 }\n",
    )
    .expect("topology");
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["sandbox", "--port", "0", "--config"])
        .arg(&topology)
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shakedown runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a line");
    let url = first
        .trim()
        .strip_prefix("sandbox serving at ")
        .expect("the URL first")
        .to_owned();
    let addr = url.strip_prefix("http://").expect("plain http").to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let written = std::fs::read_to_string(&kubeconfig).expect("kubeconfig written");
    assert!(written.contains(&format!("server: {url}")), "{written}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pods = http_get(&addr, "/api/v1/namespaces/team/pods");
        if pods.matches("\"nodeName\":\"solo\"").count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "pods never scheduled: {pods}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let nodes = http_get(&addr, "/api/v1/nodes");
    assert!(
        nodes.contains("\"topology.kubernetes.io/zone\":\"z1\""),
        "{nodes}"
    );

    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(143), "SIGTERM maps to 143");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sandbox_rejects_an_invalid_topology_with_exit_2() {
    let dir = temp_dir("invalid");
    let topology = dir.join("topology.yaml");
    std::fs::write(&topology, "nodes:\n  - { name: solo }\n").expect("topology");
    let out = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["sandbox", "--config"])
        .arg(&topology)
        .output()
        .expect("shakedown runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid sandbox config") && stderr.contains("zone"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Regression (issue 10, finding 10): a huge duration in the sandbox's config panicked
/// (exit 101) instead of being refused as invalid input.
#[test]
fn sandbox_refuses_a_huge_duration_with_exit_2_not_a_panic() {
    let dir = temp_dir("huge-duration");
    let topology = dir.join("topology.yaml");
    std::fs::write(&topology, "timings: { startupDelay: 100000000000d }\n").expect("topology");
    let out = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["sandbox", "--port", "0", "--config"])
        .arg(&topology)
        .output()
        .expect("shakedown runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid sandbox config") && stderr.contains("too long"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `shakedown sandbox ARGS` and returns it with its `host:port`, read from the
/// first line it prints.
fn start_sandbox(args: &[&std::ffi::OsStr]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["sandbox", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shakedown runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a line");
    let addr = first
        .trim()
        .strip_prefix("sandbox serving at http://")
        .unwrap_or_else(|| panic!("the URL first: {first:?}"))
        .to_owned();
    (child, addr)
}

/// Every line of an audit log, each parsed as JSON (a line that is not fails the test).
fn audit_events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("audit log readable")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[test]
fn sandbox_audit_log_records_a_pod_delete_run_as_kubernetes_audit_events() {
    let dir = temp_dir("audit");
    let topology = dir.join("topology.yaml");
    std::fs::write(
        &topology,
        format!(
            "{}timings: {{ startupDelay: 300ms, shutdownDelay: 200ms }}\n",
            shakedown_sandbox::config::DEFAULT_TOPOLOGY
        ),
    )
    .expect("topology");
    let kubeconfig = dir.join("kubeconfig");
    let audit_log = dir.join("audit.jsonl");
    let (mut child, addr) = start_sandbox(&[
        "--config".as_ref(),
        topology.as_os_str(),
        "--kubeconfig-out".as_ref(),
        kubeconfig.as_os_str(),
        "--audit-log".as_ref(),
        audit_log.as_os_str(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(&addr, "/apis/apps/v1/namespaces/shop/deployments/checkout")
        .contains("\"availableReplicas\":3")
        .not()
    {
        assert!(Instant::now() < deadline, "checkout never became available");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Lines are flushed as requests complete, not when the sandbox stops.
    let polled = audit_events(&audit_log);
    assert!(
        polled
            .iter()
            .any(|e| e["verb"] == "get" && e["objectRef"]["name"] == "checkout"),
        "{polled:?}"
    );

    let scenario = dir.join("delete.yaml");
    std::fs::write(
        &scenario,
        "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {name: audited}\nspec:\n  safety: {allowedNamespaces: [shop]}\n  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n  hypotheses:\n    - {name: ready, kube: {deployment: checkout, namespace: shop}, expect: \">= 3\", phases: [before, after], every: 200ms}\n  recovery: {within: 30s}\n",
    )
    .expect("scenario");
    let mut run = Command::new(env!("CARGO_BIN_EXE_shakedown"));
    run.arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--output-dir")
        .arg(dir.join("out"))
        .args(["--yes", "run"])
        .arg(&scenario);
    for marker in shakedown::run::ci::MARKERS {
        run.env_remove(marker);
    }
    let out = run.output().expect("shakedown run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let events = audit_events(&audit_log);
    for event in &events {
        assert_eq!(event["apiVersion"], "audit.k8s.io/v1", "{event}");
        assert_eq!(event["kind"], "Event", "{event}");
        assert!(
            event["auditID"].as_str().is_some_and(|id| id.len() == 36),
            "{event}"
        );
        assert!(
            event["requestURI"]
                .as_str()
                .is_some_and(|u| u.starts_with('/')),
            "{event}"
        );
        for stamp in ["requestReceivedTimestamp", "stageTimestamp"] {
            let text = event[stamp].as_str().unwrap_or_default();
            assert!(
                text.len() == 27 && text.ends_with('Z') && text.as_bytes()[19] == b'.',
                "RFC 3339 with microseconds: {event}"
            );
        }
    }
    // A watch (shakedown watches the kill switch's marker) has two lines with one ID,
    // `ResponseStarted` and `ResponseComplete`, as on a real server: an ID names one
    // request, so each (ID, stage) pair is unique.
    let ids: std::collections::HashSet<(&str, &str)> = events
        .iter()
        .filter_map(|e| Some((e["auditID"].as_str()?, e["stage"].as_str()?)))
        .collect();
    assert_eq!(ids.len(), events.len(), "audit IDs are unique per stage");

    let from_shakedown = |e: &&serde_json::Value| {
        e["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("shakedown/") && ua.contains("(run "))
    };
    let deletes: Vec<&serde_json::Value> = events
        .iter()
        .filter(from_shakedown)
        .filter(|e| e["verb"] == "delete" && e["objectRef"]["resource"] == "pods")
        .collect();
    assert_eq!(deletes.len(), 1, "one pod deleted: {deletes:?}");
    let delete = deletes[0];
    let pod = delete["objectRef"]["name"].as_str().unwrap_or_default();
    assert!(pod.starts_with("checkout-"), "{delete}");
    assert_eq!(delete["objectRef"]["resource"], "pods");
    assert_eq!(delete["objectRef"]["namespace"], "shop");
    assert_eq!(delete["objectRef"]["apiVersion"], "v1");
    assert!(
        delete["objectRef"].get("apiGroup").is_none(),
        "core: {delete}"
    );
    assert_eq!(delete["level"], "Request");
    assert_eq!(delete["stage"], "ResponseComplete");
    assert_eq!(delete["responseStatus"]["code"], 200);
    assert_eq!(
        delete["requestURI"],
        format!("/api/v1/namespaces/shop/pods/{pod}")
    );
    assert!(
        delete["requestObject"].is_object(),
        "DeleteOptions: {delete}"
    );

    let verbs: std::collections::HashSet<&str> = events
        .iter()
        .filter(from_shakedown)
        .filter_map(|e| e["verb"].as_str())
        .collect();
    for verb in ["get", "list", "delete", "create"] {
        assert!(verbs.contains(verb), "{verb} in {verbs:?}");
    }
    // The run watched its namespace's pods and the owner until it was whole again; a
    // watch is logged as one when its stream starts, and again when it ends.
    assert!(
        events
            .iter()
            .filter(from_shakedown)
            .any(|e| e["verb"] == "watch" && e["objectRef"]["resource"] == "pods"),
        "the run's recovery watch"
    );
    http_get(
        &addr,
        "/api/v1/namespaces/shop/pods?watch=true&timeoutSeconds=1",
    );
    // Two lines, as on a real server: when the stream started and when it ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (started, completed) = loop {
        let events = audit_events(&audit_log);
        let watches: Vec<serde_json::Value> = events
            .into_iter()
            // The run itself watched the kill switch's marker and the pods; this is the
            // test's own.
            .filter(|e| !from_shakedown(&e))
            .filter(|e| e["verb"] == "watch" && e["objectRef"]["resource"] == "pods")
            .collect();
        if let [started, completed] = watches.as_slice() {
            break (started.clone(), completed.clone());
        }
        assert!(Instant::now() < deadline, "{watches:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(started["stage"], "ResponseStarted", "{started}");
    assert_eq!(started["objectRef"]["resource"], "pods", "{started}");
    assert_eq!(completed["stage"], "ResponseComplete", "{completed}");
    assert_eq!(completed["auditID"], started["auditID"]);
    assert!(
        completed["stageTimestamp"].as_str() > started["stageTimestamp"].as_str(),
        "{started} {completed}"
    );
    for read in events
        .iter()
        .filter(|e| matches!(e["verb"].as_str(), Some("get" | "list" | "watch")))
    {
        assert_eq!(read["level"], "Metadata", "{read}");
        assert!(read.get("requestObject").is_none(), "{read}");
    }
    assert!(
        events
            .iter()
            .filter(from_shakedown)
            .any(|e| e["verb"] == "list"
                && e["objectRef"]["resource"] == "pods"
                && e["objectRef"]["namespace"] == "shop"),
        "the target list (the inventory of namespace shop) is there"
    );

    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sandbox_refuses_an_unwritable_audit_log_with_exit_2() {
    let dir = temp_dir("audit-unwritable");
    let out = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["sandbox", "--port", "0", "--audit-log"])
        .arg(dir.join("no-such-dir").join("audit.jsonl"))
        .output()
        .expect("shakedown runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write the audit log") && stderr.contains("no-such-dir"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `shakedown sandbox --rbac` serves HTTPS (kubectl sends ServiceAccount tokens only
/// over TLS) with the bootstrap roles seeded, and the kubeconfig it writes (its CA, the
/// admin's token) lets shakedown itself plan against it.
#[test]
fn sandbox_rbac_serves_https_and_its_kubeconfig_is_the_admin() {
    let dir = temp_dir("rbac");
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["sandbox", "--port", "0", "--rbac", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shakedown runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a line");
    assert!(
        first
            .trim()
            .starts_with("sandbox serving at https://127.0.0.1:"),
        "{first:?}"
    );
    let written = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    assert!(
        written.contains("certificate-authority-data: "),
        "{written}"
    );
    let scenario = dir.join("delete.yaml");
    std::fs::write(
        &scenario,
        "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {name: tls}\nspec:\n  safety: {allowedNamespaces: [shop]}\n  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n",
    )
    .expect("scenario");
    let out = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("plan")
        .arg(&scenario)
        .output()
        .expect("shakedown plan");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A pick names a live pod (`checkout-<hash>`): the plan read the cluster over TLS.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("checkout-"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
