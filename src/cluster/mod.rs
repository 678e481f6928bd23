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
}

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

/// Resolves config like kubectl and builds a client. Makes no request.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
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
        None => Kubeconfig::read().ok(),
    };
    let (config, context_name) = match file {
        Some(file) => {
            let name = context
                .map(str::to_owned)
                .or_else(|| file.current_context.clone())
                .unwrap_or_default();
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
    let mut config = with_user_agent(config, &user_agent(None));
    config.default_retry = false;
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
