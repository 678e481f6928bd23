//! network-latency: an ephemeral container with NET_ADMIN runs `tc … netem` in the
//! target pod's network namespace.
//!
//! The injector is built to clean up after itself: it traps TERM to delete the qdisc,
//! and deletes it on its own when its TTL (fault duration + margin) runs out, so a
//! shakedown that dies mid-fault leaves nothing behind for long. Every value in the
//! script is produced here from validated, typed parameters (numbers we format, an
//! interface name restricted to the kernel's alphabet), so nothing user-supplied
//! reaches a shell unescaped.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{AttachParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::disruption::Disrupted;
use super::{
    FAULT_ANNOTATION, FaultContext, FaultError, Hold, Injector, RevertError, Reverted, Undo,
    object_ref, record_event, split_pod, with_retries,
};
use crate::run::stop::unless_stopped;
use crate::spec::NetworkLatency;

/// How long the injector outlives the planned fault before removing netem by itself.
pub const TTL_MARGIN: Duration = Duration::from_secs(30);

/// The arguments after `tc qdisc replace dev IF root`.
pub fn netem_args(fault: &NetworkLatency) -> String {
    let mut args = format!("netem delay {}ms", fault.delay.0.as_millis());
    if !fault.jitter.0.is_zero() {
        args.push_str(&format!(" {}ms", fault.jitter.0.as_millis()));
        if fault.correlation.0 > 0.0 {
            args.push_str(&format!(" {}%", fault.correlation.0));
        }
    }
    if let Some(loss) = fault.loss {
        args.push_str(&format!(" loss {}%", loss.0));
    }
    args
}

/// The injector's shell script. `ttl` is how long netem stays before self-removal.
pub fn injector_script(fault: &NetworkLatency, ttl: Duration) -> String {
    let interface = shell_word(&fault.interface);
    format!(
        r#"set -eu
IF={interface}
SLEEPER=
cleanup() {{ tc qdisc del dev "$IF" root 2>/dev/null || true; }}
trap 'cleanup; [ -n "$SLEEPER" ] && kill "$SLEEPER" 2>/dev/null; exit 0' TERM INT
tc qdisc replace dev "$IF" root {args}
echo "shakedown: netem applied on $IF for at most {ttl}s"
sleep {ttl} &
SLEEPER=$!
wait "$SLEEPER"
cleanup
echo "shakedown: netem removed on $IF at its TTL"
"#,
        args = netem_args(fault),
        ttl = ttl.as_secs().max(1),
    )
}

/// The command that reverts the fault from outside (over exec).
pub fn revert_command(interface: &str) -> Vec<String> {
    vec![
        "tc".into(),
        "qdisc".into(),
        "del".into(),
        "dev".into(),
        interface.into(),
        "root".into(),
    ]
}

/// A DNS-label container name, unique per run and step (ephemeral containers cannot be
/// removed, so a repeated step needs a fresh name).
pub fn container_name(run_id: &str, step: &str) -> String {
    let step: String = step
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    // Run ids end in random hex; that tail keeps names apart between runs.
    let alnum: Vec<char> = run_id.chars().filter(char::is_ascii_alphanumeric).collect();
    let run: String = alnum[alnum.len().saturating_sub(8)..].iter().collect();
    let mut name = format!("shakedown-netem-{run}-{step}").to_ascii_lowercase();
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// Why this namespace cannot host a NET_ADMIN container, if it cannot.
pub async fn pod_security_blocker(
    client: &Client,
    namespace: &str,
) -> Result<Option<String>, kube::Error> {
    // A preflight read retries transient errors like every other call: a flaky API must
    // not stop a run that would have retried its way through.
    let api = Api::<Namespace>::all(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let ns = with_retries(deadline, || api.get(namespace)).await?;
    let level = ns
        .metadata
        .labels
        .and_then(|l| l.get("pod-security.kubernetes.io/enforce").cloned());
    Ok(match level.as_deref() {
        Some(level @ ("baseline" | "restricted")) => Some(format!(
            "namespace {namespace} enforces Pod Security `{level}`, which forbids the NET_ADMIN capability the netem injector needs"
        )),
        _ => None,
    })
}

impl Injector for NetworkLatency {
    fn revert_hint(&self, _run_id: &str) -> String {
        format!(
            "exec `tc qdisc del dev {} root` in the shakedown-netem container, or wait for its TTL; `shakedown recover` removes the annotations",
            self.interface
        )
    }

    fn hold(&self, _recovery_budget: Duration) -> Hold {
        Hold::For(self.duration.0)
    }

    fn removed_pod_revert(&self) -> Option<&'static str> {
        None
    }

    async fn inject(
        &self,
        ctx: &FaultContext,
        targets: &[String],
    ) -> Result<Disrupted, FaultError> {
        inject(ctx, self, targets).await?;
        Ok(Disrupted::default())
    }
}

/// Injects netem into each pod: ledger and annotation first, then the ephemeral container.
async fn inject(
    ctx: &FaultContext,
    fault: &NetworkLatency,
    targets: &[String],
) -> Result<(), FaultError> {
    let ttl = fault.duration.0 + TTL_MARGIN;
    let container = container_name(&ctx.run_id, &ctx.step);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for target in targets {
        let (namespace, pod) = split_pod(target);
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
        ctx.ledger.record(
            &ctx.step,
            Undo::RemoveNetem {
                namespace: namespace.into(),
                pod: pod.into(),
                container: container.clone(),
                interface: fault.interface.clone(),
            },
        );
        let expires =
            jiff::Timestamp::now() + jiff::SignedDuration::try_from(ttl).unwrap_or_default();
        let marker = json!({
            "runId": ctx.run_id,
            "kind": "network-latency",
            "container": container,
            "interface": fault.interface,
            "delayMs": fault.delay.0.as_millis() as u64,
            "jitterMs": fault.jitter.0.as_millis() as u64,
            "lossPercent": fault.loss.map(|l| l.0),
            "expires": expires.to_string(),
        });
        let annotate = Patch::Merge(
            json!({"metadata": {"annotations": {FAULT_ANNOTATION: marker.to_string()}}}),
        );
        let params = PatchParams {
            dry_run: ctx.dry_run,
            ..PatchParams::default()
        };
        let fail = |action, e| ctx.failed(target, FaultError::api(action, e));
        with_retries(deadline, || api.patch(pod, &params, &annotate))
            .await
            .map_err(|e| fail("cannot annotate pod", e))?;
        let ephemeral = Patch::Strategic(json!({"spec": {"ephemeralContainers": [{
            "name": container,
            "image": fault.image,
            "command": ["/bin/sh", "-c", injector_script(fault, ttl)],
            "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
            "stdin": false,
            "tty": false,
        }]}}));
        let patched = with_retries(deadline, || {
            api.patch_ephemeral_containers(pod, &params, &ephemeral)
        })
        .await
        .map_err(|e| fail("cannot add the injector container", e))?;
        if !ctx.dry_run {
            // Patched is not applied: only a running injector has put netem in place.
            // An image pull can take minutes: a stop ends the wait, and the revert says
            // whether netem can be removed (a waiting injector cannot be stopped).
            let starting = wait_until_running(&api, pod, &container, deadline);
            let Some(started) = unless_stopped(&mut ctx.stop.clone(), starting).await else {
                let why = "the run was stopped while the injector was starting";
                return Err(ctx.failed(target, FaultError::Stopped(why.into())));
            };
            started.map_err(|e| ctx.failed(target, e))?;
        }
        let detail = format!(
            "{}{} on {} via ephemeral container {container} (TTL {}s)",
            if ctx.dry_run { "would add " } else { "" },
            netem_args(fault),
            fault.interface,
            ttl.as_secs()
        );
        ctx.injected(target, detail);
        let object = object_ref(
            "Pod",
            "v1",
            Some(namespace),
            pod,
            patched.metadata.uid.clone(),
        );
        record_event(
            ctx,
            object,
            "ShakedownFault",
            &format!("network latency injected: {}", netem_args(fault)),
        )
        .await;
    }
    Ok(())
}

/// Removes netem over exec, checks that it is gone, then removes the annotation. If the
/// pod is gone, so is its network namespace: nothing is left to undo. Anything short of
/// a confirmed removal is an error, and the annotation stays so `recover` can find it.
/// Where a netem fault lives: the pod, its injector container and the interface.
pub struct NetemTarget<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
    pub interface: &'a str,
    /// The run reverting; empty (`recover`) matches any run's mark.
    pub run_id: &'a str,
}

/// `deadline` is the revert's own (from `--revert-timeout`); no exec retry outlives it.
pub async fn remove(
    client: &Client,
    target: &NetemTarget<'_>,
    dry_run: bool,
    deadline: tokio::time::Instant,
) -> Result<Reverted, RevertError> {
    let NetemTarget {
        namespace,
        pod,
        container,
        interface,
        run_id,
    } = *target;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let current = match api.get(pod).await {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(Reverted::Gone("pod is gone, and its netem with it".into()));
        }
        other => other?,
    };
    if let Some(other) = marked_by_another_run(&current, run_id) {
        // Its netem replaced ours on the interface: deleting the root qdisc or the mark
        // would remove that run's fault, not ours.
        return Ok(Reverted::LeftAlone(format!(
            "the pod now carries run {other}'s network fault, which replaced ours"
        )));
    }
    let detail = if dry_run {
        // An exec has no dry-run mode (the command would really run), so a dry run does
        // not exec at all.
        "would delete netem over exec (not tried: an exec cannot be dry-run); ".to_owned()
    } else {
        match injector_state(&current, container) {
            InjectorState::Running => {
                delete_netem(&api, pod, container, interface, deadline).await?
            }
            // The script deletes netem before it exits 0 (TTL reached, or TERM).
            InjectorState::Exited(0, _) => "the injector had already removed netem; ".into(),
            InjectorState::Exited(code, reason) => {
                return Err(RevertError::Unverified(format!(
                    "the injector exited with code {code} ({reason}); netem may still be on {interface}"
                )));
            }
            InjectorState::Waiting(why) => {
                return Err(RevertError::Unverified(format!(
                    "the injector has not started ({why}); it may still apply netem when it does"
                )));
            }
            // Never added (the injection failed before the container patch).
            InjectorState::Absent => "no injector container was added; ".into(),
        }
    };
    let unannotate = json!({"metadata": {"annotations": {FAULT_ANNOTATION: null}}});
    let params = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    api.patch(pod, &params, &Patch::Merge(&unannotate)).await?;
    let removed = if dry_run {
        "would remove the annotation"
    } else {
        "annotation removed"
    };
    Ok(Reverted::Undone(format!("{detail}{removed}")))
}

/// The run id on the pod's fault mark, when it is not `run_id`'s (an empty `run_id`
/// matches any run).
fn marked_by_another_run(pod: &Pod, run_id: &str) -> Option<String> {
    let mark = pod.metadata.annotations.as_ref()?.get(FAULT_ANNOTATION)?;
    let mark: serde_json::Value = serde_json::from_str(mark).ok()?;
    let owner = mark["runId"].as_str()?;
    (!run_id.is_empty() && owner != run_id).then(|| owner.to_owned())
}

/// Runs `tc qdisc del` in the injector and reads the exec's own status: a failed exec
/// (or one that reports failure inside the 101 upgrade) is not a revert.
async fn delete_netem(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    interface: &str,
    deadline: tokio::time::Instant,
) -> Result<String, RevertError> {
    let exec = AttachParams::default()
        .container(container)
        .stdout(true)
        .stderr(true);
    // The exec itself is retried on its own, so a flaky API cannot fail every attempt
    // of the whole revert at the same step.
    let deadline = deadline.min(tokio::time::Instant::now() + EXEC_TIMEOUT);
    let transient =
        |e: &kube::Error| super::is_transient(e) || matches!(e, kube::Error::UpgradeConnection(_));
    let mut process =
        crate::run::retry::retry(crate::cluster::API_BACKOFF, deadline, transient, || {
            api.exec(pod, revert_command(interface), &exec)
        })
        .await?;
    let status = process.take_status();
    let mut stderr = String::new();
    if let Some(mut err) = process.stderr() {
        use tokio::io::AsyncReadExt as _;
        let mut buf = Vec::new();
        let _ =
            tokio::time::timeout(EXEC_TIMEOUT, (&mut err).take(4096).read_to_end(&mut buf)).await;
        stderr = String::from_utf8_lossy(&buf).trim().to_owned();
    }
    let status = match status {
        Some(status) => tokio::time::timeout(EXEC_TIMEOUT, status)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let _ = tokio::time::timeout(EXEC_TIMEOUT, process.join()).await;
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok("netem deleted over exec; ".into()),
        // A qdisc that is already gone (its TTL passed, or an earlier attempt of this
        // revert got through) is what we wanted.
        Some(_) if qdisc_already_gone(&stderr) => Ok("netem was already gone; ".into()),
        Some(s) => Err(RevertError::Unverified(format!(
            "`tc qdisc del` failed in {container}: {}{}",
            s.message.unwrap_or_default(),
            if stderr.is_empty() {
                String::new()
            } else {
                format!(" ({stderr})")
            }
        ))),
        None => Err(RevertError::Unverified(format!(
            "the exec into {container} reported no status"
        ))),
    }
}

/// What `tc` prints when there is no root qdisc to delete.
fn qdisc_already_gone(stderr: &str) -> bool {
    stderr.contains("Cannot delete qdisc with handle of zero")
        || stderr.contains("No such file or directory")
}

/// How long one exec may take before the revert counts it as failed (and retries).
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// What the pod's status says about the injector container.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InjectorState {
    Running,
    Exited(i32, String),
    Waiting(String),
    Absent,
}

fn injector_state(pod: &Pod, container: &str) -> InjectorState {
    let Some(status) = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|all| all.iter().find(|c| c.name == container))
    else {
        let declared = pod
            .spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.as_ref())
            .is_some_and(|all| all.iter().any(|c| c.name == container));
        return if declared {
            InjectorState::Waiting("no status yet".into())
        } else {
            InjectorState::Absent
        };
    };
    let state = status.state.clone().unwrap_or_default();
    if state.running.is_some() {
        InjectorState::Running
    } else if let Some(t) = state.terminated {
        InjectorState::Exited(t.exit_code, t.reason.unwrap_or_default())
    } else {
        let why = state
            .waiting
            .and_then(|w| w.reason)
            .unwrap_or_else(|| "no state yet".into());
        InjectorState::Waiting(why)
    }
}

/// Waits until the injector runs (so `tc` has been reached), or says why it will not.
async fn wait_until_running(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    deadline: tokio::time::Instant,
) -> Result<(), FaultError> {
    loop {
        let current = with_retries(deadline, || api.get(pod))
            .await
            .map_err(|e| FaultError::api("cannot read the pod to see the injector start", e))?;
        let state = injector_state(&current, container);
        match state {
            InjectorState::Running => return Ok(()),
            InjectorState::Exited(code, reason) => {
                return Err(FaultError::NotApplied(format!(
                    "the injector exited with code {code} ({reason}) instead of applying netem"
                )));
            }
            InjectorState::Waiting(_) | InjectorState::Absent
                if tokio::time::Instant::now() + INJECTOR_POLL < deadline =>
            {
                tokio::time::sleep(INJECTOR_POLL).await;
            }
            InjectorState::Waiting(why) => {
                return Err(FaultError::NotApplied(format!(
                    "the injector did not start in time ({why})"
                )));
            }
            InjectorState::Absent => {
                return Err(FaultError::NotApplied(
                    "the injector container never appeared in the pod".into(),
                ));
            }
        }
    }
}

const INJECTOR_POLL: Duration = Duration::from_millis(200);

/// Single-quotes a word for POSIX sh. Interface names are validated to a safe alphabet
/// already; quoting is the second fence, not the first.
fn shell_word(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Percent, Span};
    use std::path::Path;
    use std::process::{Command, Stdio};

    #[test]
    fn only_the_run_on_the_mark_reverts_it() {
        let marked = |run: &str| -> Pod {
            let mark = json!({"runId": run, "container": "c"}).to_string();
            serde_json::from_value(
                json!({"metadata": {"name": "p", "annotations": {FAULT_ANNOTATION: mark}}}),
            )
            .expect("pod")
        };
        assert_eq!(marked_by_another_run(&marked("a"), "a"), None);
        assert_eq!(
            marked_by_another_run(&marked("b"), "a"),
            Some("b".to_owned())
        );
        assert_eq!(
            marked_by_another_run(&marked("b"), ""),
            None,
            "recover matches any"
        );
    }

    fn pod_with(statuses: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [], "ephemeralContainers": [{"name": "inj"}]},
            "status": {"ephemeralContainerStatuses": statuses},
        }))
        .expect("pod")
    }

    #[test]
    fn only_a_running_injector_counts_as_applied() {
        let state = |s| injector_state(&pod_with(s), "inj");
        assert_eq!(
            state(
                json!([{"name": "inj", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {}}}])
            ),
            InjectorState::Running
        );
        assert_eq!(
            state(
                json!([{"name": "inj", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}])
            ),
            InjectorState::Exited(2, "Error".into())
        );
        assert_eq!(
            state(
                json!([{"name": "inj", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}])
            ),
            InjectorState::Waiting("ImagePullBackOff".into())
        );
        // Declared but not reported yet: it may still start, so not "absent".
        assert_eq!(
            state(json!([])),
            InjectorState::Waiting("no status yet".into())
        );
        assert_eq!(
            injector_state(&pod_with(json!([])), "other"),
            InjectorState::Absent
        );
        assert!(qdisc_already_gone(
            "Error: Cannot delete qdisc with handle of zero."
        ));
        assert!(!qdisc_already_gone("Operation not permitted"));
    }

    fn fault() -> NetworkLatency {
        NetworkLatency {
            delay: Span(Duration::from_millis(200)),
            jitter: Span(Duration::from_millis(50)),
            correlation: Percent(25.0),
            loss: Some(Percent(1.5)),
            interface: "eth0".into(),
            duration: Span(Duration::from_secs(60)),
            image: "netshoot".into(),
        }
    }

    #[test]
    fn container_names_are_dns_labels() {
        let name = container_name("20261121T130618Z-b3721c", "4.1#2");
        assert_eq!(name, "shakedown-netem-8zb3721c-4-1-2");
        assert!(name.len() <= 63);
    }

    #[test]
    fn netem_arguments_are_formatted_from_typed_values() {
        assert_eq!(netem_args(&fault()), "netem delay 200ms 50ms 25% loss 1.5%");
        let plain = NetworkLatency {
            jitter: Span(Duration::ZERO),
            loss: None,
            ..fault()
        };
        assert_eq!(netem_args(&plain), "netem delay 200ms");
    }

    /// A `tc` that records its arguments, so the script runs for real without netem.
    fn shim_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("shakedown-tc-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tc = dir.join("tc");
        std::fs::write(
            &tc,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\n",
                dir.join("calls").display()
            ),
        )
        .unwrap();
        Command::new("chmod").arg("+x").arg(&tc).status().unwrap();
        dir
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn run_script(dir: &Path, ttl: Duration) -> std::process::Child {
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .arg("-c")
            .arg(injector_script(&fault(), ttl))
            .env("PATH", path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait_for_calls(dir: &Path, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while calls(dir).len() < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        calls(dir)
    }

    #[test]
    fn injector_applies_netem_and_removes_it_at_its_ttl() {
        let dir = shim_dir("ttl");
        let status = run_script(&dir, Duration::from_secs(1)).wait().unwrap();
        assert!(status.success());
        assert_eq!(
            calls(&dir),
            [
                "qdisc replace dev eth0 root netem delay 200ms 50ms 25% loss 1.5%",
                "qdisc del dev eth0 root"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn injector_removes_netem_on_term() {
        let dir = shim_dir("term");
        let mut child = run_script(&dir, Duration::from_secs(600));
        assert_eq!(
            wait_for_calls(&dir, 1).len(),
            1,
            "netem must be applied first"
        );
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "TERM is a clean exit: {status:?}");
        assert_eq!(
            calls(&dir).last().map(String::as_str),
            Some("qdisc del dev eth0 root")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_hostile_interface_name_stays_one_quoted_word() {
        let hostile = NetworkLatency {
            interface: "eth0'; rm -rf / #".into(),
            ..fault()
        };
        let script = injector_script(&hostile, Duration::from_secs(1));
        assert!(script.contains(r"IF='eth0'\''; rm -rf / #'"), "{script}");
    }
}
