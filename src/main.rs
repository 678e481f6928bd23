use std::process::ExitCode;

use clap::Parser;
use shakedown::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    shakedown::commands::dispatch(cli).into()
}
