//! `shakedown completions`: shell completion scripts.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Outcome;

/// Writes the completion script for `shell` to stdout. Rendered into memory first:
/// clap_complete panics on a write error, and a closed pipe is not a crash.
pub fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "shakedown", &mut script);
    let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
    Outcome::Passed
}
