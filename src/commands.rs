//! One function per subcommand. Each returns the `Outcome` that becomes the exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;

use crate::cli::{Cli, ColorChoice, Command, DryRun, GlobalArgs, OutputFormat, ReportFormat};
use crate::exit::Outcome;
use crate::journal::JournalWriter;
use crate::{cluster, executor, journal, plan as planner, report as reports, spec};

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
        Command::Validate { files } => validate(&files, &cli.global),
        Command::Plan { file, output } => plan(&file, output, &cli.global),
        Command::Schema => {
            let schema = spec::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            Outcome::Passed
        }
        Command::Run {
            files,
            revert_timeout,
            junit,
        } => run(&files, revert_timeout, junit.as_deref(), &cli.global),
        Command::Recover { journal } => recover(journal.as_deref(), &cli.global),
        Command::Report {
            journal,
            formats,
            mirror_exit_code,
        } => report(&journal, &formats, mirror_exit_code, &cli.global),
        Command::Sandbox {
            config,
            port,
            kubeconfig_out,
        } => sandbox(config.as_deref(), port, kubeconfig_out.as_deref()),
        Command::Demo { keep_running } => demo(keep_running, &cli.global),
    }
}

/// Validates every file (and what it references) and reports every problem found.
fn validate(files: &[PathBuf], global: &GlobalArgs) -> Outcome {
    let quiet = global.quiet;
    let mut failed = 0;
    for file in files {
        match spec::load(file) {
            Ok(loaded) => {
                if !quiet {
                    let kind = match loaded.document {
                        spec::Document::Scenario(_) => "Scenario",
                        spec::Document::Experiment(_) => "Experiment",
                    };
                    println!("ok: {} ({kind} {})", file.display(), loaded.name());
                }
            }
            Err(diagnostics) => {
                failed += 1;
                report_diagnostics(&diagnostics, global.color);
            }
        }
    }
    if failed > 0 {
        crate::say!(
            "shakedown: {failed} of {} file(s) invalid; nothing was run",
            files.len()
        );
        Outcome::InvalidInput
    } else {
        Outcome::Passed
    }
}

/// Prints the timeline and, when the cluster answers, the targets that would be hit.
/// Nothing is mutated. Exit 3 when the cluster answers but a fault has no targets.
fn plan(file: &Path, output: OutputFormat, global: &GlobalArgs) -> Outcome {
    let loaded = match spec::load(file) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            report_diagnostics(&diagnostics, global.color);
            return Outcome::InvalidInput;
        }
    };
    let seed = global.seed.unwrap_or_else(planner::fresh_seed);
    let inventory = read_inventory(&loaded, global);
    let plan = planner::plan(&loaded, seed, inventory.as_ref());
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        ),
        OutputFormat::Text => print!("{plan}"),
    }
    let unresolved = plan
        .entries
        .iter()
        .any(|e| matches!(e.targets, Some(Err(_))));
    if unresolved {
        Outcome::CouldNotRun
    } else {
        Outcome::Passed
    }
}

/// Best effort: `plan` is useful offline, so an unreachable cluster is a note, not an error.
fn read_inventory(loaded: &spec::Loaded, global: &GlobalArgs) -> Option<planner::Inventory> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let (mut namespaces, with_nodes) = planner::inventory_needs(loaded);
    let result = runtime.block_on(async {
        let connection =
            cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await?;
        let default_namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| connection.default_namespace.clone());
        if !namespaces.contains(&default_namespace) {
            namespaces.push(default_namespace.clone());
        }
        if !global.quiet {
            crate::say!(
                "shakedown: context `{}`, API server {}",
                connection.context,
                connection.server
            );
        }
        let mut inventory = cluster::inventory(
            &connection,
            &namespaces,
            with_nodes,
            Duration::from_secs(10),
        )
        .await?;
        inventory.default_namespace = default_namespace;
        Ok::<_, cluster::ClusterError>(inventory)
    });
    match result {
        Ok(inventory) => Some(inventory),
        Err(e) => {
            if !global.quiet {
                crate::say!(
                    "shakedown: cluster not reachable ({e}); showing the timeline without targets"
                );
            }
            None
        }
    }
}

/// Validates, plans and preflights every file, then runs them one after another.
fn run(
    files: &[PathBuf],
    revert_timeout: Duration,
    junit: Option<&Path>,
    global: &GlobalArgs,
) -> Outcome {
    let mut loaded = Vec::new();
    let mut invalid = false;
    for file in files {
        match spec::load(file) {
            Ok(l) => loaded.push(l),
            Err(diagnostics) => {
                report_diagnostics(&diagnostics, global.color);
                invalid = true;
            }
        }
    }
    if invalid {
        crate::say!("shakedown: invalid input; nothing was touched");
        return Outcome::InvalidInput;
    }
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
    runtime.block_on(run_async(&loaded, revert_timeout, junit, global))
}

async fn run_async(
    loaded: &[spec::Loaded],
    revert_timeout: Duration,
    junit: Option<&Path>,
    global: &GlobalArgs,
) -> Outcome {
    let conn = match cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await
    {
        Ok(conn) => conn,
        Err(e) => {
            crate::say!("shakedown: could not connect to the cluster: {e}");
            return Outcome::CouldNotRun;
        }
    };
    crate::say!(
        "shakedown: context `{}`, API server {}",
        conn.context,
        conn.server
    );
    if global.dry_run != DryRun::Client
        && let Err(why) = context_allowed(loaded, &conn.context, global.yes)
    {
        crate::say!("shakedown: {why}");
        return Outcome::InvalidInput;
    }
    let seed = global.seed.unwrap_or_else(planner::fresh_seed);
    crate::say!("shakedown: seed {seed} (replay with --seed {seed})");
    let default_namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| conn.default_namespace.clone());
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for file in loaded {
        let (mut namespaces, with_nodes) = planner::inventory_needs(file);
        namespaces.push(default_namespace.clone());
        let inventory =
            match cluster::inventory(&conn, &namespaces, with_nodes, Duration::from_secs(30)).await
            {
                Ok(mut inventory) => {
                    inventory.default_namespace = default_namespace.clone();
                    inventory
                }
                Err(e) => {
                    crate::say!("shakedown: could not read the cluster: {e}");
                    return Outcome::CouldNotRun;
                }
            };
        let plan = planner::plan(file, seed, Some(&inventory));
        problems.extend(executor::preflight(&conn, file, &plan, &default_namespace).await);
        plans.push(plan);
    }
    if !problems.is_empty() {
        for p in &problems {
            crate::say!("shakedown: preflight: {p}");
        }
        crate::say!("shakedown: preflight failed; nothing was touched");
        return Outcome::CouldNotRun;
    }
    if global.dry_run == DryRun::Client {
        for plan in &plans {
            print!("{plan}");
        }
        crate::say!("shakedown: --dry-run=client: planned and checked; nothing was touched");
        return Outcome::Passed;
    }
    let mut overall = Outcome::Passed;
    let mut runs = Vec::new();
    for (file, plan) in loaded.iter().zip(&plans) {
        let dir = if loaded.len() == 1 {
            global.output_dir.clone()
        } else {
            global.output_dir.join(file.name())
        };
        let journal_path = dir.join("journal.jsonl");
        let _ = std::fs::remove_file(&journal_path);
        let journal = match JournalWriter::create(&journal_path) {
            Ok(j) => j,
            Err(e) => {
                crate::say!("shakedown: {e}");
                return Outcome::CouldNotRun;
            }
        };
        let bus = executor::bus::EventBus::new(
            Some(journal),
            executor::bus::Progress::for_terminal(global.quiet, global.verbose > 0),
            executor::bus::system_clock(),
        );
        let options = executor::RunOptions {
            run_id: new_run_id(),
            seed,
            server_dry_run: global.dry_run == DryRun::Server,
            default_namespace: Some(default_namespace.clone()),
            prometheus_url: global.prometheus_url.clone(),
            prometheus_token: global.prometheus_token.clone(),
            prometheus_token_file: global.prometheus_token_file.clone(),
            revert_timeout,
        };
        let outcome = executor::run(file, plan, conn.clone(), bus.clone(), options).await;
        let records = bus.records();
        write_reports(&dir, &records, global.quiet);
        runs.push(records);
        if global.quiet
            && let Some(message) =
                runs.last()
                    .into_iter()
                    .flatten()
                    .rev()
                    .find_map(|r: &crate::events::Record| match &r.event {
                        crate::events::RunEvent::RunFinished(f) => f.message.clone(),
                        _ => None,
                    })
        {
            // Even quiet runs say how they ended: exit 4 must name what is left faulted.
            crate::say!("shakedown: {message}");
        }
        if let Some(e) = bus.journal_error() {
            crate::say!("shakedown: warning: the journal could not be written completely: {e}");
        }
        crate::say!(
            "shakedown: `{}` finished with exit {} (journal {})",
            file.name(),
            outcome.code(),
            journal_path.display()
        );
        overall = worse(overall, outcome);
        if matches!(
            outcome,
            Outcome::Interrupted | Outcome::Terminated | Outcome::RevertFailed
        ) {
            break;
        }
    }
    let all: Vec<(&[crate::events::Record], bool)> =
        runs.iter().map(|r| (r.as_slice(), false)).collect();
    let combined = reports::junit::render_many(&all);
    if runs.len() > 1 {
        // One release gate, one JUnit file: every experiment's suites together.
        let file = reports::RenderedFile {
            path: reports::JUNIT_FILE.into(),
            contents: combined.clone(),
        };
        if let Err(e) = reports::write(&global.output_dir, &[file]) {
            crate::say!("shakedown: {e}");
        }
    }
    if let Some(path) = junit.filter(|_| !runs.is_empty())
        && let Err(e) = std::fs::write(path, &combined)
    {
        crate::say!("shakedown: cannot write {}: {e}", path.display());
    }
    overall
}

/// Renders every report format into `dir`. Runs on every exit path of a run, so a
/// partial run still leaves its evidence.
fn write_reports(dir: &Path, records: &[crate::events::Record], quiet: bool) {
    let files = reports::render(records, false, &reports::Format::ALL);
    match reports::write(dir, &files) {
        Ok(paths) if !quiet => {
            for path in paths
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e != "svg"))
            {
                crate::say!("shakedown: wrote {}", path.display());
            }
        }
        Ok(_) => {}
        Err(e) => crate::say!("shakedown: {e}"),
    }
}

/// Reverts every fault shakedown left in the cluster; exit 4 if something stays faulted.
fn recover(journal: Option<&Path>, global: &GlobalArgs) -> Outcome {
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
    runtime.block_on(async {
        let conn =
            match cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref()).await {
                Ok(conn) => conn,
                Err(e) => {
                    crate::say!("shakedown: could not connect to the cluster: {e}");
                    return Outcome::CouldNotRun;
                }
            };
        crate::say!(
            "shakedown: recovering in context `{}`, API server {}",
            conn.context,
            conn.server
        );
        let bus = executor::bus::EventBus::new(
            None,
            executor::bus::Progress::for_terminal(global.quiet, global.verbose > 0),
            executor::bus::system_clock(),
        );
        match executor::recover::recover(&conn, journal, global.dry_run == DryRun::Server, bus)
            .await
        {
            Ok(done) => {
                for line in &done.unmarked {
                    crate::say!("shakedown: NOT RECOVERED: {line}");
                }
                for line in &done.failed {
                    crate::say!("shakedown: NOT RECOVERED: {line}");
                }
                println!(
                    "recover: {} reverted, {} failed, {} needing a human",
                    done.reverted.len(),
                    done.failed.len(),
                    done.unmarked.len()
                );
                done.outcome()
            }
            Err(e) => {
                crate::say!("shakedown: {e}");
                Outcome::CouldNotRun
            }
        }
    })
}

/// The newcomer's first command: sandbox + Prometheus + the demo experiment + reports.
/// A deviation is the demo working as designed (one hypothesis breaks on purpose), so
/// it exits 0 then; infrastructure failures and interrupts keep their codes.
fn demo(keep_running: bool, global: &GlobalArgs) -> Outcome {
    let Some(prometheus) = crate::demo::find_prometheus() else {
        crate::say!("shakedown: {}", crate::demo::DemoError::PrometheusMissing);
        return Outcome::CouldNotRun;
    };
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
    match runtime.block_on(demo_async(&prometheus, keep_running, global)) {
        Ok(Outcome::Deviated) => Outcome::Passed,
        Ok(outcome) => outcome,
        Err(e) => {
            crate::say!("shakedown: {e}");
            Outcome::CouldNotRun
        }
    }
}

async fn demo_async(
    prometheus: &Path,
    keep_running: bool,
    global: &GlobalArgs,
) -> Result<Outcome, crate::demo::DemoError> {
    use crate::demo::{LocalPrometheus, start_sandbox, write_demo_specs};
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let out = global.output_dir.join(format!("demo-{stamp}"));
    let experiment = write_demo_specs(&out.join("spec"))?;
    let sandbox = start_sandbox().await?;
    let kubeconfig = out.join("kubeconfig");
    sandbox
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| crate::demo::DemoError::Sandbox(e.to_string()))?;
    crate::say!("shakedown: sandbox cluster at {}", sandbox.url);
    let mut prom = LocalPrometheus::start(
        prometheus,
        &out.join("prometheus"),
        &sandbox.addr.to_string(),
    )
    .await?;
    crate::say!(
        "shakedown: prometheus at {}, waiting for the first scrapes",
        prom.url
    );
    let warmed = tokio::select! {
        ready = prom.wait_for("kube_deployment_status_replicas_available", Duration::from_secs(60)) => Some(ready),
        _ = tokio::signal::ctrl_c() => None,
    };
    let Some(warmed) = warmed else {
        prom.stop().await;
        sandbox.shutdown().await;
        return Ok(Outcome::Interrupted);
    };
    if let Err(e) = warmed {
        prom.stop().await;
        sandbox.shutdown().await;
        return Err(e);
    }
    // Rates over [15s] windows need a few scrapes before the baseline means anything.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let loaded = match spec::load(&experiment) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            prom.stop().await;
            sandbox.shutdown().await;
            crate::say_raw!("{diagnostics}");
            return Ok(Outcome::InvalidInput);
        }
    };
    let mut demo_global = global.clone();
    demo_global.kubeconfig = Some(kubeconfig.clone());
    demo_global.context = None;
    demo_global.namespace = None;
    demo_global.yes = true;
    demo_global.dry_run = DryRun::None;
    demo_global.output_dir = out.clone();
    demo_global.prometheus_url = Some(prom.url.clone());
    // The demo's own Prometheus needs no credentials: never send it the user's.
    demo_global.prometheus_token = None;
    demo_global.prometheus_token_file = None;
    let outcome = run_async(
        std::slice::from_ref(&loaded),
        Duration::from_secs(30),
        None,
        &demo_global,
    )
    .await;
    print_demo_summary(&out);
    report_leftovers(&sandbox);
    if keep_running && !matches!(outcome, Outcome::Interrupted | Outcome::Terminated) {
        println!("\nStill running (Ctrl-C to stop):");
        println!(
            "  kubectl --kubeconfig {} get pods -A",
            kubeconfig.display()
        );
        println!("  Prometheus: {}", prom.url);
        let _ = tokio::signal::ctrl_c().await;
    }
    prom.stop().await;
    sandbox.shutdown().await;
    Ok(outcome)
}

/// Reads the sandbox itself: after every run, interrupted or not, nothing may be left
/// cordoned or marked as faulted.
fn report_leftovers(sandbox: &crate::sandbox::SandboxHandle) {
    let mut left = Vec::new();
    for node in sandbox.objects("nodes", None) {
        if node["spec"]["unschedulable"] == true
            || node["metadata"]["annotations"][crate::faults::CORDONED_BY].is_string()
        {
            left.push(format!(
                "node {} is cordoned",
                node["metadata"]["name"].as_str().unwrap_or("?")
            ));
        }
    }
    for pod in sandbox.objects("pods", None) {
        if pod["metadata"]["annotations"][crate::faults::FAULT_ANNOTATION].is_string() {
            left.push(format!(
                "pod {} still carries a fault",
                pod["metadata"]["name"].as_str().unwrap_or("?")
            ));
        }
    }
    if left.is_empty() {
        println!("\nsandbox: clean (no node cordoned, no fault left on any pod)");
    } else {
        println!("\nsandbox: LEFT FAULTED: {}", left.join("; "));
    }
}

/// The verdicts, then where the reports are.
fn print_demo_summary(out: &Path) {
    if let Ok(contents) = journal::read(&out.join("journal.jsonl")) {
        println!(
            "\n{:<10} {:<36} {:<7} observed",
            "verdict", "hypothesis", "phase"
        );
        for record in &contents.records {
            if let crate::events::RunEvent::HypothesisVerdict(v) = &record.event {
                let phase = format!("{:?}", v.phase).to_lowercase();
                let verdict = format!("{:?}", v.verdict).to_lowercase();
                println!(
                    "{verdict:<10} {:<36} {phase:<7} {}",
                    v.hypothesis, v.message
                );
            }
        }
    }
    println!("\nreports:");
    for file in [
        reports::MARKDOWN_FILE,
        reports::JUNIT_FILE,
        reports::JSON_FILE,
        "journal.jsonl",
    ] {
        println!("  {}", out.join(file).display());
    }
}

/// `--yes` is needed unless CI=true and the context is on every file's allow-list.
fn context_allowed(loaded: &[spec::Loaded], context: &str, yes: bool) -> Result<(), String> {
    if yes {
        return Ok(());
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let listed = loaded.iter().all(|l| {
        let safety = match &l.document {
            spec::Document::Experiment(e) => e.spec.safety.as_ref(),
            spec::Document::Scenario(s) => s.spec.safety.as_ref(),
        };
        safety.is_some_and(|s| s.allowed_contexts.iter().any(|c| c == context))
    });
    if in_ci && listed {
        Ok(())
    } else if listed {
        Err(format!(
            "about to inject faults into context `{context}`; pass --yes to confirm (or run with CI=true)"
        ))
    } else {
        Err(format!(
            "context `{context}` is not in safety.allowedContexts; pass --yes to act on it anyway"
        ))
    }
}

/// Orders outcomes by how much a pipeline must know about them.
fn worse(a: Outcome, b: Outcome) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Passed => 0,
        Outcome::Deviated => 1,
        Outcome::InvalidInput => 2,
        Outcome::CouldNotRun => 3,
        Outcome::Terminated | Outcome::Interrupted => 4,
        Outcome::RevertFailed => 5,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn new_run_id() -> String {
    let now = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    format!("{now}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Renders reports from a journal into the output directory. Exit 0 once written (or the
/// run's own code with `mirror_exit_code`); 2 for an unreadable, corrupt or empty journal;
/// 3 when a file cannot be written.
fn report(
    path: &Path,
    formats: &[ReportFormat],
    mirror_exit_code: bool,
    global: &GlobalArgs,
) -> Outcome {
    let contents = match journal::read(path) {
        Ok(contents) => contents,
        Err(e) => {
            crate::say!("shakedown: {e}");
            return Outcome::InvalidInput;
        }
    };
    if contents.records.is_empty() {
        crate::say!(
            "shakedown: {}: the journal has no complete record; nothing to report",
            path.display()
        );
        return Outcome::InvalidInput;
    }
    let formats: Vec<reports::Format> = formats
        .iter()
        .map(|f| match f {
            ReportFormat::Junit => reports::Format::Junit,
            ReportFormat::Markdown => reports::Format::Markdown,
            ReportFormat::Json => reports::Format::Json,
        })
        .collect();
    let files = reports::render(&contents.records, contents.truncated, &formats);
    if let Err(e) = reports::write(&global.output_dir, &files) {
        crate::say!("shakedown: {e}");
        return Outcome::CouldNotRun;
    }
    let view = reports::model::analyze(&contents.records, contents.truncated);
    if !global.quiet {
        for file in &files {
            println!("{}", global.output_dir.join(&file.path).display());
        }
        if view.partial {
            crate::say!(
                "shakedown: {}: the journal ends before the run finished; the reports are marked partial",
                path.display()
            );
        }
        crate::say!(
            "shakedown: run {}: {} (exit {})",
            reports::text::clean_line(view.run_id()),
            view.verdict_label(),
            view.exit_code()
        );
    }
    if mirror_exit_code {
        Outcome::from_code(view.exit_code()).unwrap_or(Outcome::CouldNotRun)
    } else {
        Outcome::Passed
    }
}

/// Prints diagnostics to stderr, with `error:` in red when colour is wanted.
fn report_diagnostics(diagnostics: &spec::Diagnostics, color: ColorChoice) {
    let text = diagnostics.to_string();
    let text = if use_color(color) {
        text.replace("error: ", "\x1b[1;31merror\x1b[0m: ")
    } else {
        text
    };
    crate::say_raw!("{text}");
}

/// `auto` means: stderr is a terminal, `NO_COLOR` is unset and `TERM` is not `dumb`.
fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
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
