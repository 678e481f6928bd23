//! One file per subcommand. Each is thin: parse, call the library, and return either the
//! verdict it reached and reported (`Ok(Outcome)`) or what went wrong (`Err(Failure)`).
//! [`dispatch`] is the one place a failure is printed, with its whole cause chain, and
//! turned into the exit code. The process builds one tokio runtime, here.

mod compare;
mod completions;
mod demo;
mod halt;
mod history;
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
use crate::exit::{CouldNotRun, Failure, InvalidInput, Outcome, cause_chain};
use crate::spec;

/// Runs the command and maps how it ended to the exit-code contract.
pub fn dispatch(cli: Cli) -> Outcome {
    let color = cli.global.color;
    // Known from the first moment: scrubbed from everything printed from here on.
    if let Some(token) = &cli.global.prometheus_token {
        token.register("the Prometheus token (--prometheus-token)");
    }
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
    if let Some(url) = &global.prometheus_url {
        crate::probes::prometheus::check_url_flag(url)
            .map_err(|e| InvalidInput::Flag(Box::new(e)))?;
    }
    runtime.block_on(async {
        match cli.command {
            Command::Completions { shell } => Ok(completions::completions(shell)),
            Command::Validate { files, output } => validate::validate(&files, output, global),
            Command::Plan { file, output } => plan::plan(&file, output, global).await,
            Command::Schema { summary } => Ok(schema::schema(summary)),
            Command::Run {
                files,
                revert_timeout,
                junit,
                wait_for_lock,
                output,
                baseline,
                max_regression,
                trend_runs,
                upload,
                notify,
                pushgateway,
            } => {
                let wait = wait_for_lock;
                let gate = run::GateFlags {
                    reference: baseline,
                    limits: max_regression,
                    trend_runs,
                };
                let evidence = run::Evidence {
                    junit: junit.as_deref(),
                    upload,
                    notify,
                    pushgateway,
                };
                run::run(&files, revert_timeout, evidence, wait, output, gate, global).await
            }
            Command::History {
                experiment,
                since,
                output,
            } => history::history(experiment.as_deref(), since, output, global),
            Command::Compare { before, after } => compare::compare(&before, &after, global),
            Command::Recover {
                journal,
                force,
                output,
                alertmanager_url,
                alertmanager_from,
            } => {
                let alertmanager = recover::AlertmanagerFlags {
                    url: alertmanager_url,
                    from: alertmanager_from,
                };
                recover::recover(journal.as_deref(), force, output, global, alertmanager).await
            }
            Command::Halt { reason, clear } => halt::halt(reason.as_deref(), clear, global).await,
            Command::Report {
                journal,
                formats,
                mirror_exit_code,
            } => report::report(&journal, &formats, mirror_exit_code, global),
            Command::Sandbox {
                config,
                port,
                kubeconfig_out,
                audit_log,
                rbac,
            } => {
                sandbox::sandbox(
                    config.as_deref(),
                    port,
                    kubeconfig_out.as_deref(),
                    audit_log,
                    rbac,
                )
                .await
            }
            Command::Demo {
                keep_running,
                history,
            } => demo::demo(keep_running, history, global).await,
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

/// How an `error:` headline looks when colour is on.
const ERROR_STYLE: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)));

/// Prints diagnostics to stderr, with each `error:` headline in bold red when colour
/// is wanted. Only line starts are styled: a quoted source line is the user's text, and
/// its terminal controls are written out before any style is added.
fn report_diagnostics(diagnostics: &spec::Diagnostics, color: ColorChoice) {
    let text = crate::report::text::clean(&diagnostics.to_string());
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

/// `--color` for the live console: `None` lets it decide (`run::console::auto_color`).
pub(crate) fn color_flag(choice: ColorChoice) -> Option<bool> {
    match choice {
        ColorChoice::Always => Some(true),
        ColorChoice::Never => Some(false),
        ColorChoice::Auto => None,
    }
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

/// Loads a spec file with the reference roots the flags allow (`--allow-path`).
fn load_spec(
    file: &std::path::Path,
    global: &crate::cli::GlobalArgs,
) -> Result<spec::Loaded, spec::Diagnostics> {
    spec::load_with(file, &load_options(global))
}

/// Loads several spec files as `load_spec` does, in parallel; results in the given order.
fn load_specs(
    files: &[std::path::PathBuf],
    global: &crate::cli::GlobalArgs,
) -> Vec<Result<spec::Loaded, spec::Diagnostics>> {
    spec::load_all(files, &load_options(global))
}

fn load_options(global: &crate::cli::GlobalArgs) -> spec::LoadOptions {
    let mut options = spec::LoadOptions::with_working_dir();
    options
        .allow_paths
        .extend(global.allow_paths.iter().cloned());
    options
}
