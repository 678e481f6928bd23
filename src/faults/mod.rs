//! Faults: how each one is injected into the cluster and undone.
//!
//! Every fault follows `plan → inject → hold → revert → verify`, and records its intent
//! (journal and in-cluster annotations) before its first mutating call, so that
//! `shakedown recover` can undo it even when the journal is lost.

pub mod network;

/// On a node we cordoned: the run id. `recover` uncordons only nodes carrying it, so a
/// node an admin cordoned is never touched.
pub const CORDONED_BY: &str = "shakedown.dev/cordoned-by";

/// On a pod with an active network fault: JSON `{runId, kind, params, expires}`.
pub const FAULT_ANNOTATION: &str = "shakedown.dev/fault";
