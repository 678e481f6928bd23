//! One file per subcommand. Each is thin: parse, call the library, map the outcome to
//! the `Outcome` that becomes the exit code. The process builds one tokio runtime, here.

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
use crate::exit::Outcome;
use crate::spec;

pub fn dispatch(cli: Cli) -> Outcome {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::say!("shakedown: cannot start the async runtime: {e}");
            return Outcome::CouldNotRun;
        }
    };
    let global = &cli.global;
    runtime.block_on(async {
        match cli.command {
            Command::Completions { shell } => completions::completions(shell),
            Command::Validate { files } => validate::validate(&files, global),
            Command::Plan { file, output } => plan::plan(&file, output, global).await,
            Command::Schema => schema::schema(),
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
