//! `run --upload URL` and the experiment's `upload:` block (issue 18 item 2): once the
//! reports are written, every file of the run's folder arrives at `URL/<run-id>/<file>`
//! byte for byte, with the block's credentials and headers (never printed); a receiver
//! that fails (500) or hangs is reported on stderr, the exit code stays the run's, and
//! every revert happened before the first upload request.
//!
//! The receiver is a small HTTP server in the test on 127.0.0.1 (one request per
//! connection) that stores what it is sent, or answers 500, or never answers.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;
#[path = "support/sandbox_bench.rs"]
mod sandbox_bench;

use sandbox_bench::Bench;

/// A network-latency fault: it has a revert (the qdisc's removal and the annotation's).
const NETEM: &str = "  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: network-latency, delay: 100ms, duration: 1s}\n";

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Store,
    Fail,
    Hang,
    Unauthorized,
}

/// One PUT as the receiver got it.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    arrived: SystemTime,
}

struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/reports", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let log = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = answer(stream, &log, behaviour);
                });
            }
        });
        Self { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

fn answer(
    stream: std::net::TcpStream,
    log: &Mutex<Vec<Received>>,
    behaviour: Behaviour,
) -> std::io::Result<()> {
    let arrived = SystemTime::now();
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split(' ');
    log.lock().expect("lock").push(Received {
        method: parts.next().unwrap_or("").to_owned(),
        path: parts.next().unwrap_or("").to_owned(),
        headers,
        body,
        arrived,
    });
    let mut stream = stream;
    match behaviour {
        Behaviour::Store => write!(
            stream,
            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Behaviour::Fail => write!(
            stream,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10\r\nConnection: close\r\n\r\ndisk full\n"
        ),
        Behaviour::Unauthorized => write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Behaviour::Hang => {
            std::thread::sleep(Duration::from_secs(120));
            Ok(())
        }
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file of `dir`, relative, `/`-separated, with its bytes.
fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("inside").to_string_lossy();
                files.insert(
                    relative.replace('\\', "/"),
                    std::fs::read(&path).expect("read"),
                );
            }
        }
    }
    files
}

/// The run's folder (through `latest`) and its run id.
fn latest_run(b: &Bench) -> (std::path::PathBuf, String) {
    let dir = std::fs::canonicalize(b.out().join("latest")).expect("latest");
    let run_id = dir
        .file_name()
        .expect("a run folder")
        .to_string_lossy()
        .into_owned();
    (dir, run_id)
}

/// An experiment running `net.yaml` once, with `upload` as its `upload:` block.
fn experiment(b: &Bench, upload: &str) -> std::path::PathBuf {
    b.scenario("net", NETEM);
    let path = b.dir.join("shipped.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: shipped}}\nspec:\n  safety: {{allowedNamespaces: [shop]}}\n  upload: {upload}\n  steps:\n    - scenario: net.yaml\n"
        ),
    )
    .expect("write experiment");
    path
}

/// The last change the run made to the cluster (its revert), as the sandbox logged it.
fn last_mutation(b: &Bench) -> SystemTime {
    b.mutations()
        .iter()
        .filter(|r| r.method != "POST" || !r.path.ends_with("/events"))
        .map(|r| r.time)
        .max()
        .expect("the run changed the cluster")
}

fn no_fault_left(b: &Bench) {
    for pod in b.handle.objects("pods", Some("shop")) {
        assert!(
            pod["metadata"]["annotations"]["shakedown.dev/fault"].is_null(),
            "a pod still carries the fault mark: {pod}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_flag_sends_every_report_file_byte_identical_after_the_reverts() {
    let b = Bench::new("upload-flag").await;
    let receiver = Receiver::start(Behaviour::Store);
    let scenario = b.scenario("net", NETEM);
    let out = b
        .shakedown(&[
            "run",
            scenario.to_str().expect("utf-8"),
            "--upload",
            &receiver.url,
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let (dir, run_id) = latest_run(&b);
    let on_disk = files_of(&dir);
    for report in ["journal.jsonl", "junit.xml", "report.md", "summary.json"] {
        assert!(on_disk.contains_key(report), "no {report} in {on_disk:?}");
    }
    let received = receiver.received();
    let mut got = BTreeMap::new();
    for r in &received {
        assert_eq!(r.method, "PUT", "{}", r.path);
        let relative = r
            .path
            .strip_prefix(&format!("/reports/{run_id}/"))
            .unwrap_or_else(|| panic!("{} is not under /reports/{run_id}/", r.path));
        assert!(
            got.insert(relative.to_owned(), r.body.clone()).is_none(),
            "{relative} sent twice"
        );
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        on_disk.keys().collect::<Vec<_>>()
    );
    for (file, bytes) in &on_disk {
        assert!(got[file] == *bytes, "{file} differs from the file on disk");
    }
    let types: BTreeMap<&str, &str> = received
        .iter()
        .map(|r| {
            (
                r.path.rsplit('.').next().unwrap_or(""),
                r.headers["content-type"].as_str(),
            )
        })
        .collect();
    assert_eq!(types["md"], "text/markdown; charset=utf-8");
    assert_eq!(types["xml"], "application/xml");
    let first = received.iter().map(|r| r.arrived).min().expect("uploads");
    assert!(
        last_mutation(&b) <= first,
        "a change to the cluster came after the upload started"
    );
    no_fault_left(&b);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "uploaded {} file(s) to {}/{run_id}/",
            on_disk.len(),
            receiver.url
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_block_sends_its_token_and_headers_and_never_prints_the_token() {
    let b = Bench::new("upload-block").await;
    let receiver = Receiver::start(Behaviour::Store);
    let token = "upl0ad-t0ken-9f8e7d6c5b4a";
    let path = experiment(
        &b,
        &format!(
            "{{url: '{}', bearerTokenEnv: SHIP_TOKEN, headers: {{X-Scope-OrgID: team-a}}, timeout: 5s}}",
            receiver.url
        ),
    );
    let out = b
        .command(&["run", "-v", path.to_str().expect("utf-8")])
        .env("SHIP_TOKEN", token)
        .output()
        .await
        .expect("run shakedown");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let received = receiver.received();
    assert!(
        !received.is_empty(),
        "nothing was uploaded:\n{}",
        show(&out)
    );
    for r in &received {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {token}").as_str()),
            "{}",
            r.path
        );
        assert_eq!(r.headers["x-scope-orgid"], "team-a");
    }
    let (dir, _) = latest_run(&b);
    let printed = format!("{}{}", show(&out), String::from_utf8_lossy(&out.stdout));
    assert!(
        !printed.contains(token),
        "the token was printed:\n{printed}"
    );
    for (file, bytes) in files_of(&dir) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(token),
            "{file} holds the token"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_failure_500_is_reported_and_leaves_exit_code_and_reverts_alone() {
    let b = Bench::new("upload-500").await;
    let receiver = Receiver::start(Behaviour::Fail);
    let scenario = b.scenario("net", NETEM);
    let out = b
        .shakedown(&[
            "run",
            scenario.to_str().expect("utf-8"),
            "--upload",
            &receiver.url,
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    no_fault_left(&b);
    let received = receiver.received();
    let first = received.iter().map(|r| r.arrived).min().expect("uploads");
    assert!(last_mutation(&b) <= first, "a revert came after the upload");
    let (dir, run_id) = latest_run(&b);
    let files = files_of(&dir).len();
    // A 500 is retried: every file was tried three times.
    assert_eq!(
        received.len(),
        files * shakedown::probes::prometheus::PUT_ATTEMPTS as usize,
        "{}",
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: the upload to {}/{run_id}/ is incomplete (0 file(s) sent; the exit code is unchanged",
            receiver.url
        )) && stderr.contains("answered 500 Internal Server Error")
            && stderr.contains("disk full"),
        "{stderr}"
    );
    b.assert_finished_with(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_a_hung_receiver_is_bounded_and_reported() {
    let b = Bench::new("upload-hang").await;
    let receiver = Receiver::start(Behaviour::Hang);
    let path = experiment(&b, &format!("{{url: '{}', timeout: 1s}}", receiver.url));
    let started = std::time::Instant::now();
    let out = b.shakedown(&["run", path.to_str().expect("utf-8")]).await;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    no_fault_left(&b);
    // Three attempts of 1 s and their backoff for the whole folder, not per file.
    assert!(took < Duration::from_secs(30), "the run took {took:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is incomplete (0 file(s) sent")
            && stderr.contains("did not answer within 1s"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_flag_with_credentials_in_the_url_is_refused_before_anything_is_touched() {
    let b = Bench::new("upload-creds").await;
    let scenario = b.scenario("net", NETEM);
    let out = b
        .shakedown(&[
            "run",
            scenario.to_str().expect("utf-8"),
            "--upload",
            "http://ci:hunter2-secret@127.0.0.1:1/reports",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(b.mutations().is_empty(), "something was touched");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--upload") && !stderr.contains("hunter2-secret"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sends_the_folder_of_a_run_that_could_not_start() {
    let b = Bench::new("upload-refused").await;
    let receiver = Receiver::start(Behaviour::Store);
    // No pod matches: preflight refuses (exit 3) and the run's folder says why.
    let scenario = b.scenario(
        "none",
        "  target: {pods: {namespace: shop, selector: app=nothing-here, mode: one}}\n  fault: {type: pod-delete}\n",
    );
    let out = b
        .shakedown(&[
            "run",
            scenario.to_str().expect("utf-8"),
            "--upload",
            &receiver.url,
        ])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(b.mutations().is_empty(), "something was touched");
    let (dir, run_id) = latest_run(&b);
    let sent: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
    for file in files_of(&dir).keys() {
        assert!(
            sent.contains(&format!("/reports/{run_id}/{file}")),
            "{file} was not sent: {sent:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_block_that_cannot_be_set_up_is_exit_2_before_anything_is_touched() {
    let b = Bench::new("upload-setup").await;
    let missing = b.dir.join("no-such-ca.pem");
    let path = experiment(
        &b,
        &format!(
            "{{url: 'https://127.0.0.1:1/r', caFile: '{}'}}",
            missing.display()
        ),
    );
    let out = b.shakedown(&["run", path.to_str().expect("utf-8")]).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(b.mutations().is_empty(), "something was touched");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("upload: cannot read the CA bundle") && stderr.contains("no-such-ca.pem"),
        "{stderr}"
    );

    // A misspelt key is the validator's file:line:col error, like any other.
    let typo = experiment(&b, "{urll: 'https://127.0.0.1:1/r'}");
    let out = b
        .shakedown(&["validate", typo.to_str().expect("utf-8")])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shipped.yaml:6:12: unknown key `urll` in upload"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_refused_401_is_not_retried_and_says_where_credentials_go() {
    let b = Bench::new("upload-401").await;
    let receiver = Receiver::start(Behaviour::Unauthorized);
    let scenario = b.scenario("net", NETEM);
    let out = b
        .shakedown(&[
            "run",
            scenario.to_str().expect("utf-8"),
            "--upload",
            &receiver.url,
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let (dir, _) = latest_run(&b);
    // A refusal is final: one attempt per file.
    assert_eq!(receiver.received().len(), files_of(&dir).len());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("answered 401 Unauthorized")
            && stderr.contains(
                "set bearerTokenEnv, bearerTokenFile or basicAuth in the experiment's upload: block"
            )
            && !stderr.contains("--prometheus-token"),
        "{stderr}"
    );
}
