//! `shakedown completions`: shell completion scripts.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Outcome;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> Outcome {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "shakedown",
        &mut std::io::stdout(),
    );
    Outcome::Passed
}
