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

use std::fmt::Write as _;

use anstyle::{AnsiColor, Color, Style};

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

/// How an `error:` headline looks when colour is on.
const ERROR_STYLE: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)));

/// Prints diagnostics to stderr, with each `error:` headline in bold red when colour
/// is wanted. Only line starts are styled: a quoted source line is the user's text.
fn report_diagnostics(diagnostics: &spec::Diagnostics, color: ColorChoice) {
    let text = diagnostics.to_string();
    if !use_color(color) {
        crate::say_raw!("{text}");
        return;
    }
    let mut styled = String::with_capacity(text.len() + 32);
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("error: ") {
            Some(rest) => {
                let _ = write!(styled, "{ERROR_STYLE}error{ERROR_STYLE:#}: {rest}");
            }
            None => styled.push_str(line),
        }
    }
    crate::say_raw!("{styled}");
}

/// `--color auto` decides as anstream does for stderr: colour on a terminal, unless
/// `NO_COLOR` is set and non-empty (no-color.org), `CLICOLOR=0` or `TERM=dumb`; and
/// colour even off a terminal when `CLICOLOR_FORCE` is set and non-empty.
fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
        }
    }
}
