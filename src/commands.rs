//! One function per subcommand. Each returns the `Outcome` that becomes the exit code.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::exit::Outcome;

pub fn dispatch(cli: Cli) -> Outcome {
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "shakedown",
                &mut std::io::stdout(),
            );
            Outcome::Passed
        }
        Command::Validate { .. } => not_implemented("validate"),
        Command::Plan { .. } => not_implemented("plan"),
        Command::Schema => not_implemented("schema"),
        Command::Run { .. } => not_implemented("run"),
        Command::Recover { .. } => not_implemented("recover"),
        Command::Report { .. } => not_implemented("report"),
        Command::Sandbox { .. } => not_implemented("sandbox"),
        Command::Demo { .. } => not_implemented("demo"),
    }
}

fn not_implemented(command: &str) -> Outcome {
    let _ = writeln!(
        std::io::stderr(),
        "shakedown: `{command}` is not implemented yet"
    );
    Outcome::InvalidInput
}
