//! `shakedown sandbox`: a simulated Kubernetes cluster that speaks the real REST API on
//! 127.0.0.1, for tests, demos and game-day rehearsals (DESIGN.md, "The sandbox").
//!
//! It must behave like a real API server: anything that works here but would fail on
//! a real cluster is a bug. It never binds anything but the loopback interface.

mod api;
pub mod audit;
mod batch;
pub mod config;
mod controllers;
mod events;
mod exec;
mod lease;
mod objects;
mod openapi;
mod ops;
mod patch;
mod pod_security;
mod protobuf;
pub mod rbac;
mod resources;
mod schema;
mod seed;
mod server;
mod status;
mod store;
mod table;
mod tls;
mod validation;
mod watch;
mod workload;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{ApiFaults, SandboxConfig};
pub use controllers::STARTUP_DELAY_ANNOTATION;
pub use exec::ExecRecord;
/// Re-exported so the sandbox's callers print its errors in the one shared format.
pub use shakedown_vocab::error_chain;
pub use workload::FAULT_ANNOTATION;

/// One API request as the sandbox answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw (still percent-encoded) query string.
    pub query: String,
    pub status: u16,
    /// When the request arrived (an audit event's `requestReceivedTimestamp`).
    pub received: SystemTime,
    /// When it was answered (for a watch: when its stream started).
    pub time: SystemTime,
    /// The request asked for a dry run: `dryRun=All` in its query, or `"dryRun": ["All"]`
    /// in its DeleteOptions body (where clients put a delete's).
    pub dry_run: bool,
    /// The `User-Agent` header, empty when none was sent.
    pub user_agent: String,
    /// The request object of a write (POST, PUT, PATCH, DELETE) when its body is JSON,
    /// as an audit log's `requestObject`.
    pub body: Option<Value>,
    /// Who sent it: the admin, or the ServiceAccount whose token it carried.
    pub user: rbac::UserInfo,
}

impl RequestRecord {
    /// Anything but GET/HEAD/OPTIONS, so tests can assert "nothing was changed".
    pub fn is_mutating(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

const REQUEST_LOG_LIMIT: usize = 100_000;

/// Everything the server and the controllers share.
pub struct State {
    store: parking_lot::Mutex<store::Store>,
    config: SandboxConfig,
    faults: Mutex<ApiFaults>,
    /// Deterministic fault spreading: an error whenever this accumulates past 1.
    fault_budget: Mutex<f64>,
    log: Mutex<Vec<RequestRecord>>,
    exec_log: Mutex<Vec<ExecRecord>>,
    workload: Mutex<workload::Workload>,
    /// `--audit-log`: one audit event line per request, when asked for.
    audit: Option<audit::AuditLog>,
    /// How many `ControllersHeld` guards are alive: while any is, the control plane
    /// skips its passes (see `SandboxHandle::hold_controllers`).
    controllers_held: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data as consistent as any single
    // write left it; keep serving rather than poisoning every later request.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    fn store(&self) -> controllers::StoreGuard<'_> {
        self.store.lock()
    }

    fn faults(&self) -> ApiFaults {
        lock(&self.faults).clone()
    }

    fn metrics_text(&self) -> String {
        let mut out = String::new();
        lock(&self.workload).render(&mut out);
        workload::render_kube_state(&self.store(), &mut out);
        out
    }
}

/// A running sandbox. Dropping it stops the server and the controllers.
pub struct SandboxHandle {
    pub addr: SocketAddr,
    pub url: String,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the kubeconfig to {path}")]
    Kubeconfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The audit log file cannot be opened for writing: a startup error, not a
    /// request-time one.
    #[error(transparent)]
    AuditLog(#[from] audit::AuditLogError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Starts a sandbox on 127.0.0.1:`port` (0 picks a free port). Must be called inside
/// a tokio runtime.
pub async fn start(config: SandboxConfig, port: u16) -> Result<SandboxHandle, SandboxError> {
    let audit = config
        .audit_log
        .as_deref()
        .map(audit::AuditLog::open)
        .transpose()?;
    let tls = config.tls.then(tls::acceptor).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| SandboxError::Bind { port, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SandboxError::Bind { port, source })?;
    let mut store = store::Store::new(config.timings.watch_history);
    seed::seed(&mut store, &config);
    store.forget_history_before_now();
    let faults = config.api_faults.clone();
    let state = Arc::new(State {
        store: parking_lot::Mutex::new(store),
        workload: Mutex::new(workload::Workload::new(&config)),
        config,
        faults: Mutex::new(faults),
        fault_budget: Mutex::new(0.0),
        log: Mutex::new(Vec::new()),
        exec_log: Mutex::new(Vec::new()),
        audit,
        controllers_held: AtomicUsize::new(0),
    });
    // The seeded cluster is in its steady state before the first request is answered
    // (a pass lets requests in between its controllers).
    let mut plane = controllers::ControlPlane::new(state.config.timings.clone());
    plane.tick(&mut state.store(), &state.controllers_held);
    let (tx, rx) = oneshot::channel();
    let tasks = vec![
        tokio::spawn(server::serve(listener, state.clone(), tls, rx)),
        tokio::spawn(run_control_plane(state.clone(), plane)),
    ];
    Ok(SandboxHandle {
        addr,
        url: format!("{scheme}://{addr}"),
        state,
        shutdown: Some(tx),
        tasks,
    })
}

async fn run_control_plane(state: Arc<State>, mut plane: controllers::ControlPlane) {
    let mut ticker = tokio::time::interval(state.config.timings.controller_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        let now = tokio::time::Instant::now();
        let mut store = state.store();
        // Read under the store lock (and again each time a pass takes the store back
        // from a request): `hold_controllers` relies on it.
        if state.controllers_held.load(Ordering::Acquire) > 0 {
            continue;
        }
        plane.tick(&mut store, &state.controllers_held);
        lock(&state.workload).advance(plane.pods(&store), now - last);
        drop(store);
        last = now;
    }
}

/// While alive, the sandbox's control plane makes no pass (`hold_controllers`).
#[must_use = "the controllers run again as soon as this is dropped"]
pub struct ControllersHeld(Arc<State>);

impl Drop for ControllersHeld {
    fn drop(&mut self) {
        self.0.controllers_held.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SandboxHandle {
    /// A kubeconfig for this sandbox as its admin (`system:masters`): plain HTTP with no
    /// credentials, or, when it serves TLS, HTTPS trusting the sandbox's built-in CA with
    /// the admin's token (kubectl prompts for a password over TLS without one).
    pub fn kubeconfig_yaml(&self) -> String {
        let user = if self.state.config.tls {
            format!("\n    token: {}", rbac::ADMIN_TOKEN)
        } else {
            " {}".to_owned()
        };
        self.kubeconfig_for(&user)
    }

    /// The kubeconfig with `user` (YAML after `user:`).
    fn kubeconfig_for(&self, user: &str) -> String {
        use base64::Engine;
        let ca = if self.state.config.tls {
            format!(
                "\n    certificate-authority-data: {}",
                base64::engine::general_purpose::STANDARD.encode(tls::CA_PEM)
            )
        } else {
            String::new()
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: shakedown-sandbox\n  cluster:\n    server: {url}{ca}\ncontexts:\n- name: shakedown-sandbox\n  context:\n    cluster: shakedown-sandbox\n    user: shakedown-sandbox\n    namespace: default\ncurrent-context: shakedown-sandbox\nusers:\n- name: shakedown-sandbox\n  user:{user}\n",
            url = self.url,
        )
    }

    /// A kubeconfig that authenticates as ServiceAccount `namespace/name` with a bearer
    /// token the sandbox issued (what `kubectl create token` returns), or `None` when
    /// there is no such account. Only an RBAC-enabled sandbox restricts what it may do.
    pub fn service_account_kubeconfig_yaml(&self, namespace: &str, name: &str) -> Option<String> {
        let token = self.service_account_token(namespace, name)?;
        Some(self.kubeconfig_for(&format!("\n    token: {token}")))
    }

    /// A bearer token for ServiceAccount `namespace/name`, `None` when it does not exist.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> Option<String> {
        rbac::issue_token(&self.state.store(), namespace, name).ok()
    }

    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SandboxError> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| SandboxError::Kubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// Every request answered so far, oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        lock(&self.state.log).clone()
    }

    /// Every command run through `pods/exec`, oldest first.
    pub fn exec_log(&self) -> Vec<ExecRecord> {
        lock(&self.state.exec_log).clone()
    }

    /// How many requests with `method` (`DELETE`, …) the request log holds (every one
    /// answered, up to its newest 100,000): a cheap look for a caller that polls, as
    /// the log itself is not copied.
    pub fn requests_answered(&self, method: &str) -> usize {
        lock(&self.state.log)
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    pub fn clear_request_log(&self) {
        lock(&self.state.log).clear();
    }

    pub fn set_api_faults(&self, faults: ApiFaults) {
        *lock(&self.state.faults) = faults;
    }

    /// Forgets the watch history and hangs up every watch: clients resuming from an
    /// older resourceVersion get 410 Gone and must re-list.
    pub fn compact(&self) {
        self.state.store().compact();
    }

    /// Hangs up every watch; clients resume from where they were.
    pub fn close_watches(&self) {
        self.state.store().close_watches();
    }

    /// The store's current resourceVersion (what a list made now would report).
    pub fn resource_version(&self) -> u64 {
        self.state.store().resource_version()
    }

    /// A stored object (`store` is the plural, e.g. `pods`), for test assertions.
    pub fn object(&self, store: &str, namespace: &str, name: &str) -> Option<Value> {
        self.state.store().get(store, namespace, name).cloned()
    }

    /// All stored objects of one plural, optionally in one namespace.
    pub fn objects(&self, store: &str, namespace: Option<&str>) -> Vec<Value> {
        self.state
            .store()
            .iter(store, namespace, None)
            .cloned()
            .collect()
    }

    /// Whether every Deployment has all its replicas available, every StatefulSet all
    /// its replicas ready and every DaemonSet all its pods ready: the steady state an experiment's baseline expects.
    pub fn is_settled(&self) -> bool {
        let store = self.state.store();
        let deployments_ready = store.iter("deployments", None, None).all(|d| {
            let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
            d["status"]["availableReplicas"].as_i64().unwrap_or(0) == want
                && d["status"]["replicas"].as_i64().unwrap_or(0) == want
        });
        let daemons_ready = store.iter("daemonsets", None, None).all(|ds| {
            let want = ds["status"]["desiredNumberScheduled"]
                .as_i64()
                .unwrap_or(-1);
            ds["status"]["numberReady"].as_i64() == Some(want)
        });
        let stateful_ready = store.iter("statefulsets", None, None).all(|s| {
            let want = s["spec"]["replicas"].as_i64().unwrap_or(1);
            s["status"]["readyReplicas"].as_i64().unwrap_or(0) == want
                && s["status"]["replicas"].as_i64().unwrap_or(0) == want
        });
        deployments_ready && daemons_ready && stateful_ready
    }

    /// Waits until `is_settled`, polling; false if `timeout` passes first.
    pub async fn wait_settled(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_settled() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until nothing has been written for `quiet` (the resourceVersion stood still
    /// over it): the controllers have answered every change so far. It polls. The node
    /// agents' Lease renewals are writes too, so `quiet` must be shorter than their
    /// interval (10 s by default).
    pub async fn wait_quiet(&self, quiet: Duration) {
        let mut seen = self.resource_version();
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.resource_version();
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// The `/metrics` text, as Prometheus would scrape it.
    pub fn metrics(&self) -> String {
        self.state.metrics_text()
    }

    /// Holds the control plane (every controller, the kubelet and the node agents'
    /// Lease renewals) until the guard is dropped; the API keeps answering. A pass
    /// under way stops at its next hand-over of the store: once this returns, no
    /// controller writes. Benchmarks use it to measure what requests cost the API
    /// server alone, apart from the controller passes that happen to fall inside a
    /// short window; tests, to look at the store between a request and the
    /// controllers' answer to it. Nodes whose Leases lapse while held are renewed on
    /// the first pass after.
    pub fn hold_controllers(&self) -> ControllersHeld {
        self.state.controllers_held.fetch_add(1, Ordering::AcqRel);
        // A pass checks the hold each time it takes the store lock, before it writes,
        // so once the lock is ours no controller writes until the guard is dropped.
        drop(self.state.store());
        ControllersHeld(self.state.clone())
    }

    /// Stops serving and stops the controllers.
    pub async fn shutdown(mut self) {
        self.stop();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.state.store().close_watches();
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
