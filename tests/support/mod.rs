//! Shared by the integration tests and the benchmark (`#[path]`-included there).
#![allow(dead_code)] // each test crate uses a different subset

use std::path::PathBuf;

/// The example spec files we ship, sorted.
pub fn example_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["scenarios", "scenarios/demo", "experiments"] {
        for entry in std::fs::read_dir(dir).expect("example dir") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A ~1 MB "billion laughs": ten levels of nine aliases each, padded with more aliases.
pub fn alias_bomb() -> String {
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
    text
}
