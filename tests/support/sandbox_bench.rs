//! The one sandbox test bench: an in-process sandbox and a scratch directory for tests
//! that run the `shakedown` binary against it and then read the sandbox's request log,
//! its objects, and the run's reports. `#[path]`-included by the test crates that use
//! it, next to the sandbox's own `common` helpers; a test file adds its own small
//! helpers in its own `impl Bench` block (or a thin wrapper where a name must differ).
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use shakedown_sandbox::{self as sandbox, RequestRecord, SandboxHandle};

use super::common;

pub struct Bench {
    pub handle: SandboxHandle,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// `USER` for every command (runs and halts record it); the test's own when `None`.
    user: Option<String>,
    /// Put before each command's own arguments; `--yes --seed 7` unless changed.
    flags: Vec<String>,
}

/// A started, settled sandbox with `config`, a fresh scratch directory named after
/// `tag`, and an empty request log.
pub async fn bench(tag: &str, config: sandbox::SandboxConfig) -> Bench {
    let handle = sandbox::start(config, 0).await.expect("sandbox starts");
    let dir = std::env::temp_dir().join(format!("shakedown-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    let kubeconfig = dir.join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let bench = Bench {
        handle,
        dir,
        kubeconfig,
        user: None,
        flags: ["--yes", "--seed", "7"].map(String::from).to_vec(),
    };
    bench
        .wait_for("the sandbox to settle", SandboxHandle::is_settled)
        .await;
    bench.handle.clear_request_log();
    bench
}

impl Bench {
    /// `bench(tag, common::fast_shop())`: the shop, settled.
    pub async fn new(tag: &str) -> Bench {
        bench(tag, common::fast_shop()).await
    }

    /// Every command runs as `USER=user`.
    pub fn with_user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// Every command starts with `flags` instead of `--yes --seed 7`.
    pub fn with_flags(mut self, flags: &[&str]) -> Self {
        self.flags = flags.iter().map(|f| (*f).to_owned()).collect();
        self
    }

    /// A scenario file in the scratch directory, allowed to fault `shop` only.
    pub fn scenario(&self, name: &str, body: &str) -> PathBuf {
        self.scenario_with(name, "{allowedNamespaces: [shop]}", body)
    }

    /// A scenario file with its own `safety:` (a YAML flow mapping).
    pub fn scenario_with(&self, name: &str, safety: &str, body: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.yaml"));
        let text = format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  safety: {safety}\n{body}"
        );
        std::fs::write(&path, text).expect("write scenario");
        path
    }

    /// The output folder of `command` (each run in its own folder below, `latest` too).
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// The output folder of `command_in(tag, …)`: `out-TAG`, one per concurrent run.
    pub fn out_of(&self, tag: &str) -> PathBuf {
        self.dir.join(format!("out-{tag}"))
    }

    /// `shakedown FLAGS ARGS` against this sandbox (FLAGS: `--yes --seed 7` unless
    /// changed), reports in `out()`.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = self.bare(&self.out());
        command.args(&self.flags).args(args);
        command
    }

    /// `shakedown ARGS` without the bench's flags (no `--yes`), reports in `out()`.
    pub fn unconfirmed(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = self.bare(&self.out());
        command.args(args);
        command
    }

    /// `shakedown FLAGS ARGS` with its reports in `out_of(tag)`.
    pub fn command_in(&self, tag: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = self.bare(&self.out_of(tag));
        command.args(&self.flags).args(args);
        command
    }

    /// `shakedown` against this sandbox with reports in `out`, outside any CI: every CI
    /// system's marker is removed, so the `--yes` rule does not depend on where the
    /// tests run.
    fn bare(&self, out: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"));
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--output-dir")
            .arg(out)
            .kill_on_drop(true);
        if let Some(user) = &self.user {
            command.env("USER", user);
        }
        for marker in shakedown::run::ci::MARKERS {
            command.env_remove(marker);
        }
        command
    }

    /// `command(args)`, run to its end.
    pub async fn shakedown(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("run shakedown")
    }

    /// [`shakedown`](Self::shakedown) with its reports in `out` instead of this bench's
    /// own folder: several sandboxes (say, with different start-up delays) writing one
    /// run history.
    pub async fn shakedown_in(&self, out: &Path, args: &[&str]) -> Output {
        let mut command = self.bare(out);
        command.args(&self.flags).args(args);
        command.output().await.expect("run shakedown")
    }

    /// The arguments [`Bench::shakedown`] passes, for a test that starts the binary
    /// itself (under a pseudo-terminal, say).
    pub fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![
            "--kubeconfig".to_owned(),
            self.kubeconfig.display().to_string(),
            "--output-dir".to_owned(),
            self.out().display().to_string(),
        ];
        all.extend(self.flags.iter().cloned());
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    }

    /// The sandbox's own `/metrics`, a URL an HTTP probe can time.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.handle.addr)
    }

    /// Polls `done` until it holds; fails the test after `common::DEADLINE`.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&SandboxHandle) -> bool) {
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        while !done(&self.handle) {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every request that would change something, access reviews aside (a POST that
    /// changes nothing).
    pub fn mutations(&self) -> Vec<RequestRecord> {
        self.handle
            .request_log()
            .into_iter()
            .filter(|r| r.is_mutating() && !r.path.contains("selfsubjectaccessreviews"))
            .collect()
    }

    /// What a test compares before and after: every pod (by uid, with its annotations
    /// and ephemeral containers) and every node's schedulability and annotations.
    pub fn cluster_state(&self) -> Vec<String> {
        let mut state: Vec<String> = self
            .handle
            .objects("pods", None)
            .iter()
            .map(|p| {
                format!(
                    "pod {}/{} uid={} deleting={} annotations={} ephemeral={}",
                    p["metadata"]["namespace"],
                    p["metadata"]["name"],
                    p["metadata"]["uid"],
                    !p["metadata"]["deletionTimestamp"].is_null(),
                    p["metadata"]["annotations"],
                    p["spec"]["ephemeralContainers"]
                )
            })
            .collect();
        state.extend(self.handle.objects("nodes", None).iter().map(|n| {
            format!(
                "node {} unschedulable={} annotations={}",
                n["metadata"]["name"], n["spec"]["unschedulable"], n["metadata"]["annotations"]
            )
        }));
        state.sort();
        state
    }

    /// A report of the latest run in `out()`.
    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.out().join("latest").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// The latest run's journal in `out()`, every record (a missing or damaged one fails
    /// the test).
    pub fn journal(&self) -> Vec<Value> {
        self.read("journal.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).expect("record"))
            .collect()
    }

    /// The latest journal in `out_of(tag)`: the readable records, none if there is none.
    pub fn journal_of(&self, tag: &str) -> Vec<Value> {
        let path = self.out_of(tag).join("latest/journal.jsonl");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The latest journal's records of one kind (`faultInjected`, `stepSkipped`, …).
    pub fn records(&self, event: &str) -> Vec<Value> {
        self.journal()
            .into_iter()
            .filter(|r| r["event"] == event)
            .collect()
    }

    /// Asserts that the latest journal ends with `runFinished` saying `exit_code`: the
    /// journal tells the exit the process had.
    pub fn assert_finished_with(&self, exit_code: u8) {
        let journal = self.journal();
        let last = journal.last().expect("a journal");
        assert_eq!(last["event"], "runFinished", "{journal:?}");
        assert_eq!(last["exitCode"], exit_code, "{last}");
    }

    /// The journal's event names, in order.
    pub fn event_kinds(&self) -> Vec<String> {
        self.journal()
            .iter()
            .map(|r| r["event"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// Sends `signal` (`INT`, `TERM`) to a running `shakedown` and waits (60 s at most) for
/// it to end: its output, and how long it took from the signal.
pub async fn signal(child: tokio::process::Child, signal: &str) -> (Output, Duration) {
    let pid = child.id().expect("still running").to_string();
    let sent = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("shakedown ends after the signal")
        .expect("shakedown's output");
    (out, sent.elapsed())
}
