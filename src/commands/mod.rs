//! One file per subcommand. Each is thin: parse, call the library, and return either the
//! verdict it reached and reported (`Ok(Outcome)`) or what went wrong (`Err(Failure)`).
//! [`dispatch`] is the one place a failure is printed, with its whole cause chain, and
//! turned into the exit code. The process builds one tokio runtime, here.

mod completions;
mod demo;
mod plan;
mod recover;
mod report;
mod run;
mod sandbox;
mod schema;
mod validate;

use std::io::IsTerminal;

use crate::cli::{Cli, ColorChoice, Command};
use crate::exit::{CouldNotRun, Failure, Outcome, cause_chain};
use crate::spec;

/// Runs the command and maps how it ended to the exit-code contract.
pub fn dispatch(cli: Cli) -> Outcome {
    let color = cli.global.color;
    match run_command(cli) {
        Ok(outcome) => outcome,
        Err(failure) => {
            print_failure(&failure, color);
            failure.outcome()
        }
    }
}

fn run_command(cli: Cli) -> Result<Outcome, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CouldNotRun::Runtime)?;
    let global = &cli.global;
    runtime.block_on(async {
        match cli.command {
            Command::Completions { shell } => Ok(completions::completions(shell)),
            Command::Validate { files } => validate::validate(&files, global),
            Command::Plan { file, output } => plan::plan(&file, output, global).await,
            Command::Schema => Ok(schema::schema()),
            Command::Run {
                files,
                revert_timeout,
                junit,
            } => run::run(&files, revert_timeout, junit.as_deref(), global).await,
            Command::Recover { journal } => recover::recover(journal.as_deref(), global).await,
            Command::Report {
                journal,
                formats,
                mirror_exit_code,
            } => report::report(&journal, &formats, mirror_exit_code, global),
            Command::Sandbox {
                config,
                port,
                kubeconfig_out,
            } => sandbox::sandbox(config.as_deref(), port, kubeconfig_out.as_deref()).await,
            Command::Demo { keep_running } => demo::demo(keep_running, global).await,
        }
    })
}

/// The one print site: spec diagnostics first (they carry their own `file:line:col`),
/// then the failure's details, then the failure with its whole cause chain.
fn print_failure(failure: &Failure, color: ColorChoice) {
    for diagnostics in failure.diagnostics() {
        report_diagnostics(diagnostics, color);
    }
    for line in failure.details() {
        crate::say!("shakedown: {line}");
    }
    crate::say!("shakedown: {}", cause_chain(failure));
}

/// Prints diagnostics to stderr, with `error:` in red when colour is wanted.
fn report_diagnostics(diagnostics: &spec::Diagnostics, color: ColorChoice) {
    let text = diagnostics.to_string();
    let text = if use_color(color) {
        text.replace("error: ", "\x1b[1;31merror\x1b[0m: ")
    } else {
        text
    };
    crate::say_raw!("{text}");
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
