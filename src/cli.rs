//! Command-line surface (clap derive). Parsing only: no command logic lives here.
//!
//! Global flags follow kubectl's names and behaviour so muscle memory carries over.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Chaos-engineering and resilience test runner for Kubernetes.
///
/// Injects faults (pod deletion, network latency, node drain), checks steady-state
/// hypotheses against Prometheus SLOs, and writes JUnit, Markdown and JSON reports.
#[derive(Debug, Parser)]
#[command(name = "shakedown", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG as a merged list, then
    /// ~/.kube/config, then the in-cluster service account).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace for targets that do not name one.
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Prometheus base URL, including any path prefix (e.g. https://mimir/prometheus).
    #[arg(
        long,
        global = true,
        env = "SHAKEDOWN_PROMETHEUS_URL",
        value_name = "URL"
    )]
    pub prometheus_url: Option<String>,
    /// Bearer token for Prometheus. Prefer the environment variable or
    /// --prometheus-token-file: a flag is visible in the process list.
    #[arg(
        long,
        global = true,
        env = "SHAKEDOWN_PROMETHEUS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = |s: &str| Ok::<_, std::convert::Infallible>(crate::probes::prometheus::Secret::new(s))
    )]
    pub prometheus_token: Option<crate::probes::prometheus::Secret>,
    /// File holding the bearer token for Prometheus, re-read on every query (rotated
    /// tokens are picked up mid-run). Wins over --prometheus-token.
    #[arg(long, global = true, value_name = "PATH")]
    pub prometheus_token_file: Option<PathBuf>,
    /// Where reports are written: each run into its own DIR/<run-id>/, with DIR/latest
    /// pointing at the newest (`shakedown report` writes into DIR itself).
    #[arg(long, global = true, default_value = "reports", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Also let `scenario:`/`experiment:` references resolve under DIR (repeatable).
    /// By default they must stay inside the top-level file's folder or the working
    /// directory, so a spec cannot make shakedown read (and echo) files elsewhere.
    #[arg(long = "allow-path", global = true, value_name = "DIR")]
    pub allow_paths: Vec<PathBuf>,
    /// How long the API server may take to answer at all before it is called
    /// unreachable (a refused or unroutable address fails this fast).
    #[arg(long, global = true, default_value = "2s", value_parser = parse_duration_flag, value_name = "DURATION")]
    pub connect_timeout: std::time::Duration,
    /// Seed for every random choice (target picks); printed on every run so it can be replayed.
    #[arg(long, global = true, value_name = "N")]
    pub seed: Option<u64>,
    /// `client`: plan and print, mutate nothing. `server`: send mutations with dryRun=All.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = DryRun::None,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "client"
    )]
    pub dry_run: DryRun,
    /// Namespace of the kill switch's marker, the ConfigMap `shakedown-halt` that runs
    /// watch and `shakedown halt` writes (default: `default`). Runners and whoever
    /// halts must agree on it.
    #[arg(
        long,
        global = true,
        env = "SHAKEDOWN_HALT_NAMESPACE",
        value_name = "NAME"
    )]
    pub halt_namespace: Option<String>,
    /// Confirm the current kube context. Needed for a context not in the experiment's
    /// safety.allowedContexts, and outside CI (no CI, JENKINS_URL, GITLAB_CI,
    /// GITHUB_ACTIONS, BUILDKITE or TF_BUILD set) even for a listed one.
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// More output (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors and the final verdict.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Namespace of the run locks (coordination.k8s.io Leases). Every run that must see
    /// the others' locks has to use the same one.
    #[arg(
        long,
        global = true,
        env = "SHAKEDOWN_LOCK_NAMESPACE",
        default_value = crate::cluster::lease::DEFAULT_LOCK_NAMESPACE,
        value_name = "NAME"
    )]
    pub lock_namespace: String,
    /// When to use colour on stderr.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Really run.
    None,
    /// Validate and plan locally; make no mutating call.
    Client,
    /// Send every mutating call with dryRun=All (exercises RBAC and admission).
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// A versioned document (`apiVersion: shakedown.dev/v1`, `kind`) for scripts.
    Json,
    /// The same document as YAML, as kubectl users expect.
    Yaml,
}

impl OutputFormat {
    /// The machine format asked for, if any.
    pub fn machine(self) -> Option<crate::output::Format> {
        match self {
            OutputFormat::Text => None,
            OutputFormat::Json => Some(crate::output::Format::Json),
            OutputFormat::Yaml => Some(crate::output::Format::Yaml),
        }
    }
}

/// A report `shakedown report --format` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// junit.xml, for CI test reporters.
    Junit,
    /// report.md and its SVG charts, for people.
    Markdown,
    /// summary.json, for machines.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario and experiment files; report every problem with file:line:col.
    Validate {
        /// Scenario or experiment files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Output format (`json` and `yaml` print a `ValidationResult` on stdout).
        #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Print the timeline an experiment or scenario would follow. Changes nothing.
    Plan {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Output format (`json` and `yaml` print a `Plan` document).
        #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Run experiments or scenarios against the cluster.
    #[command(after_long_help = crate::exit::exit_codes_help())]
    Run {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// How long the reverts (run concurrently) may keep retrying an unreachable or
        /// failing API, all together, before the run gives up with exit 4 and names what
        /// is left faulted.
        #[arg(long, default_value = "30s", value_parser = parse_duration_flag, value_name = "DURATION")]
        revert_timeout: std::time::Duration,
        /// Also write the (combined) JUnit report here, for CI systems that look in one place.
        /// It is tried before anything is touched; a report that cannot be written (here or
        /// in --output-dir) makes the run exit 3, whatever its verdict.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// When another run holds a lock on these targets, wait for it (up to DURATION,
        /// 30m without one) instead of refusing with exit 3. Signals still stop the wait.
        #[arg(
            long,
            value_parser = parse_duration_flag,
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "30m",
            value_name = "DURATION"
        )]
        wait_for_lock: Option<std::time::Duration>,
        /// Output format (`json` and `yaml` print a `RunResult` on stdout when the runs
        /// end: every run's summary.json, in order).
        #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Judge the run against an earlier one: `latest` (the newest run of the same
        /// experiment in --output-dir), `previous` (the one before it), a run folder or a
        /// run id. A regression beyond --max-regression fails the run (exit 1). When
        /// `latest`/`previous` finds no earlier run (a gate's first run), the run is not
        /// judged and says so; a folder or run id that does not exist is exit 2.
        #[arg(long, value_name = "RUN")]
        baseline: Option<String>,
        /// How much worse than the baseline a run may be: `recovery=20%` (a recovery time
        /// may grow by this share), `score=5` (the score may drop by 5 points),
        /// `recoveryFloor=2s` (growth under this never fails; default 2s). Overrides the
        /// experiment's `regression:` block; without either, `recovery=20%,score=5`.
        #[arg(long, value_name = "LIMITS")]
        max_regression: Option<String>,
        /// How many earlier runs of the same experiment (in --output-dir) report.md's
        /// recovery trend shows, per owner with its objective; drawn from two earlier
        /// runs on. 0 draws none.
        #[arg(long, default_value_t = 12, value_name = "N")]
        trend_runs: usize,
        /// After the reports are written (so after every revert), PUT every file of each
        /// run's folder to URL/<run-id>/<file>, with the connection options of the
        /// experiment's `upload:` block (token, basic auth, caFile, headers, timeout).
        /// A failed upload is a warning: the exit code stays the run's.
        #[arg(long, value_name = "URL")]
        upload: Option<String>,
        /// Send the run's events (started, fault injected, hypothesis deviated, aborted,
        /// fault reverted, revert failed, finished) to URL as CloudEvents 1.0 JSON, besides
        /// the experiment's `notify:` receivers. Repeatable. Delivery never delays a revert,
        /// and the exit by at most 2s; a failure is noted in the journal.
        #[arg(long, value_name = "URL")]
        notify: Vec<String>,
        /// Push fault windows (`shakedown_fault_active`) and the run's results to this
        /// Prometheus Pushgateway, grouped by experiment; overrides the URL of the
        /// experiment's `pushgateway:` block (whose connection options still apply).
        #[arg(long, value_name = "URL")]
        pushgateway: Option<String>,
    },
    /// List the runs kept in --output-dir, newest first: date, experiment, verdict, score,
    /// duration and recovery times (per owner, then per hypothesis), from each run's
    /// summary.json. A summary that cannot be read (another version, damaged, too large)
    /// is named as unreadable and skipped. Works on a folder copied from CI artifacts.
    History {
        /// Only runs of this experiment (its metadata.name).
        #[arg(long, value_name = "NAME")]
        experiment: Option<String>,
        /// Only runs started within this long (e.g. `90d`).
        #[arg(long, value_parser = parse_duration_flag, value_name = "DURATION")]
        since: Option<std::time::Duration>,
        /// Output format (`json` and `yaml` print a `History` document).
        #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Print a Markdown diff of two runs for a post-mortem: verdict changes per check,
    /// recovery times side by side with the change, new or vanished hypotheses, score.
    ///
    /// A run is `latest`, `previous`, a run folder or a run id in --output-dir.
    Compare {
        /// The earlier run.
        #[arg(value_name = "BEFORE")]
        before: String,
        /// The later run.
        #[arg(value_name = "AFTER")]
        after: String,
    },
    /// Revert every fault shakedown left in the cluster (from annotations and/or a journal).
    ///
    /// With --dry-run=client it only lists what it would revert; with --dry-run=server it
    /// sends every revert with dryRun=All (an exec, which cannot be dry-run, is skipped).
    /// Nothing changes either way: exit 0, or 3 when the API server refused a call.
    Recover {
        /// A run journal to recover from, in addition to in-cluster annotations. Every
        /// readable record is used; damaged lines are skipped with a warning.
        #[arg(long, value_name = "PATH")]
        journal: Option<PathBuf>,
        /// Also revert the faults of runs whose lock is still live (renewed): by default
        /// they are left to the run that holds them.
        #[arg(long)]
        force: bool,
        /// Output format (`json` and `yaml` print a `RecoverResult` on stdout).
        #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Also expire every active Alertmanager silence shakedown created there
        /// (`createdBy: shakedown`), whether or not a journal names it. A journal's
        /// silences are expired in the Alertmanager it names without this flag.
        #[arg(long, value_name = "URL")]
        alertmanager_url: Option<String>,
        /// Reach Alertmanager as this experiment's (or scenario's) run did: with its
        /// `alertmanager:` block's connection options (bearer token, basic auth, caFile,
        /// headers), read from the same environment variables and files. They are used
        /// for that block's URL only: for silences the journal names there, and to expire
        /// every active silence shakedown created there, as --alertmanager-url does.
        /// An invalid file, or one without an `alertmanager:` block, is exit 2.
        #[arg(long, value_name = "FILE")]
        alertmanager_from: Option<PathBuf>,
    },
    /// Pull the kill switch: every running shakedown watching this cluster reverts within
    /// 2 s and exits 5 (HALTED); new runs refuse to start (exit 3) until `halt --clear`.
    ///
    /// The switch is the ConfigMap `shakedown-halt` in --halt-namespace (default
    /// `default`; for this command -n/--namespace sets it too), with data `who`
    /// (user@host), `when` (RFC 3339, UTC) and `reason`. Read it with `kubectl get
    /// configmap shakedown-halt -o yaml`. It is a cluster object, so it works from any
    /// machine that reaches the API server. An existing halt is left as it is.
    ///
    /// Exit code: 0 when the cluster is halted (or cleared) as asked, also when it
    /// already was; 3 when the marker cannot be written (RBAC, unreachable API server).
    Halt {
        /// Why: every halted run and every refused run shows it.
        #[arg(long, value_name = "TEXT", conflicts_with = "clear")]
        reason: Option<String>,
        /// Remove the marker, so runs may start again.
        #[arg(long)]
        clear: bool,
    },
    /// Re-render reports offline from a run journal.
    ///
    /// Writes junit.xml, report.md (with its charts in charts/) and summary.json into
    /// --output-dir. Any journal renders, including one cut short by a crash or with
    /// damaged lines (skipped, with a warning naming them and the missing records): those
    /// reports are marked partial.
    ///
    /// Exit code: 0 when the reports were written, whatever the run's verdict (the run's
    /// own exit code is `exitCode` in summary.json). With --mirror-exit-code, the run's
    /// exit code instead (for a journal cut short: 4 when a fault may still be active, 1
    /// when a check deviated, else 3). 2 when the journal cannot be read or has not one
    /// readable record; 3 when a report cannot be written.
    Report {
        #[arg(value_name = "JOURNAL")]
        journal: PathBuf,
        /// Reports to render (repeat, or separate with commas; default: all).
        #[arg(
            long = "format",
            value_enum,
            value_delimiter = ',',
            value_name = "FORMAT"
        )]
        formats: Vec<ReportFormat>,
        /// Exit with the run's exit code, so a CI gate can re-judge a run from its journal.
        #[arg(long)]
        mirror_exit_code: bool,
    },
    /// Serve a simulated Kubernetes cluster on 127.0.0.1 and write a kubeconfig.
    Sandbox {
        /// Topology file (default: the built-in shop topology).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Where to write the kubeconfig.
        #[arg(long, value_name = "PATH")]
        kubeconfig_out: Option<PathBuf>,
        /// Append one JSON line per API request to FILE, as Kubernetes audit events
        /// (`audit.k8s.io/v1` Event), flushed as each request completes.
        #[arg(long, value_name = "FILE")]
        audit_log: Option<PathBuf>,
        /// Authorize every request from the Roles, ClusterRoles and bindings stored in
        /// the sandbox, for callers with a ServiceAccount token (`kubectl create token`),
        /// and serve HTTPS (kubectl sends tokens only over TLS); the written kubeconfig
        /// stays the all-powerful admin (`system:masters`).
        #[arg(long)]
        rbac: bool,
    },
    /// Start a sandbox and Prometheus, run the demo experiment, and write its reports.
    ///
    /// Exits 0 when the demo ran (one hypothesis breaks on purpose), 3 when Prometheus
    /// is missing or a server cannot start, 130 on Ctrl-C (after reverting).
    Demo {
        /// Keep the sandbox and Prometheus running after the experiment.
        #[arg(long)]
        keep_running: bool,
        /// Run the experiment twice, then show `history` of the two runs and how to
        /// `compare` them.
        #[arg(long)]
        history: bool,
    },
    /// Print the JSON Schema of Scenario and Experiment files.
    Schema {
        /// Print the JSON Schema of summary.json instead.
        #[arg(long)]
        summary: bool,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A duration flag that does not parse. clap prints only its `Display`, so that says it all.
#[derive(Debug, thiserror::Error)]
#[error("{reason} (a duration such as `30s` or `2m`)")]
pub struct DurationFlagError {
    reason: String,
}

fn parse_duration_flag(text: &str) -> Result<std::time::Duration, DurationFlagError> {
    crate::spec::duration::parse_duration(text).map_err(|reason| DurationFlagError { reason })
}
