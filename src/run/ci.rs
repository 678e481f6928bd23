//! Whether this process runs under a CI system: the one definition every part uses
//! (no progress bars, and `allowedContexts` may stand in for `--yes`).
//!
//! `CI` is the common convention, but Jenkins does not set it and Azure Pipelines sets
//! `TF_BUILD` instead, so each system's own marker counts too.

/// The variables CI systems set (tests clear them all to run "outside CI").
pub const MARKERS: [&str; 6] = [
    "CI",
    "JENKINS_URL",
    "GITLAB_CI",
    "GITHUB_ACTIONS",
    "BUILDKITE",
    "TF_BUILD",
];

/// True when any CI marker is set to something other than empty, `0` or `false`.
pub fn detected() -> bool {
    detected_in(|name| std::env::var(name).ok())
}

fn detected_in(var: impl Fn(&str) -> Option<String>) -> bool {
    MARKERS.iter().any(|name| {
        var(name).is_some_and(|v| {
            let v = v.trim();
            !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> bool {
        detected_in(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn every_ci_system_is_recognised_and_false_is_not_ci() {
        assert!(!with(&[]));
        for marker in MARKERS {
            assert!(with(&[(marker, "true")]), "{marker}");
        }
        // Jenkins sets no CI variable, only its URL.
        assert!(with(&[("JENKINS_URL", "https://jenkins.example.com/")]));
        assert!(with(&[("TF_BUILD", "True")]));
        for off in ["", "0", "false", "FALSE"] {
            assert!(!with(&[("CI", off)]), "CI={off:?}");
        }
    }
}
