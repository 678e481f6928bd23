//! One function per subcommand. Each returns the `Outcome` that becomes the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, Command, GlobalArgs, OutputFormat};
use crate::exit::Outcome;
use crate::{plan as planner, spec};

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
        Command::Validate { files } => validate(&files, cli.global.quiet),
        Command::Plan { file, output } => plan(&file, output, &cli.global),
        Command::Schema => {
            let schema = spec::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            Outcome::Passed
        }
        Command::Run { .. } => not_implemented("run"),
        Command::Recover { .. } => not_implemented("recover"),
        Command::Report { .. } => not_implemented("report"),
        Command::Sandbox { .. } => not_implemented("sandbox"),
        Command::Demo { .. } => not_implemented("demo"),
    }
}

/// Validates every file (and what it references) and reports every problem found.
fn validate(files: &[PathBuf], quiet: bool) -> Outcome {
    let mut failed = 0;
    for file in files {
        match spec::load(file) {
            Ok(loaded) => {
                if !quiet {
                    let kind = match loaded.document {
                        spec::Document::Scenario(_) => "Scenario",
                        spec::Document::Experiment(_) => "Experiment",
                    };
                    println!("ok: {} ({kind} {})", file.display(), loaded.name());
                }
            }
            Err(diagnostics) => {
                failed += 1;
                eprint!("{diagnostics}");
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "shakedown: {failed} of {} file(s) invalid; nothing was run",
            files.len()
        );
        Outcome::InvalidInput
    } else {
        Outcome::Passed
    }
}

/// Prints the timeline; with a reachable cluster (not yet wired) it would add the targets.
fn plan(file: &Path, output: OutputFormat, global: &GlobalArgs) -> Outcome {
    let loaded = match spec::load(file) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return Outcome::InvalidInput;
        }
    };
    let seed = global.seed.unwrap_or_else(planner::fresh_seed);
    let plan = planner::plan(&loaded, seed, None);
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        ),
        OutputFormat::Text => print!("{plan}"),
    }
    Outcome::Passed
}

fn not_implemented(command: &str) -> Outcome {
    let _ = writeln!(
        std::io::stderr(),
        "shakedown: `{command}` is not implemented yet"
    );
    Outcome::InvalidInput
}
