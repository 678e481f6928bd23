//! A sandbox and a scratch directory for tests that run the `shakedown` binary against
//! it and then read the sandbox's request log and objects. `#[path]`-included by the
//! test crates that use it, next to the sandbox's own `common` helpers.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use shakedown_sandbox::{self as sandbox, RequestRecord, SandboxHandle};

use super::common;

pub struct Bench {
    pub handle: SandboxHandle,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
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
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while !handle.is_settled() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sandbox never settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.clear_request_log();
    Bench {
        handle,
        dir,
        kubeconfig,
    }
}

impl Bench {
    pub fn scenario(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.yaml"));
        let text = format!(
            "apiVersion: shakedown.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  safety: {{allowedNamespaces: [shop]}}\n{body}"
        );
        std::fs::write(&path, text).expect("write scenario");
        path
    }

    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// `shakedown --yes --seed 7 ARGS` against this sandbox, outside any CI.
    pub async fn shakedown(&self, args: &[&str]) -> Output {
        self.shakedown_in(&self.out(), args).await
    }

    /// [`shakedown`](Self::shakedown) with its reports in `out` instead of this bench's
    /// own folder: several sandboxes (say, with different start-up delays) writing one
    /// run history.
    pub async fn shakedown_in(&self, out: &std::path::Path, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shakedown"));
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--output-dir")
            .arg(out)
            .args(["--yes", "--seed", "7"])
            .args(args)
            .kill_on_drop(true);
        for marker in shakedown::run::ci::MARKERS {
            command.env_remove(marker);
        }
        command.output().await.expect("run shakedown")
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

    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.out().join("latest").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
    }
}

impl Bench {
    /// The arguments [`Bench::shakedown`] passes, for a test that starts the binary
    /// itself (under a pseudo-terminal, say).
    pub fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![
            "--kubeconfig".to_owned(),
            self.kubeconfig.display().to_string(),
            "--output-dir".to_owned(),
            self.out().display().to_string(),
            "--yes".to_owned(),
            "--seed".to_owned(),
            "7".to_owned(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    }

    /// The sandbox's own `/metrics`, a URL an HTTP probe can time.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.handle.addr)
    }
}
