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
    vec!["tc".into(), "qdisc".into(), "del".into(), "dev".into(), interface.into(), "root".into()]
}

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
    fn netem_arguments_are_formatted_from_typed_values() {
        assert_eq!(netem_args(&fault()), "netem delay 200ms 50ms 25% loss 1.5%");
        let plain = NetworkLatency { jitter: Span(Duration::ZERO), loss: None, ..fault() };
        assert_eq!(netem_args(&plain), "netem delay 200ms");
    }

    /// A `tc` that records its arguments, so the script runs for real without netem.
    fn shim_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("shakedown-tc-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tc = dir.join("tc");
        std::fs::write(&tc, format!("#!/bin/sh\necho \"$*\" >> '{}'\n", dir.join("calls").display())).unwrap();
        Command::new("chmod").arg("+x").arg(&tc).status().unwrap();
        dir
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls")).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    fn run_script(dir: &Path, ttl: Duration) -> std::process::Child {
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
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
            ["qdisc replace dev eth0 root netem delay 200ms 50ms 25% loss 1.5%", "qdisc del dev eth0 root"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn injector_removes_netem_on_term() {
        let dir = shim_dir("term");
        let mut child = run_script(&dir, Duration::from_secs(600));
        assert_eq!(wait_for_calls(&dir, 1).len(), 1, "netem must be applied first");
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "TERM is a clean exit: {status:?}");
        assert_eq!(calls(&dir).last().map(String::as_str), Some("qdisc del dev eth0 root"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_hostile_interface_name_stays_one_quoted_word() {
        let hostile = NetworkLatency { interface: "eth0'; rm -rf / #".into(), ..fault() };
        let script = injector_script(&hostile, Duration::from_secs(1));
        assert!(script.contains(r"IF='eth0'\''; rm -rf / #'"), "{script}");
    }
}
