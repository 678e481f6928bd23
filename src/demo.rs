//! `shakedown demo`: a whole game day on this machine, in one command. It starts the
//! sandbox cluster, a real Prometheus (from PATH) scraping it every second and
//! evaluating the demo's alerting rules, a real Alertmanager when one is installed, runs
//! the demo experiment, and writes the reports. Every exit path stops every server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use shakedown_sandbox::{self as sandbox, SandboxConfig, SandboxHandle};

use crate::report::text::clean_line;
use crate::report::words;
use crate::{journal, report as reports};

/// The demo's specs ship inside the binary, so `shakedown demo` works from any folder.
const DEMO_FILES: [(&str, &str); 4] = [
    (
        "experiments/demo.yaml",
        include_str!("../experiments/demo.yaml"),
    ),
    (
        "scenarios/demo/checkout-pod-delete.yaml",
        include_str!("../scenarios/demo/checkout-pod-delete.yaml"),
    ),
    (
        "scenarios/demo/checkout-latency.yaml",
        include_str!("../scenarios/demo/checkout-latency.yaml"),
    ),
    (
        "scenarios/demo/node-drain.yaml",
        include_str!("../scenarios/demo/node-drain.yaml"),
    ),
];

/// The demo's Prometheus alerting rules (checkout latency and error ratio), loaded into
/// the demo's Prometheus; the demo experiment's alert hypotheses name them.
pub const DEMO_RULES: &str = include_str!("../scenarios/demo/alert-rules.yml");

/// How to get Alertmanager, said when the demo runs without it.
pub const ALERTMANAGER_HINT: &str = "install it with `sudo apt-get install -y --no-install-recommends prometheus-alertmanager` \
     (Debian/Ubuntu) or `brew install alertmanager` (macOS) to see alerts go through Alertmanager";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "`prometheus` is not on PATH. Install it with `sudo apt-get install -y --no-install-recommends prometheus` \
         (Debian/Ubuntu), `brew install prometheus` (macOS), or put the binary from https://prometheus.io/download on PATH"
    )]
    PrometheusMissing,
    #[error("cannot prepare {path}: {source}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start prometheus: {0}")]
    PrometheusStart(#[source] std::io::Error),
    #[error("prometheus exited early ({0}); its log is {1}")]
    PrometheusExited(std::process::ExitStatus, PathBuf),
    #[error("prometheus had no samples of the sandbox after {0:?}; its log is {1}")]
    NoSamples(Duration, PathBuf),
    #[error("cannot start the sandbox: {0}")]
    Sandbox(#[source] sandbox::SandboxError),
    #[error("cannot start alertmanager: {0}")]
    AlertmanagerStart(#[source] std::io::Error),
    #[error("alertmanager exited early ({0}); its log is {1}")]
    AlertmanagerExited(std::process::ExitStatus, PathBuf),
    #[error("alertmanager was not ready after {0:?}; its log is {1}")]
    AlertmanagerNotReady(Duration, PathBuf),
}

/// Everything that stops the demo before it reaches a verdict is a could-not-run.
impl From<DemoError> for crate::exit::Failure {
    fn from(error: DemoError) -> Self {
        crate::exit::CouldNotRun::Demo(Box::new(error)).into()
    }
}

/// Where `prometheus` is, if anywhere on PATH.
pub fn find_prometheus() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
}

/// Where Alertmanager is: Debian's `/usr/bin/prometheus-alertmanager`, else
/// `prometheus-alertmanager` or `alertmanager` on PATH.
pub fn find_alertmanager() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/prometheus-alertmanager");
    if debian.is_file() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    ["prometheus-alertmanager", "alertmanager"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// A real Alertmanager on a free loopback port, clustering off, routing every alert to
/// a receiver that sends nothing (the demo pages nobody). Dropping it kills the process.
pub struct LocalAlertmanager {
    child: tokio::process::Child,
    pub url: String,
    pub port: u16,
    pub log: PathBuf,
}

impl LocalAlertmanager {
    /// Starts `binary` on a free port with its configuration, storage and log under `dir`.
    pub async fn start(binary: &Path, dir: &Path) -> Result<Self, DemoError> {
        let port = free_port().map_err(|source| DemoError::Files {
            path: dir.to_path_buf(),
            source,
        })?;
        Self::start_on(binary, dir, port).await
    }

    /// [`start`](Self::start) on a given port, keeping what `dir` already holds: a
    /// restarted Alertmanager reads back the silences it wrote there when it stopped.
    pub async fn start_on(binary: &Path, dir: &Path, port: u16) -> Result<Self, DemoError> {
        let files = |source| DemoError::Files {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir.join("data")).map_err(files)?;
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route: {receiver: nobody, group_wait: 0s, group_interval: 1s}\nreceivers: [{name: nobody}]\n",
        )
        .map_err(files)?;
        let log = dir.join("alertmanager.log");
        let log_file = std::fs::File::create(&log).map_err(files)?;
        let child = tokio::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip: a demo on a laptop must not look for peers on the network.
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(DemoError::AlertmanagerStart)?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            log,
        })
    }

    /// Waits until `/-/ready` answers 200.
    pub async fn wait_ready(&mut self, patience: Duration) -> Result<(), DemoError> {
        let deadline = tokio::time::Instant::now() + patience;
        let ready = format!("{}/-/ready", self.url);
        let client = prometheus_http_query::reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(DemoError::AlertmanagerExited(status, self.log.clone()));
            }
            let answer = client
                .get(&ready)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DemoError::AlertmanagerNotReady(patience, self.log.clone()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server as an operator would (SIGTERM), so it writes its state (the
    /// silences) to disk first, and waits for it.
    pub async fn terminate(mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) on our own child, not yet reaped (we hold its handle).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.wait().await;
    }

    /// Stops the server and waits for it, so no process is left behind.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The lines the demo's Prometheus adds to its configuration: the alerting rules (written
/// under `dir`) and, when there is one, the Alertmanager it notifies.
pub fn alerting_config(dir: &Path, alertmanager_port: Option<u16>) -> Result<String, DemoError> {
    let rules = dir.join("alert-rules.yml");
    std::fs::create_dir_all(dir).map_err(|source| DemoError::Files {
        path: dir.to_path_buf(),
        source,
    })?;
    std::fs::write(&rules, DEMO_RULES).map_err(|source| DemoError::Files {
        path: rules.clone(),
        source,
    })?;
    let mut config = format!("rule_files: ['{}']\n", rules.display());
    if let Some(port) = alertmanager_port {
        config.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{port}']\n"
        ));
    }
    Ok(config)
}

/// A Prometheus server on a free loopback port, scraping one target every second.
/// Dropping it kills the process.
pub struct LocalPrometheus {
    child: tokio::process::Child,
    pub url: String,
    pub port: u16,
    pub log: PathBuf,
}

impl LocalPrometheus {
    /// Starts `binary` with its data and log under `dir`, scraping `target` (host:port).
    pub async fn start(binary: &Path, dir: &Path, target: &str) -> Result<Self, DemoError> {
        Self::start_with(binary, dir, target, |_| Vec::new()).await
    }

    /// Like `start`, with extra flags that may depend on the chosen port (a route
    /// prefix, a web config for TLS or basic auth).
    pub async fn start_with(
        binary: &Path,
        dir: &Path,
        target: &str,
        extra_args: impl FnOnce(u16) -> Vec<String>,
    ) -> Result<Self, DemoError> {
        Self::start_configured(binary, dir, target, "", extra_args).await
    }

    /// Like `start_with`, with `extra_config` appended to `prometheus.yml` (top-level
    /// keys such as `rule_files:` and `alerting:`).
    pub async fn start_configured(
        binary: &Path,
        dir: &Path,
        target: &str,
        extra_config: &str,
        extra_args: impl FnOnce(u16) -> Vec<String>,
    ) -> Result<Self, DemoError> {
        let files = |source| DemoError::Files {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir.join("data")).map_err(files)?;
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sandbox\n    static_configs:\n      - targets: ['{target}']\n{extra_config}"
        );
        std::fs::write(dir.join("prometheus.yml"), config).map_err(files)?;
        let port = free_port().map_err(files)?;
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).map_err(files)?;
        let child = tokio::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .args(extra_args(port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(DemoError::PrometheusStart)?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            log,
        })
    }

    /// Waits until `query` returns at least one series (the first scrapes are in).
    pub async fn wait_for(&mut self, query: &str, patience: Duration) -> Result<(), DemoError> {
        let deadline = tokio::time::Instant::now() + patience;
        let client: Option<prometheus_http_query::Client> = self.url.parse().ok();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(DemoError::PrometheusExited(status, self.log.clone()));
            }
            if let Some(client) = &client
                && let Ok(result) = client.query(query).get().await
                && result.data().as_vector().is_some_and(|v| !v.is_empty())
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DemoError::NoSamples(patience, self.log.clone()));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Kills the server without waiting (tests that take Prometheus away mid-run).
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// Stops the server and waits for it, so no process is left behind.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Asks the kernel for a free loopback port. (It could be taken again before Prometheus
/// binds it; then Prometheus exits and `wait_for` says so.)
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Writes the embedded demo specs under `dir` and returns the experiment's path. With an
/// Alertmanager URL, the experiment gets an `alertmanager:` block, so its alert
/// hypotheses read Alertmanager's API (silences and inhibition count); without one
/// they read Prometheus's own alerts.
pub fn write_demo_specs(dir: &Path, alertmanager: Option<&str>) -> Result<PathBuf, DemoError> {
    for (relative, text) in DEMO_FILES {
        let text = match alertmanager {
            Some(url) if relative == DEMO_FILES[0].0 => with_alertmanager(text, url),
            _ => text.to_owned(),
        };
        let path = dir.join(relative);
        let files = |source| DemoError::Files {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(files)?;
        }
        std::fs::write(&path, text).map_err(files)?;
    }
    Ok(dir.join(DEMO_FILES[0].0))
}

/// The experiment's text with `alertmanager: {url: …}` as the first key of its `spec:`.
fn with_alertmanager(experiment: &str, url: &str) -> String {
    experiment.replacen(
        "\nspec:\n",
        &format!(
            "\nspec:\n  # Written by `shakedown demo`: the Alertmanager it started.\n  alertmanager: {{url: \"{url}\"}}\n"
        ),
        1,
    )
}

/// The demo's cluster: the default shop topology.
pub async fn start_sandbox() -> Result<SandboxHandle, DemoError> {
    sandbox::start(SandboxConfig::shop(), 0)
        .await
        .map_err(DemoError::Sandbox)
}

/// Reads the sandbox itself: after every run, interrupted or not, nothing may be left
/// cordoned or marked as faulted.
pub fn report_leftovers(sandbox: &SandboxHandle) {
    let mut left = Vec::new();
    for node in sandbox.objects("nodes", None) {
        if node["spec"]["unschedulable"] == true
            || node["metadata"]["annotations"][crate::faults::CORDONED_BY].is_string()
        {
            left.push(format!(
                "node {} is cordoned",
                node["metadata"]["name"].as_str().unwrap_or("?")
            ));
        }
    }
    for pod in sandbox.objects("pods", None) {
        if pod["metadata"]["annotations"][crate::faults::FAULT_ANNOTATION].is_string() {
            left.push(format!(
                "pod {} still carries a fault",
                pod["metadata"]["name"].as_str().unwrap_or("?")
            ));
        }
    }
    if left.is_empty() {
        crate::out!("\nsandbox: clean (no node cordoned, no fault left on any pod)");
    } else {
        crate::out!("\nsandbox: LEFT FAULTED: {}", left.join("; "));
    }
}

/// The verdicts, then where the reports are.
pub fn print_summary(out: &Path) {
    if let Ok(contents) = journal::read(&out.join("journal.jsonl")) {
        crate::out!(
            "\n{:<10} {:<36} {:<7} observed",
            "verdict",
            "hypothesis",
            "phase"
        );
        for record in &contents.records {
            if let crate::events::RunEvent::HypothesisVerdict(v) = &record.event {
                // The report's words, cleaned: names and messages come from the spec
                // and from Prometheus, and must not drive the terminal.
                crate::out!(
                    "{:<10} {:<36} {:<7} {}",
                    words::verdict_word(v.verdict),
                    clean_line(&v.hypothesis),
                    words::phase_word(v.phase),
                    clean_line(&v.message)
                );
            }
        }
    }
    crate::out!("\nreports:");
    for file in [
        reports::MARKDOWN_FILE,
        reports::JUNIT_FILE,
        reports::JSON_FILE,
        "journal.jsonl",
    ] {
        crate::out!("  {}", out.join(file).display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_demo_specs_validate() {
        let dir = std::env::temp_dir().join(format!("shakedown-demo-specs-{}", std::process::id()));
        let experiment = write_demo_specs(&dir, None).unwrap();
        let options = crate::spec::LoadOptions {
            allow_paths: vec![dir.clone()],
        };
        let loaded =
            crate::spec::load_with(&experiment, &options).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(loaded.name(), "demo");
        assert_eq!(loaded.steps.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// With an Alertmanager, the written experiment names it in an `alertmanager:` block
    /// and still validates; without one, it has none (alerts are read from Prometheus).
    #[test]
    fn the_demo_experiment_reads_alerts_from_the_alertmanager_it_was_given() {
        let dir =
            std::env::temp_dir().join(format!("shakedown-demo-am-specs-{}", std::process::id()));
        let experiment = write_demo_specs(&dir, Some("http://127.0.0.1:9093")).unwrap();
        let text = std::fs::read_to_string(&experiment).unwrap();
        assert!(
            text.contains("  alertmanager: {url: \"http://127.0.0.1:9093\"}\n"),
            "{text}"
        );
        let options = crate::spec::LoadOptions {
            allow_paths: vec![dir.clone()],
        };
        let loaded =
            crate::spec::load_with(&experiment, &options).unwrap_or_else(|d| panic!("{d}"));
        let plan = crate::plan::plan(&loaded, &crate::plan::PlanSettings::default());
        assert_eq!(
            plan.alertmanager.and_then(|a| a.url).as_deref(),
            Some("http://127.0.0.1:9093")
        );
        let without = write_demo_specs(&dir, None).unwrap();
        assert!(
            !std::fs::read_to_string(without)
                .unwrap()
                .contains("alertmanager")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Without an Alertmanager, Prometheus still evaluates the rules (the alert probes
    /// read its own alerts); with one, it also notifies it.
    #[test]
    fn the_demo_prometheus_loads_the_rules_and_notifies_alertmanager_only_when_there_is_one() {
        let dir = std::env::temp_dir().join(format!("shakedown-demo-rules-{}", std::process::id()));
        let alone = alerting_config(&dir, None).unwrap();
        assert!(alone.starts_with("rule_files: ['"), "{alone}");
        assert!(!alone.contains("alerting:"), "{alone}");
        let rules = std::fs::read_to_string(dir.join("alert-rules.yml")).unwrap();
        assert_eq!(rules, DEMO_RULES);
        let notified = alerting_config(&dir, Some(9093)).unwrap();
        assert!(
            notified.contains("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:9093']\n"),
            "{notified}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The rules file is what Prometheus loads: both alerts the demo's hypotheses name.
    #[test]
    fn the_demo_rules_define_the_alerts_the_demo_experiment_names() {
        for alert in ["CheckoutHighLatency", "CheckoutHighErrorRatio"] {
            assert!(
                DEMO_RULES.contains(&format!("- alert: {alert}\n")),
                "{alert}"
            );
            let named = DEMO_FILES
                .iter()
                .any(|(_, text)| text.contains(&format!("alert: {{name: {alert},")));
            assert!(named, "{alert} is not used by the demo experiment");
        }
    }
}
