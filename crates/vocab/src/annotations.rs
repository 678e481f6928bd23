//! The marks a run leaves on the objects it faults. The injector writes them, `recover`
//! finds them, and the sandbox's workload model reads them, so they are defined once.

/// On a node we cordoned: the run id. `recover` uncordons only nodes carrying it, so a
/// node an admin cordoned is never touched.
pub const CORDONED_BY: &str = "shakedown.dev/cordoned-by";

/// On a pod with an active network fault: JSON `{runId, kind, container, interface, params, expires}`.
pub const FAULT_ANNOTATION: &str = "shakedown.dev/fault";
