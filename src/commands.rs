//! One function per subcommand. Each returns the `Outcome` that becomes the exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;

use crate::cli::{Cli, ColorChoice, Command, GlobalArgs, OutputFormat};
use crate::exit::Outcome;
use crate::{cluster, plan as planner, spec};

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
        Command::Validate { files } => validate(&files, &cli.global),
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
fn validate(files: &[PathBuf], global: &GlobalArgs) -> Outcome {
    let quiet = global.quiet;
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
                report_diagnostics(&diagnostics, global.color);
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

/// Prints the timeline and, when the cluster answers, the targets that would be hit.
/// Nothing is mutated. Exit 3 when the cluster answers but a fault has no targets.
fn plan(file: &Path, output: OutputFormat, global: &GlobalArgs) -> Outcome {
    let loaded = match spec::load(file) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            report_diagnostics(&diagnostics, global.color);
            return Outcome::InvalidInput;
        }
    };
    let seed = global.seed.unwrap_or_else(planner::fresh_seed);
    let inventory = read_inventory(&loaded, global);
    let plan = planner::plan(&loaded, seed, inventory.as_ref());
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        ),
        OutputFormat::Text => print!("{plan}"),
    }
    let unresolved = plan
        .entries
        .iter()
        .any(|e| matches!(e.targets, Some(Err(_))));
    if unresolved {
        Outcome::CouldNotRun
    } else {
        Outcome::Passed
    }
}

/// Best effort: `plan` is useful offline, so an unreachable cluster is a note, not an error.
fn read_inventory(loaded: &spec::Loaded, global: &GlobalArgs) -> Option<planner::Inventory> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let (mut namespaces, with_nodes) = planner::inventory_needs(loaded);
    let result = runtime.block_on(async {
        let connection =
            cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
        let default_namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| connection.default_namespace.clone());
        if !namespaces.contains(&default_namespace) {
            namespaces.push(default_namespace.clone());
        }
        if !global.quiet {
            eprintln!(
                "shakedown: context `{}`, API server {}",
                connection.context, connection.server
            );
        }
        let mut inventory = cluster::inventory(
            &connection,
            &namespaces,
            with_nodes,
            Duration::from_secs(10),
        )
        .await?;
        inventory.default_namespace = default_namespace;
        Ok::<_, cluster::ClusterError>(inventory)
    });
    match result {
        Ok(inventory) => Some(inventory),
        Err(e) => {
            if !global.quiet {
                eprintln!(
                    "shakedown: cluster not reachable ({e}); showing the timeline without targets"
                );
            }
            None
        }
    }
}

/// Prints diagnostics to stderr, with `error:` in red when colour is wanted.
fn report_diagnostics(diagnostics: &spec::Diagnostics, color: ColorChoice) {
    let text = diagnostics.to_string();
    let text = if use_color(color) {
        text.replace("error: ", "\x1b[1;31merror\x1b[0m: ")
    } else {
        text
    };
    eprint!("{text}");
}

/// `auto` means: stderr is a terminal, `NO_COLOR` is unset and `TERM` is not `dumb`.
fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

fn not_implemented(command: &str) -> Outcome {
    let _ = writeln!(
        std::io::stderr(),
        "shakedown: `{command}` is not implemented yet"
    );
    Outcome::InvalidInput
}
