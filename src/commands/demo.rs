//! `shakedown demo`: the newcomer's first command (see `crate::demo` for the parts).

use std::path::Path;
use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::demo::DemoError;
use crate::executor::session::{self, SessionOptions};
use crate::exit::{Failure, InvalidInput, Outcome, Signal};
use crate::spec;

/// The demo's runs as `shakedown history` lists them, and the commands to try next.
fn show_history(out: &Path) {
    let Ok(entries) = crate::report::history::scan(out) else {
        return;
    };
    let runs = crate::report::history::select(&entries, None, None);
    crate::out!("\nThe demo's runs, newest first (`shakedown history`):\n");
    crate::out_raw!("{}", crate::report::history::table(&runs, &[]));
    crate::out!(
        "\nTry: shakedown --output-dir {dir} history\n     shakedown --output-dir {dir} compare previous latest",
        dir = out.display()
    );
}

/// A series once the sandbox's metrics are in two scrapes (one per second).
const SCRAPED_TWICE: &str =
    "count_over_time(kube_deployment_status_replicas_available{deployment=\"checkout\"}[1m]) >= 2";

/// The newcomer's first command: sandbox + Prometheus + the demo experiment + reports.
/// A deviation is the demo working as designed (one hypothesis breaks on purpose), so
/// it exits 0 then; infrastructure failures and interrupts keep their codes.
pub async fn demo(
    keep_running: bool,
    history: bool,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let prometheus = crate::demo::find_prometheus().ok_or(DemoError::PrometheusMissing)?;
    match demo_async(&prometheus, keep_running, history, global).await? {
        Outcome::Deviated => Ok(Outcome::Passed),
        outcome => Ok(outcome),
    }
}

/// The demo's servers, stopped together on every exit path.
struct Servers {
    sandbox: shakedown_sandbox::SandboxHandle,
    prometheus: crate::demo::LocalPrometheus,
    alertmanager: Option<crate::demo::LocalAlertmanager>,
}

impl Servers {
    async fn stop(self) {
        self.prometheus.stop().await;
        if let Some(am) = self.alertmanager {
            am.stop().await;
        }
        self.sandbox.shutdown().await;
    }

    /// Waits for Prometheus's second scrape and Alertmanager's readiness, together.
    async fn ready(&mut self) -> Result<(), DemoError> {
        let patience = Duration::from_secs(60);
        let alertmanager = async {
            match self.alertmanager.as_mut() {
                Some(am) => am.wait_ready(patience).await,
                None => Ok(()),
            }
        };
        let (scraped, am) = tokio::join!(
            self.prometheus.wait_for(SCRAPED_TWICE, patience),
            alertmanager
        );
        scraped.and(am)
    }
}

/// Starts the sandbox, Alertmanager when it is installed, and Prometheus (scraping the
/// sandbox, evaluating the demo's rules, notifying Alertmanager); writes the specs.
async fn start_servers(
    prometheus: &Path,
    out: &Path,
) -> Result<(Servers, std::path::PathBuf), DemoError> {
    use crate::demo::{LocalAlertmanager, LocalPrometheus, alerting_config, start_sandbox};
    let sandbox = start_sandbox().await?;
    let alertmanager = match crate::demo::find_alertmanager() {
        Some(binary) => match LocalAlertmanager::start(&binary, &out.join("alertmanager")).await {
            Ok(am) => Some(am),
            Err(e) => {
                sandbox.shutdown().await;
                return Err(e);
            }
        },
        None => {
            crate::say!(
                "shakedown: Alertmanager is not installed, so alerts are read from Prometheus; {}",
                crate::demo::ALERTMANAGER_HINT
            );
            None
        }
    };
    let dir = out.join("prometheus");
    let started = match alerting_config(&dir, alertmanager.as_ref().map(|am| am.port)) {
        Ok(extra) => {
            LocalPrometheus::start_configured(
                prometheus,
                &dir,
                &sandbox.addr.to_string(),
                &extra,
                |_| Vec::new(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let prometheus = match started {
        Ok(prometheus) => prometheus,
        Err(e) => {
            if let Some(am) = alertmanager {
                am.stop().await;
            }
            sandbox.shutdown().await;
            return Err(e);
        }
    };
    let servers = Servers {
        sandbox,
        prometheus,
        alertmanager,
    };
    let am_url = servers.alertmanager.as_ref().map(|am| am.url.clone());
    match crate::demo::write_demo_specs(&out.join("spec"), am_url.as_deref()) {
        Ok(experiment) => Ok((servers, experiment)),
        Err(e) => {
            servers.stop().await;
            Err(e)
        }
    }
}

async fn demo_async(
    prometheus: &Path,
    keep_running: bool,
    history: bool,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let out = global.output_dir.join(format!("demo-{stamp}"));
    let spec_dir = out.join("spec");
    let (mut servers, experiment) = start_servers(prometheus, &out).await?;
    let kubeconfig = out.join("kubeconfig");
    if let Err(e) = servers.sandbox.write_kubeconfig(&kubeconfig) {
        servers.stop().await;
        return Err(DemoError::Sandbox(e).into());
    }
    crate::say!("shakedown: sandbox cluster at {}", servers.sandbox.url);
    if let Some(am) = &servers.alertmanager {
        crate::say!("shakedown: alertmanager at {}", am.url);
    }
    crate::say!(
        "shakedown: prometheus at {}, waiting for the first scrapes",
        servers.prometheus.url
    );
    // The run starts once Prometheus has scraped the sandbox twice (the baseline's
    // rates need two points) and Alertmanager answers: nothing more is worth waiting for.
    let warmed = tokio::select! {
        ready = servers.ready() => Some(ready),
        _ = tokio::signal::ctrl_c() => None,
    };
    let Some(warmed) = warmed else {
        servers.stop().await;
        return Ok(Outcome::Interrupted(Signal::Int));
    };
    if let Err(e) = warmed {
        servers.stop().await;
        return Err(e.into());
    }
    // The demo wrote this whole tree itself; `--output-dir` may put it outside the cwd.
    let options = spec::LoadOptions {
        allow_paths: vec![spec_dir],
    };
    let loaded = match spec::load_with(&experiment, &options) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            servers.stop().await;
            return Err(InvalidInput::Specs(vec![diagnostics]).into());
        }
    };
    let options = SessionOptions {
        kubeconfig: Some(kubeconfig.clone()),
        context: None,
        namespace: None,
        // The demo's own Prometheus needs no credentials: never send it the user's.
        prometheus_url: Some(servers.prometheus.url.clone()),
        prometheus_token: None,
        prometheus_token_file: None,
        output_dir: out.clone(),
        seed: global.seed,
        // `--dry-run` means the same here as for `run`, even on the demo's own sandbox.
        dry_run: super::run::dry_run(global.dry_run),
        yes: true,
        quiet: global.quiet,
        verbose: global.verbose > 0,
        color: super::color_flag(global.color),
        revert_timeout: Duration::from_secs(30),
        junit: None,
        lock: crate::cluster::lease::LockSettings::default(),
        output: None,
        connect_timeout: global.connect_timeout,
        halt_namespace: super::halt::namespace(global.halt_namespace.as_deref()),
        baselines: Default::default(),
        trend_runs: super::run::DEFAULT_TREND_RUNS,
        upload: None,
        notify: Vec::new(),
        pushgateway: None,
    };
    let mut outcome = session::run_files(std::slice::from_ref(&loaded), &options).await;
    // `--history`: a second run, so `history` and `compare` have two runs to show. Only
    // after a first run that ended as the demo means to (a deviation is by design).
    let again = history
        && options.dry_run == crate::plan::DryRun::None
        && matches!(outcome, Ok(Outcome::Passed | Outcome::Deviated));
    if again {
        crate::say!("shakedown: --history: running the demo experiment a second time");
        outcome = session::run_files(std::slice::from_ref(&loaded), &options).await;
        if matches!(outcome, Ok(Outcome::Passed | Outcome::Deviated)) {
            show_history(&out);
        }
    }
    // A client dry run only planned: there is no journal or report to point at. The
    // run's reports are in its own folder under `out`, which `latest` points at.
    if options.dry_run != crate::plan::DryRun::Client {
        crate::demo::print_summary(&session::latest_run_dir(&out).unwrap_or(out));
    }
    crate::demo::report_leftovers(&servers.sandbox);
    let interrupted = matches!(
        outcome,
        Ok(Outcome::Interrupted(_)) | Err(Failure::Interrupted(_))
    );
    if keep_running && !interrupted {
        crate::out!("\nStill running (Ctrl-C to stop):");
        crate::out!(
            "  kubectl --kubeconfig {} get pods -A",
            kubeconfig.display()
        );
        crate::out!("  Prometheus: {}", servers.prometheus.url);
        if let Some(am) = &servers.alertmanager {
            crate::out!("  Alertmanager: {}", am.url);
        }
        let _ = tokio::signal::ctrl_c().await;
    }
    servers.stop().await;
    outcome
}
