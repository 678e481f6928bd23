//! `shakedown run`: parse the files, then hand them to the executor's session.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{self, GlobalArgs, OutputFormat};
use crate::executor::session::{self, SessionOptions};
use crate::exit::{Failure, InvalidInput, Outcome};
use crate::plan::DryRun;
use crate::report::history::{self, Baseline};

/// Validates every file first: one invalid file means nothing is touched.
pub async fn run(
    files: &[PathBuf],
    revert_timeout: Duration,
    junit: Option<&Path>,
    wait_for_lock: Option<Duration>,
    output: OutputFormat,
    gate: Option<GateFlags>,
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
    if let Some(gate) = gate {
        options.baselines = baselines(&loaded, &gate, global)?;
    }
    options.lock.wait = wait_for_lock;
    options.output = output.machine();
    session::run_files(&loaded, &options).await
}

/// `--baseline` and `--max-regression`, as given.
pub struct GateFlags {
    pub reference: String,
    pub limits: String,
}

/// Each file's baseline, found before anything runs (so `latest` is the newest run
/// *before* this one). A gate's first run has none: it is not judged, says so, and
/// becomes the baseline of the next. A named folder or run id that does not read is
/// invalid input (exit 2): a typo must not switch the gate off silently.
fn baselines(
    loaded: &[crate::spec::Loaded],
    gate: &GateFlags,
    global: &GlobalArgs,
) -> Result<BTreeMap<String, Baseline>, Failure> {
    let flag = |why: String| Failure::from(InvalidInput::Flag(why.into()));
    let limits = history::parse_limits(&gate.limits)
        .map_err(|why| flag(format!("--max-regression {}: {why}", gate.limits)))?;
    let mut found = BTreeMap::new();
    for file in loaded {
        let name = file.name();
        match history::resolve_for(&global.output_dir, &gate.reference, name)
            .map_err(|why| flag(format!("--baseline {}: {why}", gate.reference)))?
        {
            Some(run) => {
                crate::say!(
                    "shakedown: `{name}` is judged against run {} ({})",
                    run.run_id,
                    gate.limits
                );
                found.insert(
                    name.to_owned(),
                    Baseline {
                        run,
                        limits,
                        limits_text: gate.limits.clone(),
                    },
                );
            }
            None => crate::say!(
                "shakedown: no earlier run of `{name}` in {} for --baseline {}: this run is not judged for regressions (it becomes the baseline)",
                global.output_dir.display(),
                gate.reference
            ),
        }
    }
    Ok(found)
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
        revert_timeout,
        junit: junit.map(Path::to_path_buf),
        lock: crate::cluster::lease::LockSettings {
            namespace: global.lock_namespace.clone(),
            wait: None,
        },
        output: None,
        connect_timeout: global.connect_timeout,
        halt_namespace: super::halt::namespace(global.halt_namespace.as_deref()),
        baselines: BTreeMap::new(),
    }
}

pub(super) fn dry_run(flag: cli::DryRun) -> DryRun {
    match flag {
        cli::DryRun::None => DryRun::None,
        cli::DryRun::Client => DryRun::Client,
        cli::DryRun::Server => DryRun::Server,
    }
}
