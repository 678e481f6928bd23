//! The plan: a pure function from a validated spec to targets and a timeline.
