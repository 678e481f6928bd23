//! Whether a plan has the Prometheus its hypotheses query. A PromQL hypothesis (or an
//! alert hypothesis read from Prometheus, when no Alertmanager is configured) with no
//! Prometheus anywhere, neither in the files nor from `--prometheus-url`, is invalid
//! input: `validate`, `plan` and `run` all say so from this one check, at the
//! hypothesis's `file:line:col`, before anything is contacted.

use std::path::Path;

use super::{Plan, plan};
use crate::spec::node::Pos;
use crate::spec::{Diagnostic, Diagnostics, Hypothesis, Loaded, Probe};

impl Plan {
    /// The hypotheses that query Prometheus, experiment-wide and every fault step's,
    /// each with the file it is written in.
    pub fn prometheus_hypotheses(&self) -> Vec<(&str, &Hypothesis)> {
        let queries = |h: &&Hypothesis| match h.probe {
            Probe::Promql(_) => true,
            Probe::Alert(_) => self.alertmanager.is_none(),
            _ => false,
        };
        let wide = self
            .hypotheses
            .iter()
            .filter(queries)
            .map(|h| (self.source.as_str(), h));
        let steps = self.fault_steps().into_iter().flat_map(|(_, s)| {
            s.hypotheses
                .iter()
                .filter(queries)
                .map(move |h| (s.file.as_str(), h))
        });
        wide.chain(steps).collect()
    }
}

/// One problem per hypothesis that queries Prometheus when none is configured: not in
/// the file or anything it includes (`spec.prometheus.url`), and not given as a flag
/// (`flag_url`: `--prometheus-url` or `SHAKEDOWN_PROMETHEUS_URL`).
pub fn unconfigured_prometheus(loaded: &Loaded, flag_url: bool) -> Diagnostics {
    if flag_url {
        return Diagnostics::default();
    }
    // Which Prometheus a run talks to does not depend on the seed or the namespace.
    let plan = plan(loaded, &Default::default());
    if plan.prometheus.as_ref().is_some_and(|p| p.url.is_some()) {
        return Diagnostics::default();
    }
    let found = plan
        .prometheus_hypotheses()
        .into_iter()
        .map(|(file, h)| {
            let what = match h.probe {
                Probe::Alert(_) => "reads its alert from Prometheus (there is no `alertmanager:` block)",
                _ => "queries Prometheus",
            };
            at_hypothesis(
                Path::new(file),
                h.line,
                format!("hypothesis `{}` {what}, but no Prometheus is configured", h.name),
                "add a `prometheus: {url: http://…}` block to the experiment's or the scenario's spec, or pass --prometheus-url (or set SHAKEDOWN_PROMETHEUS_URL)",
            )
        })
        .collect();
    Diagnostics(found).sorted()
}

/// A diagnostic at a hypothesis: its line, and the column where its first key starts
/// (after the list's `- `), read back from the file for the snippet.
fn at_hypothesis(path: &Path, line: Option<u32>, message: String, hint: &str) -> Diagnostic {
    let line = line.unwrap_or(1);
    let line_text = std::fs::read_to_string(path).ok().and_then(|text| {
        text.lines()
            .nth(line.saturating_sub(1) as usize)
            .map(str::to_owned)
    });
    let col = line_text.as_deref().map_or(1, item_column);
    Diagnostic {
        path: path.to_path_buf(),
        pos: Pos { line, col },
        message,
        hint: Some(hint.to_owned()),
        line_text,
    }
}

/// The 1-based column of a YAML list item's first key: `    - name: x` → 7.
fn item_column(line: &str) -> u32 {
    let indent = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    let skipped = match rest.strip_prefix('-') {
        Some(after) => 1 + (after.len() - after.trim_start().len()),
        None => 0,
    };
    u32::try_from(indent + skipped + 1).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_is_the_first_key_of_the_list_item() {
        assert_eq!(item_column("    - name: x"), 7);
        assert_eq!(item_column("  -   name: x"), 7);
        assert_eq!(item_column("      name: x"), 7);
    }

    fn load(dir: &Path, experiment: &str, scenario: &str) -> Loaded {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("s.yaml"), scenario).unwrap();
        std::fs::write(dir.join("e.yaml"), experiment).unwrap();
        let options = crate::spec::LoadOptions {
            allow_paths: vec![dir.to_path_buf()],
        };
        crate::spec::load_with(&dir.join("e.yaml"), &options).unwrap_or_else(|d| panic!("{d}"))
    }

    const SCENARIO: &str = "apiVersion: shakedown.dev/v1alpha1
kind: Scenario
metadata: {name: s}
spec:
  safety: {allowedNamespaces: [shop]}
  target:
    pods: {namespace: shop, selector: app=checkout, mode: one}
  fault: {type: pod-delete}
  hypotheses:
    - name: error ratio
      promql: sum(up)
      expect: \"< 0.01\"
    - name: latency alert
      alert: {name: CheckoutHighLatency}
      expect: firing within 1m
";

    fn experiment(extra: &str) -> String {
        format!(
            "apiVersion: shakedown.dev/v1alpha1
kind: Experiment
metadata: {{name: e}}
spec:
{extra}  steps:
    - scenario: s.yaml
"
        )
    }

    /// Issue 11 item 5: `run` refused this only after validate had said ok.
    #[test]
    fn a_promql_hypothesis_with_no_prometheus_anywhere_is_invalid_at_its_line_and_column() {
        let dir = std::env::temp_dir().join(format!("shakedown-noprom-{}", std::process::id()));
        let loaded = load(&dir, &experiment(""), SCENARIO);
        let found = unconfigured_prometheus(&loaded, false);
        let lines: Vec<String> = found.0.iter().map(Diagnostic::headline).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("s.yaml:10:7: hypothesis `error ratio` queries Prometheus, but no Prometheus is configured (add a `prometheus:"), "{lines:?}");
        assert!(lines[0].contains("--prometheus-url"), "{lines:?}");
        assert!(
            lines[1].contains(
                "s.yaml:13:7: hypothesis `latency alert` reads its alert from Prometheus"
            ),
            "{lines:?}"
        );
        assert_eq!(
            found.0[0].line_text.as_deref(),
            Some("    - name: error ratio")
        );
        // The flag, or a `prometheus:` block in the experiment, configures it.
        assert!(unconfigured_prometheus(&loaded, true).is_empty());
        let with_block = load(
            &dir,
            &experiment("  prometheus: {url: http://127.0.0.1:9090}\n"),
            SCENARIO,
        );
        assert!(unconfigured_prometheus(&with_block, false).is_empty());
        // With an Alertmanager, the alert is read there; the PromQL one still needs one.
        let with_am = load(
            &dir,
            &experiment("  alertmanager: {url: http://127.0.0.1:9093}\n"),
            SCENARIO,
        );
        let found = unconfigured_prometheus(&with_am, false);
        assert_eq!(found.len(), 1);
        assert!(found.0[0].message.contains("`error ratio`"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
