//! `shakedown sandbox`: serve the simulated cluster until SIGINT/SIGTERM.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::exit::{CouldNotRun, Failure, InvalidInput, Outcome, Signal};

/// `shakedown sandbox`: serve until SIGINT/SIGTERM.
pub async fn sandbox(
    config: Option<&Path>,
    port: u16,
    kubeconfig_out: Option<&Path>,
    audit_log: Option<PathBuf>,
    rbac: bool,
) -> Result<Outcome, Failure> {
    use shakedown_sandbox::{self as sandbox, SandboxConfig, SandboxError};
    let mut config = config
        .map(SandboxConfig::load)
        .transpose()
        .map_err(|e| InvalidInput::SandboxConfig(Box::new(e)))?
        .unwrap_or_default();
    if audit_log.is_some() {
        config.audit_log = audit_log;
    }
    // The flag turns RBAC on (a config file's `rbac: true` stays on without it), and
    // HTTPS with it: kubectl sends a ServiceAccount's token only over TLS.
    config.rbac |= rbac;
    config.tls |= rbac;
    let handle = sandbox::start(config, port).await.map_err(|e| match e {
        // A path the user named that cannot be written is their input to fix.
        SandboxError::AuditLog(_) => Failure::from(InvalidInput::Flag(Box::new(e))),
        e => Failure::from(CouldNotRun::Sandbox(Box::new(e))),
    })?;
    let kubeconfig = kubeconfig_out.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "shakedown-sandbox-{}.kubeconfig",
            handle.addr.port()
        ))
    });
    // On an error the handle is dropped, which stops the server.
    handle
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| CouldNotRun::Sandbox(Box::new(e)))?;
    let _ = writeln!(
        std::io::stdout(),
        "sandbox serving at {}\nkubeconfig written to {}\n  export KUBECONFIG={}",
        handle.url,
        kubeconfig.display(),
        kubeconfig.display()
    );
    let signal = wait_for_signal().await;
    handle.shutdown().await;
    Ok(Outcome::Interrupted(signal))
}

async fn wait_for_signal() -> Signal {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return Signal::Int;
    };
    tokio::select! {
        _ = int.recv() => Signal::Int,
        _ = term.recv() => Signal::Term,
    }
}
