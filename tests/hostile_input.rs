//! Hostile or broken files are rejected before decoding, quickly and with bounded
//! memory. This file holds one test per process-wide measurement on purpose: the peak
//! RSS check reads this test process's own high-water mark.

use std::path::PathBuf;

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shakedown-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// A ~1 MB "billion laughs": ten levels of nine aliases each, padded with anchors.
fn alias_bomb() -> Vec<u8> {
    let mut text = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for level in 1..=10 {
        let prev = format!("*a{}", level - 1);
        let refs = [prev.as_str(); 9].join(",");
        text.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    let mut i = 0;
    while text.len() < 1_000_000 {
        text.push_str(&format!(
            "pad{i}: [*a9, *a9, *a9, *a9, *a9, *a9, *a9, *a9]\n"
        ));
        i += 1;
    }
    text.into_bytes()
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
    let bomb = alias_bomb();
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
