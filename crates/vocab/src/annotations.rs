//! The marks a run leaves on the objects it faults. The injector writes them, `recover`
//! finds them, and the sandbox's workload model reads them, so they are defined once.

/// On a node we cordoned: the run id. `recover` uncordons only nodes carrying it, so a
/// node an admin cordoned is never touched.
pub const CORDONED_BY: &str = "shakedown.dev/cordoned-by";

/// On a pod with an active network fault: JSON `{runId, kind, container, interface, params, expires}`.
pub const FAULT_ANNOTATION: &str = "shakedown.dev/fault";

/// On a run lock (a `coordination.k8s.io/v1` Lease): what it covers, e.g.
/// `deployment/shop/checkout` or `node/worker-1`.
pub const LOCK_TARGET: &str = "shakedown.dev/lock-target";

/// On a run lock: the id of the run holding it (also its `holderIdentity`).
pub const LOCK_RUN_ID: &str = "shakedown.dev/run-id";

/// On a run lock: the host and process of the run holding it (`ci-runner-7 (pid 4242)`).
pub const LOCK_HOST: &str = "shakedown.dev/host";

/// The label every run lock carries, so `recover` can list them: `managed-by=shakedown`.
pub const LOCK_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "shakedown");
