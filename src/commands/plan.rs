//! `shakedown plan`: the timeline and, when the cluster answers, the picks. Read-only.

use std::path::Path;
use std::time::Duration;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::exit::{Failure, InvalidInput, Outcome};
use crate::{cluster, plan as planner, spec};

/// Prints the timeline and, when the cluster answers, the targets that would be hit.
/// Nothing is mutated. Exit 3 when the cluster answers but a fault has no targets: the
/// printed plan says which and why, so that verdict needs no message of its own.
pub async fn plan(
    file: &Path,
    output: OutputFormat,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let loaded = spec::load(file).map_err(|diagnostics| InvalidInput::Specs(vec![diagnostics]))?;
    let seed = global.seed.unwrap_or_else(planner::fresh_seed);
    let inventory = read_inventory(&loaded, global).await;
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
    Ok(if unresolved {
        Outcome::CouldNotRun
    } else {
        Outcome::Passed
    })
}

/// Best effort: `plan` is useful offline, so an unreachable cluster is a note, not an error.
async fn read_inventory(loaded: &spec::Loaded, global: &GlobalArgs) -> Option<planner::Inventory> {
    let (mut namespaces, with_nodes) = planner::inventory_needs(loaded);
    let result = async {
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
    }
    .await;
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
