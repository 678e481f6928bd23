//! Secrets never leave the process, and names cannot drive the terminal (issue 10,
//! findings 8 and 10). Each run goes through the CLI against an in-process sandbox and a
//! small fake Prometheus that echoes the credentials it receives (the `Authorization`
//! header, its decoded secret, percent-encoded, and an extra header) in a 401 body, a
//! 500 error, the `warnings` of a partial answer and a label name and value. A fake is
//! right here: it tests shakedown's scrubbing, not PromQL.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use shakedown_sandbox::{self as sandbox, SandboxHandle};

#[path = "../crates/sandbox/tests/common/mod.rs"]
mod common;

/// A Prometheus that answers by the query's name, echoing what it was sent.
struct EchoPrometheus {
    url: String,
    /// Every `Authorization` header received.
    seen: Arc<Mutex<Vec<String>>>,
}

impl EchoPrometheus {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = answer(stream, &log);
                });
            }
        });
        Self { url, seen }
    }

    fn authorizations(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

/// One request, one response (`Connection: close`).
fn answer(stream: std::net::TcpStream, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let headers = read_headers(&mut reader)?;
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let target = request_line.split(' ').nth(1).unwrap_or("");
    let params = format!(
        "{}&{}",
        target.split_once('?').map_or("", |(_, q)| q),
        String::from_utf8_lossy(&body)
    );
    let query = params
        .split('&')
        .find_map(|pair| pair.strip_prefix("query="))
        .unwrap_or_default()
        .to_owned();
    let authorization = headers.get("authorization").cloned().unwrap_or_default();
    log.lock().expect("lock").push(authorization.clone());
    let secret = match authorization.split_once(' ') {
        Some(("Basic", b64)) => BASE64_STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_owned()))
            .unwrap_or_default(),
        Some((_, token)) => token.to_owned(),
        None => String::new(),
    };
    let echo = format!(
        "authorization={authorization} secret={secret} urlencoded={} x-api-key={}",
        percent(&secret),
        headers.get("x-api-key").map_or("", String::as_str)
    );
    let range = target.starts_with("/api/v1/query_range");
    let (status, content) = if query.contains("echo_401") {
        // Long enough that a secret straddles the 200-character snippet cut.
        (
            "401 Unauthorized",
            format!("denied: {} {echo}", "x".repeat(183)),
        )
    } else if query.contains("echo_500") {
        let body = serde_json::json!({"status": "error", "errorType": "internal", "error": echo});
        ("500 Internal Server Error", body.to_string())
    } else {
        let metric =
            serde_json::json!({"__name__": "up", "leak": echo, secret.clone(): "as a label name"});
        let data = if range {
            serde_json::json!({"resultType": "matrix", "result": [{"metric": metric, "values": [[now(), "1"]]}]})
        } else {
            serde_json::json!({"resultType": "vector", "result": [{"metric": metric, "value": [now(), "1"]}]})
        };
        let mut body = serde_json::json!({"status": "success", "data": data});
        if query.contains("echo_warn") {
            body["warnings"] = serde_json::json!([echo.clone()]);
        }
        ("200 OK", body.to_string())
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{content}",
        content.len()
    )?;
    stream.flush()
}

/// A request's headers up to the blank line, by lower-case name.
fn read_headers(reader: &mut impl BufRead) -> std::io::Result<BTreeMap<String, String>> {
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// RFC 3986 percent-encoding, as a proxy quoting a query string would.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Bench {
    _handle: SandboxHandle,
    dir: PathBuf,
    kubeconfig: PathBuf,
    prometheus: EchoPrometheus,
}

async fn bench(tag: &str) -> Bench {
    let handle = sandbox::start(common::fast_shop(), 0)
        .await
        .expect("sandbox starts");
    let dir = std::env::temp_dir().join(format!("shakedown-secrets-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    let kubeconfig = dir.join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    Bench {
        _handle: handle,
        dir,
        kubeconfig,
        prometheus: EchoPrometheus::start(),
    }
}

impl Bench {
    /// An experiment that touches nothing (a pause) while experiment-wide hypotheses ask
    /// the echoing Prometheus: one answers (the echo in a label name and value) in every
    /// phase; during the pause, one answers partially (the echo in its `warnings`) and
    /// two fail with 401 and 500 (only during: an `after` check that never holds would
    /// wait out the whole recovery window).
    fn experiment(&self, name: &str, prometheus: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.yaml"));
        let text = format!(
            "apiVersion: shakedown.dev/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  safety: {{allowedNamespaces: [shop]}}
  prometheus:
    url: {url}
{prometheus}
  hypotheses:
    - {{name: answers, promql: echo_ok, expect: '> 0', phases: [before, during, after], every: 300ms}}
    - {{name: partial, promql: echo_warn, expect: '> 0', phases: [during], every: 300ms}}
    # A 500 is retried (250 ms, then 500 ms) within the sample's budget (90 % of
    # `every`), so its answer is recorded rather than cut off as a timeout.
    - {{name: unauthorized, promql: echo_401, expect: '> 0', phases: [during], every: 300ms}}
    - {{name: server error, promql: echo_500, expect: '> 0', phases: [during], every: 1s}}
  steps:
    - pause: 1s
",
            url = self.prometheus.url
        );
        std::fs::write(&path, text).expect("write experiment");
        path
    }

    /// `shakedown --yes run FILE` into `out/<tag>`, outside any CI.
    fn command(&self, tag: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"));
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--output-dir")
            .arg(self.out(tag))
            .args(["--yes", "--seed", "7"])
            .args(args)
            .env_remove("SHAKEDOWN_PROMETHEUS_TOKEN")
            .env_remove("SHAKEDOWN_PROMETHEUS_URL")
            .kill_on_drop(true);
        for marker in shakedown::run::ci::MARKERS {
            command.env_remove(marker);
        }
        command
    }

    fn out(&self, tag: &str) -> PathBuf {
        self.dir.join("out").join(tag)
    }
}

/// Every encoding a leak could take: plain, base64 of `user:secret` and of the secret,
/// percent-encoded.
fn leak_forms(user: &str, secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        BASE64_STANDARD.encode(format!("{user}:{secret}")),
        BASE64_STANDARD.encode(secret),
        percent(secret),
    ]
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Fails naming where any form of a secret appears: stdout, stderr or a file in `dir`.
fn assert_nowhere(forms: &[String], out: &Output, dir: &Path) {
    let mut places = vec![
        ("stdout".to_owned(), out.stdout.clone()),
        ("stderr".to_owned(), out.stderr.clone()),
    ];
    let files = files_under(dir);
    assert!(
        files.iter().any(|f| f.ends_with("journal.jsonl"))
            && files.iter().any(|f| f.ends_with("junit.xml"))
            && files.iter().any(|f| f.ends_with("summary.json"))
            && files.iter().any(|f| f.ends_with("report.md"))
            && files
                .iter()
                .any(|f| f.extension().is_some_and(|e| e == "svg")),
        "every report is written: {files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).expect("read report");
        places.push((file.display().to_string(), bytes));
    }
    for form in forms {
        for (place, bytes) in &places {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(form.as_str()),
                "`{form}` leaked into {place}:\n{text}"
            );
        }
    }
}

/// The echo really reached the outputs, scrubbed: no pass because nothing was shown.
fn assert_echo_scrubbed(out: &Output, dir: &Path, scheme: &str) {
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).expect("journal");
    let header = format!("authorization={scheme} *** secret=*** urlencoded=***");
    for shown in [
        "answered 401",
        "answered 500",
        "partial answer",
        header.as_str(),
    ] {
        assert!(
            journal.contains(shown),
            "`{shown}` not in the journal:\n{journal}"
        );
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit");
    assert!(junit.contains("***"), "{junit}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("***"), "{stderr}");
}

/// One credential path: how it is given, and the secret that must not come out.
struct CredentialPath {
    tag: &'static str,
    user: &'static str,
    secret: &'static str,
    /// The spec's `prometheus` keys (indented under it).
    spec: String,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

/// Regression (issue 10, finding 8): `scrub()` replaced only the plaintext secret and
/// only in error messages; base64 of `user:password` echoed by a proxy, and a token in
/// `warnings` or a label, reached stderr, the journal, JUnit, the summary, Markdown and
/// an SVG chart.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_leaves_through_any_credential_path_in_any_encoding() {
    let b = bench("every-path").await;
    let token_file = b.dir.join("token");
    std::fs::write(&token_file, "Tf1-token/file+Mark=\n").expect("token file");
    let spec_token_file = b.dir.join("spec-token");
    std::fs::write(&spec_token_file, "Sf2-spec/file+Mark=\n").expect("spec token file");
    let password_file = b.dir.join("password");
    std::fs::write(&password_file, "Pf3-pass/file+Mark=\n").expect("password file");
    let paths = [
        CredentialPath {
            tag: "basic-env",
            user: "shake-user",
            secret: "Pe4-pass/env+Mark=",
            spec: "    basicAuth: {username: shake-user, passwordEnv: SD_SECRET_PW}\n    headers: {X-Api-Key: Hk5-header/Mark+x, X-Scope-OrgID: shop}".into(),
            args: vec![],
            env: vec![("SD_SECRET_PW", "Pe4-pass/env+Mark=".into())],
        },
        CredentialPath {
            tag: "basic-file",
            user: "shake-user",
            secret: "Pf3-pass/file+Mark=",
            spec: format!(
                "    basicAuth: {{username: shake-user, passwordFile: {}}}",
                password_file.display()
            ),
            args: vec![],
            env: vec![],
        },
        CredentialPath {
            tag: "token-flag",
            user: "",
            secret: "Tg6-token/flag+Mark=",
            spec: String::new(),
            args: vec!["--prometheus-token".into(), "Tg6-token/flag+Mark=".into()],
            env: vec![],
        },
        CredentialPath {
            tag: "token-env",
            user: "",
            secret: "Te7-token/env+Mark=",
            spec: String::new(),
            args: vec![],
            env: vec![("SHAKEDOWN_PROMETHEUS_TOKEN", "Te7-token/env+Mark=".into())],
        },
        CredentialPath {
            tag: "token-file-flag",
            user: "",
            secret: "Tf1-token/file+Mark=",
            spec: String::new(),
            args: vec![
                "--prometheus-token-file".into(),
                token_file.display().to_string(),
            ],
            env: vec![],
        },
        CredentialPath {
            tag: "spec-token-env",
            user: "",
            secret: "Se8-spec/env+Mark=",
            spec: "    bearerTokenEnv: SD_SECRET_TOKEN".into(),
            args: vec![],
            env: vec![("SD_SECRET_TOKEN", "Se8-spec/env+Mark=".into())],
        },
        CredentialPath {
            tag: "spec-token-file",
            user: "",
            secret: "Sf2-spec/file+Mark=",
            spec: format!("    bearerTokenFile: {}", spec_token_file.display()),
            args: vec![],
            env: vec![],
        },
    ];
    let runs = paths.iter().map(|p| {
        let file = b.experiment(&format!("leak-{}", p.tag), &p.spec);
        let mut command = b.command(p.tag, &[]);
        command.args(&p.args).arg("run").arg(&file);
        for (name, value) in &p.env {
            command.env(name, value);
        }
        async move { command.output().await.expect("run shakedown") }
    });
    let outputs = futures::future::join_all(runs).await;
    let received = b.prometheus.authorizations();
    for (p, out) in paths.iter().zip(&outputs) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}: 401 and 500 answers are errors (exit 3), never a pass\n{stderr}",
            p.tag
        );
        let expected = if p.user.is_empty() {
            format!("Bearer {}", p.secret)
        } else {
            format!(
                "Basic {}",
                BASE64_STANDARD.encode(format!("{}:{}", p.user, p.secret))
            )
        };
        assert!(
            received.contains(&expected),
            "{}: Prometheus never received the credential",
            p.tag
        );
        let mut forms = leak_forms(p.user, p.secret);
        forms.push(expected);
        if p.tag == "basic-env" {
            forms.push("Hk5-header/Mark+x".into());
        }
        assert_nowhere(&forms, out, &b.out(p.tag));
        let scheme = if p.user.is_empty() { "Bearer" } else { "Basic" };
        assert_echo_scrubbed(out, &b.out(p.tag).join("latest"), scheme);
    }
}

/// Regression (issue 10, finding 8): `?api_key=…` in the Prometheus URL was accepted and
/// copied into reports. Like user info, it is refused before anything runs (exit 2),
/// from a flag, its environment variable or a spec, and never echoed.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_a_prometheus_url_are_refused_with_exit_2_and_not_echoed() {
    let b = bench("url-credentials").await;
    let marker = "Uq9-query-Mark";
    let experiment = b.experiment("plain", "");
    let file = experiment.to_str().expect("utf8");
    let by_flag = format!("http://127.0.0.1:9/prometheus?orgId=1&api_key={marker}");
    let by_userinfo = format!("http://admin:{marker}@127.0.0.1:9/prometheus");
    let cases: Vec<(&str, tokio::process::Command)> = vec![
        ("flag", {
            let mut c = b.command("flag", &["--prometheus-url", &by_flag, "run", file]);
            c.env("UNUSED", "1");
            c
        }),
        ("env", {
            let mut c = b.command("env", &["run", file]);
            c.env(
                "SHAKEDOWN_PROMETHEUS_URL",
                format!("http://127.0.0.1:9/?access_token={marker}"),
            );
            c
        }),
        (
            "userinfo flag",
            b.command("userinfo", &["--prometheus-url", &by_userinfo, "run", file]),
        ),
    ];
    for (what, mut command) in cases {
        let out = command.output().await.expect("run shakedown");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("must not carry"), "{what}: {stderr}");
        assert!(!stderr.contains(marker), "{what}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(marker));
    }
    assert!(
        b.prometheus.authorizations().is_empty(),
        "nothing was asked of Prometheus"
    );
    let in_spec = b.dir.join("in-spec.yaml");
    let text = std::fs::read_to_string(&experiment)
        .expect("experiment")
        .replace(
            &format!("url: {}", b.prometheus.url),
            &format!("url: {}/?x=1&token={marker}", b.prometheus.url),
        );
    std::fs::write(&in_spec, text).expect("write");
    let out = b
        .command("spec", &["validate", in_spec.to_str().expect("utf8")])
        .output()
        .await
        .expect("validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("in-spec.yaml:7:10: prometheus.url must not carry a credential in its query string (`token=…`)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(marker),
        "the offending line is not quoted: {stderr}"
    );
}

/// Regression (issue 10, finding 10): escape sequences in hypothesis or step names were
/// printed raw to the terminal, where they can rewrite earlier lines. Every control
/// character and bidi override is written out (`\x1b`, `\u202e`) on the terminal and in
/// every report; no raw byte of one is left anywhere.
#[tokio::test(flavor = "multi_thread")]
async fn escape_sequences_in_names_are_written_out_on_the_terminal_and_in_reports() {
    let b = bench("escapes").await;
    let path = b.dir.join("escapes.yaml");
    let text = format!(
        "apiVersion: shakedown.dev/v1alpha1
kind: Experiment
metadata: {{name: escapes}}
spec:
  safety: {{allowedNamespaces: [shop]}}
  prometheus: {{url: {url}}}
  hypotheses:
    - name: \"ok\\r\\e[2K\\e[1Afake PASSED\\a \\u202Egnp.exe\"
      promql: echo_ok
      expect: '> 0'
      phases: [before, during, after]
      every: 300ms
  steps:
    - name: \"wait \\e]0;owned\\a\\e[31mred\"
      pause: 1s
",
        url = b.prometheus.url
    );
    std::fs::write(&path, text).expect("write");
    let file = path.to_str().expect("utf8");
    let run = b
        .command("run", &["run", file])
        .output()
        .await
        .expect("run");
    let plan = b
        .command("plan", &["plan", file])
        .output()
        .await
        .expect("plan");
    let plan_json = b
        .command("plan", &["plan", "-o", "json", file])
        .output()
        .await
        .expect("plan json");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let raw = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        text.contains('\u{1b}')
            || text.contains('\u{7}')
            || text.contains('\r')
            || text.contains('\u{202e}')
    };
    for (what, out) in [("run", &run), ("plan", &plan), ("plan -o json", &plan_json)] {
        assert!(!raw(&out.stdout), "{what}: raw control on stdout");
        assert!(!raw(&out.stderr), "{what}: raw control on stderr");
    }
    assert!(
        stderr.contains(r"ok\r\x1b[2K\x1b[1Afake PASSED\x07 \u202egnp.exe"),
        "the name is shown written out: {stderr}"
    );
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_text.contains(r"wait \x1b]0;owned\x07\x1b[31mred"),
        "{plan_text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&plan_json.stdout).expect("plan -o json stays valid JSON");
    assert!(json.to_string().contains("owned"), "{json}");
    let files = files_under(&b.out("run"));
    assert!(
        files.iter().any(|f| f.ends_with("report.md")),
        "reports written: {files:?}"
    );
    for file in files.iter().filter(|f| !f.ends_with("journal.jsonl")) {
        let bytes = std::fs::read(file).expect("read");
        assert!(!raw(&bytes), "raw control in {}", file.display());
    }
    let report = std::fs::read_to_string(b.out("run").join("latest/report.md")).expect("report");
    assert!(report.contains(r"\\x1b\[2K"), "{report}");
    let junit = std::fs::read_to_string(b.out("run").join("latest/junit.xml")).expect("junit");
    assert!(
        junit.contains(r"\x1b[1Afake PASSED\x07 \u202egnp.exe"),
        "{junit}"
    );
}

/// An API server that answers every request 403 with a `Status` echoing the request's
/// `Authorization` header, as a misbehaving proxy or webhook might.
fn start_echoing_api_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut request_line = String::new();
                reader.read_line(&mut request_line)?;
                let authorization = read_headers(&mut reader)?
                    .remove("authorization")
                    .unwrap_or_default();
                let body = serde_json::json!({
                    "kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": format!("forbidden: the request carried Authorization={authorization}"),
                    "reason": "Forbidden", "code": 403,
                })
                .to_string();
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    url
}

/// Regression (issue 10, left for later): the kubeconfig's own bearer token was not
/// registered with the redactor, so an API error that echoed it was shown as it came.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_error_echoing_the_kubeconfig_token_is_scrubbed() {
    const TOKEN: &str = "kubeconfig-bearer-7c1d9e0a5b";
    let server = start_echoing_api_server();
    let dir = std::env::temp_dir().join(format!("shakedown-kubetoken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{server}'}}}}]\nusers: [{{name: u, user: {{token: {TOKEN}}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u, namespace: shop}}}}]\ncurrent-context: x\n"
        ),
    )
    .expect("kubeconfig");
    let scenario = dir.join("pd.yaml");
    std::fs::write(
        &scenario,
        "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {name: pd}\nspec:\n  safety: {allowedNamespaces: [shop]}\n  target: {pods: {namespace: shop, selector: app=checkout, mode: one}}\n  fault: {type: pod-delete}\n",
    )
    .expect("scenario");
    let out_dir = dir.join("out");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"));
    command
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--output-dir")
        .arg(&out_dir)
        .args(["--yes", "run"])
        .arg(&scenario)
        .kill_on_drop(true);
    for marker in shakedown::run::ci::MARKERS {
        command.env_remove(marker);
    }
    let out = command.output().await.expect("run shakedown");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("the request carried Authorization=Bearer ***"),
        "the echo is shown, scrubbed: {stderr}"
    );
    let mut places = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        ("stderr".to_owned(), stderr.into_owned()),
    ];
    for file in files_under(&out_dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).expect("read")).into_owned();
        places.push((file.display().to_string(), text));
    }
    for (place, text) in &places {
        assert!(
            !text.contains(TOKEN),
            "the token leaked into {place}:\n{text}"
        );
    }
}
