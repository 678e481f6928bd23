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
        Command::Sandbox {
            config,
            port,
            kubeconfig_out,
        } => sandbox(config.as_deref(), port, kubeconfig_out.as_deref()),
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

/// `shakedown sandbox`: serve until SIGINT/SIGTERM.
fn sandbox(
    config: Option<&std::path::Path>,
    port: u16,
    kubeconfig_out: Option<&std::path::Path>,
) -> Outcome {
    use crate::sandbox::{self, SandboxConfig};
    let config = match config.map(SandboxConfig::load).transpose() {
        Ok(config) => config.unwrap_or_default(),
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "shakedown: {}",
                crate::sandbox::error_chain(&err)
            );
            return Outcome::InvalidInput;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "shakedown: cannot start the async runtime: {err}"
            );
            return Outcome::CouldNotRun;
        }
    };
    runtime.block_on(async {
        let handle = match sandbox::start(config, port).await {
            Ok(handle) => handle,
            Err(err) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "shakedown: {}",
                    sandbox::error_chain(&err)
                );
                return Outcome::CouldNotRun;
            }
        };
        let kubeconfig = kubeconfig_out
            .map(std::path::Path::to_path_buf)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "shakedown-sandbox-{}.kubeconfig",
                    handle.addr.port()
                ))
            });
        if let Err(err) = handle.write_kubeconfig(&kubeconfig) {
            let _ = writeln!(
                std::io::stderr(),
                "shakedown: {}",
                sandbox::error_chain(&err)
            );
            return Outcome::CouldNotRun;
        }
        let _ = writeln!(
            std::io::stdout(),
            "sandbox serving at {}\nkubeconfig written to {}\n  export KUBECONFIG={}",
            handle.url,
            kubeconfig.display(),
            kubeconfig.display()
        );
        let outcome = wait_for_signal().await;
        handle.shutdown().await;
        outcome
    })
}

async fn wait_for_signal() -> Outcome {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return Outcome::Interrupted;
    };
    tokio::select! {
        _ = int.recv() => Outcome::Interrupted,
        _ = term.recv() => Outcome::Terminated,
    }
}
