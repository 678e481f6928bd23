//! Hostile or broken files are rejected before decoding, quickly and with bounded
//! memory. This file holds one test per process-wide measurement on purpose: the peak
//! RSS check reads this test process's own high-water mark.

mod support;

use std::path::PathBuf;

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shakedown-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn alias_bomb_is_rejected_with_bounded_memory() {
    let bomb = support::alias_bomb().into_bytes();
    assert!(
        bomb.len() >= 1_000_000 && bomb.len() < 1_048_576,
        "size {}",
        bomb.len()
    );
    let path = scratch("bomb.yaml", &bomb);
    let err = shakedown::spec::load(&path).expect_err("an alias bomb must be rejected");
    let text = err.to_string();
    assert!(
        text.contains("YAML expands to more than 100000 nodes"),
        "{text}"
    );
    assert!(text.contains("alias bombs"), "{text}");
    assert!(text.contains("bomb.yaml:"), "{text}");
    let peak_mib = peak_rss_kib() / 1024;
    assert!(
        peak_mib < 100,
        "peak RSS {peak_mib} MiB while rejecting the bomb"
    );
}
