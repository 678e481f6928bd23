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
    evidence: Evidence<'_>,
    wait_for_lock: Option<Duration>,
    output: OutputFormat,
    gate: GateFlags,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let Evidence {
        junit,
        upload,
        notify,
        pushgateway,
    } = evidence;
    if let Some(url) = upload.as_deref() {
        check_upload_flag(url)?;
    }
    let mut loaded = Vec::new();
    let mut invalid = Vec::new();
    for loaded_file in super::load_specs(files, global) {
        match loaded_file {
            Ok(l) => loaded.push(l),
            Err(diagnostics) => invalid.push(diagnostics),
        }
    }
    if !invalid.is_empty() {
        return Err(InvalidInput::Specs(invalid).into());
    }
    let mut options = session_options(global, revert_timeout, junit);
    options.baselines = baselines(&loaded, &gate, global)?;
    options.trend_runs = gate.trend_runs;
    options.lock.wait = wait_for_lock;
    options.output = output.machine();
    options.upload = upload;
    options.notify = notify;
    options.pushgateway = pushgateway;
    session::run_files(&loaded, &options).await
}

/// Where a run's evidence goes besides its folder: `--junit PATH` and `--upload URL`.
pub struct Evidence<'a> {
    pub junit: Option<&'a Path>,
    pub upload: Option<String>,
    /// `--notify` and `--pushgateway`: who hears about the run as it happens
    /// (`run::outbound`).
    pub notify: Vec<String>,
    pub pushgateway: Option<String>,
}

/// `--upload URL` must not carry credentials (they would be printed with every message
/// about the upload): exit 2, naming where they belong instead.
fn check_upload_flag(url: &str) -> Result<(), Failure> {
    match crate::spec::url::credential_in(url.trim()) {
        Some(credential) => Err(InvalidInput::Flag(
            format!(
                "--upload {}: the URL must not carry {credential}: put the credentials in the experiment's upload: block (bearerTokenEnv, bearerTokenFile or basicAuth)",
                crate::probes::prometheus::display_url(url)
            )
            .into(),
        )
        .into()),
        None => Ok(()),
    }
}

/// `--baseline`, `--max-regression` and `--trend-runs`: the run against its history.
pub struct GateFlags {
    pub reference: Option<String>,
    pub limits: Option<String>,
    pub trend_runs: usize,
}

/// How many earlier runs the report's recovery trend shows by default.
pub(super) const DEFAULT_TREND_RUNS: usize = 12;

/// The limits when neither the flag nor the experiment gives any.
const DEFAULT_LIMITS: &str = "recovery=20%,score=5";

/// Each file's baseline, found before anything runs (so `latest` is the newest run
/// *before* this one), from the flags or else the experiment's `regression:` block. A
/// gate's first run has none: it is not judged, says so, and becomes the baseline of
/// the next. A named folder or run id that does not read is invalid input (exit 2): a
/// typo must not switch the gate off silently.
fn baselines(
    loaded: &[crate::spec::Loaded],
    gate: &GateFlags,
    global: &GlobalArgs,
) -> Result<BTreeMap<String, Baseline>, Failure> {
    let flag = |why: String| Failure::from(InvalidInput::Flag(why.into()));
    let mut found = BTreeMap::new();
    for file in loaded {
        let block = match &file.document {
            crate::spec::Document::Experiment(e) => e.spec.regression.as_ref(),
            crate::spec::Document::Scenario(_) => None,
        };
        let Some(reference) = gate
            .reference
            .as_deref()
            .or(block.map(|b| b.baseline.as_str()))
        else {
            continue;
        };
        let limits_text = gate
            .limits
            .clone()
            .or_else(|| block.map(limits_of))
            .unwrap_or_else(|| DEFAULT_LIMITS.to_owned());
        let limits = history::parse_limits(&limits_text)
            .map_err(|why| flag(format!("--max-regression {limits_text}: {why}")))?;
        let name = file.name();
        match history::resolve_for(&global.output_dir, reference, name)
            .map_err(|why| flag(format!("--baseline {reference}: {why}")))?
        {
            Some(run) => {
                crate::say!(
                    "shakedown: `{name}` is judged against run {} ({limits_text})",
                    run.run_id
                );
                found.insert(
                    name.to_owned(),
                    Baseline {
                        run,
                        limits,
                        limits_text,
                    },
                );
            }
            None => crate::say!(
                "shakedown: no earlier run of `{name}` in {} for baseline `{reference}`: this run is not judged for regressions (it becomes the baseline)",
                global.output_dir.display()
            ),
        }
    }
    Ok(found)
}

/// An experiment's `regression:` block in `--max-regression` words.
fn limits_of(block: &crate::spec::RegressionSpec) -> String {
    if block.recovery.is_none() && block.score.is_none() {
        // Only a baseline (and maybe a floor): the default limits apply.
        let floor = block.recovery_floor.map(|f| {
            format!(
                ",recoveryFloor={}",
                crate::spec::duration::format_duration(f.0)
            )
        });
        return format!("{DEFAULT_LIMITS}{}", floor.unwrap_or_default());
    }
    let mut parts = Vec::new();
    if let Some(share) = block.recovery {
        parts.push(format!("recovery={}%", share.0));
    }
    if let Some(points) = block.score {
        parts.push(format!("score={}", points.0));
    }
    if let Some(floor) = block.recovery_floor {
        parts.push(format!(
            "recoveryFloor={}",
            crate::spec::duration::format_duration(floor.0)
        ));
    }
    parts.join(",")
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
        baselines: BTreeMap::new(),
        trend_runs: DEFAULT_TREND_RUNS,
        upload: None,
        notify: Vec::new(),
        pushgateway: None,
    }
}

pub(super) fn dry_run(flag: cli::DryRun) -> DryRun {
    match flag {
        cli::DryRun::None => DryRun::None,
        cli::DryRun::Client => DryRun::Client,
        cli::DryRun::Server => DryRun::Server,
    }
}
