//! `shakedown halt`: pull (or, with `--clear`, release) the kill switch, the halt marker
//! of `cluster::halt`. Thin: settle the namespace, write or delete the marker, say what
//! happened. `--dry-run=client` touches nothing; `--dry-run=server` sends `dryRun=All`.

use crate::cli::{DryRun, GlobalArgs};
use crate::cluster::{self, halt};
use crate::exit::{CouldNotRun, Failure, InvalidInput, Outcome};

/// The halt namespace every command uses: `--halt-namespace` (or its environment
/// variable), else [`halt::DEFAULT_NAMESPACE`].
pub fn namespace(flag: Option<&str>) -> String {
    flag.unwrap_or(halt::DEFAULT_NAMESPACE).to_owned()
}

/// Why `halt` will not guess where the marker goes.
#[derive(Debug, thiserror::Error)]
#[error(
    "--namespace {namespace} and --halt-namespace {halt_namespace} disagree: the marker must be where the runs look (--halt-namespace); pass one of them"
)]
struct NamespacesDisagree {
    namespace: String,
    halt_namespace: String,
}

/// For this command `-n` names the marker's namespace (kubectl's habit: the namespace
/// of the object acted on), so `shakedown halt -n chaos` is never silently ignored.
fn marker_namespace(global: &GlobalArgs) -> Result<String, NamespacesDisagree> {
    match (
        global.namespace.as_deref(),
        global.halt_namespace.as_deref(),
    ) {
        (Some(n), Some(h)) if n != h => Err(NamespacesDisagree {
            namespace: n.into(),
            halt_namespace: h.into(),
        }),
        (Some(n), _) => Ok(n.into()),
        (None, flag) => Ok(namespace(flag)),
    }
}

pub async fn halt(
    reason: Option<&str>,
    clear: bool,
    global: &GlobalArgs,
) -> Result<Outcome, Failure> {
    let namespace = marker_namespace(global).map_err(|e| InvalidInput::Flag(Box::new(e)))?;
    let conn = cluster::connect(global.kubeconfig.as_deref(), global.context.as_deref())
        .await
        .map_err(|e| CouldNotRun::Connect(Box::new(e)))?;
    let place = format!(
        "configmap {namespace}/{} in context `{}` ({})",
        halt::MARKER_NAME,
        conn.context,
        conn.server
    );
    let failed = |e: halt::HaltError| -> Failure { CouldNotRun::KillSwitch(Box::new(e)).into() };
    let server_dry_run = global.dry_run == DryRun::Server;
    if global.dry_run == DryRun::Client {
        // Reading is not touching: say what a real call would find and do.
        let current = halt::read(&conn.client, &namespace).await.map_err(failed)?;
        match (clear, current) {
            (false, Some(notice)) => {
                crate::out!("already {notice} ({place}); nothing would change")
            }
            (false, None) => crate::out!(
                "would halt: create {place} ({}); --dry-run=client: nothing was touched",
                halt::notice_now(reason)
            ),
            (true, Some(notice)) => crate::out!(
                "would clear the halt ({notice}) by deleting {place}; --dry-run=client: nothing was touched"
            ),
            (true, None) => crate::out!("not halted: no {place}; nothing to clear"),
        }
        return Ok(Outcome::DryRun);
    }
    let done = if server_dry_run {
        Outcome::DryRun
    } else {
        Outcome::Passed
    };
    let would = if server_dry_run {
        " (--dry-run=server: the API server accepted it; nothing was changed)"
    } else {
        ""
    };
    if clear {
        match halt::clear(&conn.client, &namespace, server_dry_run)
            .await
            .map_err(failed)?
        {
            Some(notice) => crate::out!(
                "cleared the halt ({notice}): deleted {place}; runs may start again{would}"
            ),
            None => crate::out!("not halted: no {place}; nothing to clear"),
        }
        return Ok(done);
    }
    let notice = halt::notice_now(reason);
    match halt::halt(&conn.client, &namespace, notice, server_dry_run)
        .await
        .map_err(failed)?
    {
        halt::Halt::Created(notice) => crate::out!(
            "{notice}\ncreated {place}: running shakedowns revert and exit 5; new runs refuse to start until `shakedown halt --clear`{would}"
        ),
        halt::Halt::AlreadyHalted(notice) => {
            crate::out!("already {notice} ({place}); left as it is")
        }
    }
    Ok(done)
}
