//! `shakedown run`: parse the files, then hand them to the executor's session.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{self, GlobalArgs, OutputFormat};
use crate::executor::session::{self, SessionOptions};
use crate::exit::{Failure, InvalidInput, Outcome};
use crate::plan::DryRun;

/// Validates every file first: one invalid file means nothing is touched.
pub async fn run(
    files: &[PathBuf],
    revert_timeout: Duration,
    junit: Option<&Path>,
    wait_for_lock: Option<Duration>,
    output: OutputFormat,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let mut loaded = Vec::new();
    let mut invalid = Vec::new();
    for file in files {
        match super::load_spec(file, global) {
            Ok(l) => loaded.push(l),
            Err(diagnostics) => invalid.push(diagnostics),
        }
    }
    if !invalid.is_empty() {
        return Err(InvalidInput::Specs(invalid).into());
    }
    let mut options = session_options(global, revert_timeout, junit);
    options.lock.wait = wait_for_lock;
    options.output = output.machine();
    session::run_files(&loaded, &options).await
}

/// The flags, settled once into what the session runs with.
pub(super) fn session_options(
    global: &GlobalArgs,
    revert_timeout: Duration,
    junit: Option<&Path>,
) -> SessionOptions {
    SessionOptions {
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone(),
        namespace: global.namespace.clone(),
        prometheus_url: global.prometheus_url.clone(),
        prometheus_token: global.prometheus_token.clone(),
        prometheus_token_file: global.prometheus_token_file.clone(),
        output_dir: global.output_dir.clone(),
        seed: global.seed,
        dry_run: dry_run(global.dry_run),
        yes: global.yes,
        quiet: global.quiet,
        verbose: global.verbose > 0,
        color: super::color_flag(global.color),
        revert_timeout,
        junit: junit.map(Path::to_path_buf),
        lock: crate::cluster::lease::LockSettings {
            namespace: global.lock_namespace.clone(),
            wait: None,
        },
        output: None,
        connect_timeout: global.connect_timeout,
        halt_namespace: super::halt::namespace(global.halt_namespace.as_deref()),
    }
}

pub(super) fn dry_run(flag: cli::DryRun) -> DryRun {
    match flag {
        cli::DryRun::None => DryRun::None,
        cli::DryRun::Client => DryRun::Client,
        cli::DryRun::Server => DryRun::Server,
    }
}
