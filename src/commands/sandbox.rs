//! `shakedown sandbox`: serve the simulated cluster until SIGINT/SIGTERM.

use std::io::Write;

use crate::exit::Outcome;

/// `shakedown sandbox`: serve until SIGINT/SIGTERM.
pub async fn sandbox(
    config: Option<&std::path::Path>,
    port: u16,
    kubeconfig_out: Option<&std::path::Path>,
) -> Outcome {
    use shakedown_sandbox::{self as sandbox, SandboxConfig};
    let config = match config.map(SandboxConfig::load).transpose() {
        Ok(config) => config.unwrap_or_default(),
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "shakedown: {}",
                shakedown_sandbox::error_chain(&err)
            );
            return Outcome::InvalidInput;
        }
    };
    {
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
    }
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
