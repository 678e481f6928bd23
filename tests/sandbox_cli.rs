//! `shakedown sandbox` as a process: prints its URL, writes a kubeconfig, loads a
//! topology file, and stops on SIGTERM with the documented exit code.

use std::io::{BufRead, BufReader};
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
