//! Connecting to a cluster and reading what target selection needs.
//!
//! Config resolution follows kubectl: `--kubeconfig` (a file), else `$KUBECONFIG` (a
//! merged list) or `~/.kube/config`, else in-cluster service-account config. The
//! resolved context and API server are reported before anything else happens.

pub mod lease;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::plan::{Inventory, NodeInfo, PodInfo};
use crate::run::retry::{Backoff, retry};

pub mod halt;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot load kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },
    #[error("failed to infer config: kubeconfig: ({kubeconfig}), in-cluster: ({in_cluster})")]
    Infer {
        kubeconfig: String,
        in_cluster: String,
    },
    #[error("cannot build a client for {server}: {source}")]
    Client {
        server: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("listing {what} failed: {source}")]
    List {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("the API server did not answer within {0:?}")]
    Timeout(Duration),
    /// kubectl's kind of hint: the address it tried, and the two usual causes.
    #[error(
        "cannot reach the API server at {server} (context `{context}`) within {}: is the cluster running? did you choose the right context?",
        crate::spec::duration::format_duration(*timeout)
    )]
    Unreachable {
        server: String,
        context: String,
        timeout: Duration,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("kubeconfig file {path} (listed in $KUBECONFIG) does not exist")]
    MissingKubeconfig { path: String },
    #[error(
        "context `{context}` ({from}) is not in the kubeconfig; available contexts: {}",
        list_or_none(available)
    )]
    UnknownContext {
        context: String,
        /// `--context`, or the kubeconfig's `current-context`.
        from: &'static str,
        available: Vec<String>,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// How long the API server may take to answer at all before it is called unreachable
/// (`--connect-timeout`): a refused or unroutable address fails in about this long.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connected client and how we got it, for the "about to touch" banner.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub context: String,
    pub server: String,
    pub default_namespace: String,
    /// What the client was built from, so [`Connection::for_run`] can build one that
    /// names the run.
    config: Config,
}

impl Connection {
    /// kubectl's rule for the namespace of targets that name none: `-n`, else the
    /// kubeconfig context's (or the service account's, in-cluster). The plan takes it
    /// from here, once.
    pub fn namespace_for(&self, flag: Option<&str>) -> String {
        flag.map_or_else(|| self.default_namespace.clone(), str::to_owned)
    }

    /// The same cluster, with every request saying which run makes it
    /// (`User-Agent: shakedown/<version> (run <run-id>)`), so an audit log tells one
    /// run's calls from another's and from everyone else's.
    pub fn for_run(&self, run_id: &str) -> Result<Connection, ClusterError> {
        let config = with_user_agent(self.config.clone(), &user_agent(Some(run_id)));
        let client = Client::try_from(config.clone()).map_err(|e| ClusterError::Client {
            server: self.server.clone(),
            source: Box::new(e),
        })?;
        Ok(Connection {
            client,
            config,
            ..self.clone()
        })
    }
}

/// `shakedown/<version>`, with `(run <run-id>)` when the requests belong to a run.
pub fn user_agent(run_id: Option<&str>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match run_id {
        Some(id) => format!("shakedown/{version} (run {id})"),
        None => format!("shakedown/{version}"),
    }
}

/// Sets the User-Agent kube sends with every request (exec upgrades included),
/// replacing any set before. A value that is not a valid header (it cannot be: the
/// version and run id are ASCII) leaves the config as it was.
fn with_user_agent(mut config: Config, agent: &str) -> Config {
    // The header types are inferred from `Config::headers` (http's), which spares
    // this crate a direct dependency on `http`.
    if let (Ok(name), Ok(value)) = ("user-agent".parse(), agent.parse()) {
        config.headers.retain(|(n, _)| n.as_str() != "user-agent");
        config.headers.push((name, value));
    }
    config
}

/// Resolves config like kubectl and builds a client. Makes no request: see
/// [`ensure_reachable`].
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Connection, ClusterError> {
    connect_with(kubeconfig, context, DEFAULT_CONNECT_TIMEOUT).await
}

/// [`connect`], with the TCP connect timeout of every request the client makes.
pub async fn connect_with(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    connect_timeout: Duration,
) -> Result<Connection, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let file = match kubeconfig {
        Some(path) => Some(
            Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
                path: path.display().to_string(),
                source: Box::new(e),
            })?,
        ),
        None => env_kubeconfig()?,
    };
    let (config, context_name) = match file {
        Some(file) => {
            let name = context
                .map(str::to_owned)
                .or_else(|| file.current_context.clone())
                .unwrap_or_default();
            known_context(&file, &name, context.is_some())?;
            let config = Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: kubeconfig.map_or_else(
                        || "$KUBECONFIG or ~/.kube/config".into(),
                        |p| p.display().to_string(),
                    ),
                    source: Box::new(e),
                })?;
            (config, name)
        }
        None => {
            let config = Config::incluster().map_err(|e| ClusterError::Infer {
                kubeconfig: "no kubeconfig found ($KUBECONFIG, ~/.kube/config)".into(),
                in_cluster: e.to_string(),
            })?;
            (config, "in-cluster".to_owned())
        }
    };
    // shakedown retries on its own, with deadlines it chooses and events it can report
    // (a PodDisruptionBudget's 429 is news, not noise), so kube's silent retry is off.
    register_credentials(&config.auth_info);
    let mut config = with_user_agent(config, &user_agent(None));
    config.default_retry = false;
    config.connect_timeout = Some(connect_timeout);
    let server = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config.clone()).map_err(|e| ClusterError::Client {
        server: server.clone(),
        source: Box::new(e),
    })?;
    Ok(Connection {
        client,
        context: context_name,
        server,
        default_namespace,
        config,
    })
}

/// The kubeconfig's own credentials go to the redactor like every other secret: only
/// the API server should see them, but an API error that echoed one (a proxy, a
/// webhook) must not carry it into the journal, a report or the terminal.
fn register_credentials(auth: &kube::config::AuthInfo) {
    use secrecy::ExposeSecret as _;
    if let Some(token) = &auth.token {
        crate::run::redact::register("the kubeconfig's token", token.expose_secret());
    }
    if let Some(password) = &auth.password {
        let user = auth.username.as_deref().unwrap_or_default();
        let what = "the kubeconfig's password";
        crate::run::redact::register_basic(what, user, password.expose_secret());
    }
    if let Some(key) = &auth.client_key_data {
        crate::run::redact::register("the kubeconfig's client key", key.expose_secret());
    }
}

/// `$KUBECONFIG` (a merged list), else `~/.kube/config`; `None` when neither exists, so
/// in-cluster config is tried. A file `$KUBECONFIG` lists that does not exist is named,
/// rather than silently falling back.
fn env_kubeconfig() -> Result<Option<Kubeconfig>, ClusterError> {
    let listed: Vec<std::path::PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    let listed: Vec<_> = listed
        .into_iter()
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    if let Some(missing) = listed.iter().find(|p| !p.exists()) {
        return Err(ClusterError::MissingKubeconfig {
            path: missing.display().to_string(),
        });
    }
    match Kubeconfig::read() {
        Ok(file) => Ok(Some(file)),
        Err(e) if !listed.is_empty() => Err(ClusterError::Kubeconfig {
            path: "$KUBECONFIG".into(),
            source: Box::new(e),
        }),
        Err(_) => Ok(None),
    }
}

/// A context that is not in the kubeconfig is named with the ones that are, where kube
/// would only say it failed to load it.
fn known_context(file: &Kubeconfig, name: &str, flag: bool) -> Result<(), ClusterError> {
    if name.is_empty() || file.contexts.iter().any(|c| c.name == name) {
        return Ok(());
    }
    Err(ClusterError::UnknownContext {
        context: name.to_owned(),
        from: if flag { "--context" } else { "current-context" },
        available: file.contexts.iter().map(|c| c.name.clone()).collect(),
    })
}

/// Fails fast, with kubectl's kind of hint, when the API server does not answer within
/// `deadline` (`--connect-timeout`), instead of every later call retrying into its own
/// longer deadline.
pub async fn ensure_reachable(conn: &Connection, deadline: Duration) -> Result<(), ClusterError> {
    answers(&conn.client, deadline)
        .await
        .map_err(|source| ClusterError::Unreachable {
            server: conn.server.clone(),
            context: conn.context.clone(),
            timeout: deadline,
            source: Box::new(source),
        })
}

/// Whether the API server answers at all within `deadline`: any HTTP answer (even 401 or
/// 500) counts, since permissions are judged later, call by call. Transport errors are
/// retried until the deadline, so one dropped connection is not "unreachable".
async fn answers(client: &Client, deadline: Duration) -> Result<(), kube::Error> {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let error = match tokio::time::timeout(left, client.apiserver_version()).await {
            Ok(Ok(_)) | Ok(Err(kube::Error::Api(_))) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(kube::Error::Service(
                    format!("no answer within {deadline:?}").into(),
                ));
            }
        };
        if tokio::time::Instant::now() + Duration::from_millis(200) >= until {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lists pods in the given namespaces and, when asked, all nodes and every pod (what a
/// drain of them would evict), retrying transient API failures until `deadline` has
/// passed.
pub async fn inventory(
    connection: &Connection,
    namespaces: &[String],
    with_nodes: bool,
    deadline: Duration,
) -> Result<Inventory, ClusterError> {
    let until = tokio::time::Instant::now() + deadline;
    tokio::time::timeout(
        deadline,
        read_inventory(connection, namespaces, with_nodes, until),
    )
    .await
    .map_err(|_| ClusterError::Timeout(deadline))?
}

async fn read_inventory(
    connection: &Connection,
    namespaces: &[String],
    with_nodes: bool,
    until: tokio::time::Instant,
) -> Result<Inventory, ClusterError> {
    let mut inventory = Inventory::default();
    let all = ListParams::default();
    // A drain's blast radius is every pod on its nodes, whatever their namespace.
    let scopes: Vec<Option<&String>> = if with_nodes {
        vec![None]
    } else {
        namespaces.iter().map(Some).collect()
    };
    for scope in scopes {
        let pods: Api<Pod> = match scope {
            Some(namespace) => Api::namespaced(connection.client.clone(), namespace),
            None => Api::all(connection.client.clone()),
        };
        let what = scope.map_or_else(|| "pods".to_owned(), |ns| format!("pods in {ns}"));
        let list =
            with_retries(until, || pods.list(&all))
                .await
                .map_err(|e| ClusterError::List {
                    what,
                    source: Box::new(e),
                })?;
        inventory.pods.extend(list.items.iter().map(pod_info));
    }
    if with_nodes {
        let nodes: Api<Node> = Api::all(connection.client.clone());
        let list = with_retries(until, || nodes.list(&all))
            .await
            .map_err(|e| ClusterError::List {
                what: "nodes".into(),
                source: Box::new(e),
            })?;
        inventory.nodes = list.items.iter().map(node_info).collect();
    }
    Ok(inventory)
}

fn pod_info(pod: &Pod) -> PodInfo {
    let meta = &pod.metadata;
    PodInfo {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        phase: pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default(),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        controller_kind: meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.kind.clone()),
        mirror: meta
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror")),
        terminating: meta.deletion_timestamp.is_some(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller_name: meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.name.clone()),
    }
}

fn node_info(node: &Node) -> NodeInfo {
    NodeInfo {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        unschedulable: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        ready: node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
    }
}

/// Worth retrying: throttling, server errors, and connection trouble.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Waits between API retries: 200 ms doubling to 5 s (with jitter, see [`Backoff`]).
pub const API_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

/// Retries a call on transient failures ([`is_transient`]), with backoff, until `deadline`.
pub async fn with_retries<T, F, Fut>(
    deadline: tokio::time::Instant,
    call: F,
) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    retry(API_BACKOFF, deadline, is_transient, call).await
}
