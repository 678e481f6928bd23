//! The exit-code contract is written down twice for people (the README's "Exit codes"
//! table and `shakedown run --help`) and decided once in code (`exit::Outcome`). These
//! tests hold both texts to the enum, so a new outcome or label cannot go undocumented.

use std::process::Command;

use shakedown::exit::{ExitCodeRow, exit_code_table, exit_codes_help};

/// `(code, labels)` per row of the README's "Exit codes" table, in order (the labels of
/// a row in any order).
fn readme_rows() -> Vec<(String, Vec<String>)> {
    let readme = std::fs::read_to_string("README.md").expect("README.md reads");
    let start = readme
        .find("## Exit codes")
        .expect("the README has an \"Exit codes\" section");
    readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and its `|---|` line
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert!(cells.len() >= 3, "exit | verdict | meaning, got: {l}");
            let mut labels: Vec<String> = cells[1].split(", ").map(str::to_owned).collect();
            labels.sort();
            (cells[0].to_owned(), labels)
        })
        .collect()
}

fn enum_rows() -> Vec<(String, Vec<String>)> {
    exit_code_table()
        .into_iter()
        .map(|ExitCodeRow { code, labels, .. }| {
            let mut labels: Vec<String> = labels.into_iter().map(str::to_owned).collect();
            labels.sort();
            (code, labels)
        })
        .collect()
}

/// Regression (issue 12): the README lacked exit 5 (HALTED) and the DRY RUN verdict.
#[test]
fn the_readme_exit_code_table_lists_the_codes_and_labels_of_the_outcome_enum() {
    let readme = readme_rows();
    let code = enum_rows();
    let missing: Vec<_> = code.iter().filter(|r| !readme.contains(r)).collect();
    let extra: Vec<_> = readme.iter().filter(|r| !code.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md's exit-code table differs from exit::Outcome:\n  \
         missing from the README (code, labels): {missing:?}\n  \
         in the README but not in the enum: {extra:?}"
    );
    assert_eq!(readme, code, "same rows, in the enum's order");
}

/// Regression (issue 12): the exit codes were in the README but not in `run --help`.
#[test]
fn run_help_lists_every_exit_code_from_the_outcome_enum() {
    let out = Command::new(env!("CARGO_BIN_EXE_shakedown"))
        .args(["run", "--help"])
        .output()
        .expect("shakedown runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains(&exit_codes_help()), "{help}");
    for row in exit_code_table() {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{} ", row.code)))
            .unwrap_or_else(|| panic!("no line for exit {} in:\n{help}", row.code));
        assert!(line.contains(&row.meaning) || row.code == "0", "{line}");
    }
    for must in ["5", "HALTED", "DRY RUN", "128 + n", "143 SIGTERM"] {
        assert!(help.contains(must), "{must} missing:\n{help}");
    }
}
