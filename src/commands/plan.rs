//! `shakedown plan`: the timeline and, when the cluster answers, the picks. Read-only.

use std::path::Path;
use std::time::Duration;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::exit::{Failure, InvalidInput, Outcome};
use crate::plan::{Plan, PlanSettings};
use crate::{cluster, plan as planner, spec};

/// Prints the timeline and, when the cluster answers, the targets that would be hit.
/// Nothing is mutated. Exit 3 when the cluster answers but a fault has no targets: the
/// printed plan says which and why, so that verdict needs no message of its own.
pub async fn plan(
    file: &Path,
    output: OutputFormat,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let loaded = super::load_spec(file, global)
        .map_err(|diagnostics| InvalidInput::Specs(vec![diagnostics]))?;
    // The same refusal as `validate` and `run`: a query with no Prometheus to ask.
    let missing = planner::unconfigured_prometheus(&loaded, global.prometheus_url.is_some());
    if !missing.is_empty() {
        return Err(InvalidInput::Specs(vec![missing]).into());
    }
    let seed = global.seed.unwrap_or_else(planner::fresh_seed);
    let plan = match connect(global).await {
        Some(connection) => plan_against(&loaded, seed, &connection, global).await,
        None => planner::plan(
            &loaded,
            &PlanSettings {
                seed,
                default_namespace: global.namespace.clone(),
            },
        ),
    };
    match output.machine() {
        Some(format) => crate::out_raw!("{}", crate::output::render(format, "Plan", &plan)),
        None => crate::out_raw!("{plan}"),
    }
    Ok(if plan.unresolved().is_empty() {
        Outcome::Passed
    } else {
        Outcome::CouldNotRun
    })
}

/// Best effort: `plan` is useful offline, so an unreachable cluster is a note, not an error.
async fn connect(global: &GlobalArgs) -> Option<cluster::Connection> {
    match cluster::connect_with(
        global.kubeconfig.as_deref(),
        global.context.as_deref(),
        global.connect_timeout,
    )
    .await
    {
        // Unreachable: say so in about `--connect-timeout`, not after the listing's deadline.
        Ok(connection) => {
            match cluster::ensure_reachable(&connection, global.connect_timeout).await {
                Ok(()) => Some(connection),
                Err(e) => {
                    if !global.quiet {
                        crate::say!("shakedown: {e}; showing the timeline without targets");
                    }
                    None
                }
            }
        }
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

/// The plan with the cluster's default namespace and, when the cluster answers, picks.
async fn plan_against(
    loaded: &spec::Loaded,
    seed: u64,
    connection: &cluster::Connection,
    global: &GlobalArgs,
) -> Plan {
    let settings = PlanSettings {
        seed,
        default_namespace: Some(connection.namespace_for(global.namespace.as_deref())),
    };
    let mut plan = planner::plan(loaded, &settings);
    if !global.quiet {
        crate::say!(
            "shakedown: context `{}`, API server {}",
            connection.context,
            connection.server
        );
    }
    let (namespaces, with_nodes) = plan.inventory_needs();
    match cluster::inventory(connection, &namespaces, with_nodes, Duration::from_secs(10)).await {
        Ok(inventory) => plan.pick_targets(&inventory),
        Err(e) => {
            if !global.quiet {
                crate::say!(
                    "shakedown: cluster not reachable ({e}); showing the timeline without targets"
                );
            }
        }
    }
    plan
}
