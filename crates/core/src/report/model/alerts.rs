//! Per alert, what the game day measured: its time to detect (a `firing within`
//! hypothesis, from the injection to the first firing sample), its time to resolve (a
//! `resolved within` hypothesis, from the revert), and when the samples saw it firing.
//! An alert is one probe (name and labels) in one step; its hypotheses are grouped.

use jiff::Timestamp;

use super::{HypothesisView, RunView};
use crate::spec::Phase;

/// One alert of one step (or experiment-wide), as the reports show it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTimes {
    pub step: Option<String>,
    /// The probe as the journal says it: `alert CheckoutHighLatency{service="checkout"}`.
    pub alert: String,
    pub detect_ms: Option<u64>,
    pub resolve_ms: Option<u64>,
    /// The hypotheses that judged it, in plan order.
    pub hypotheses: Vec<String>,
}

/// Whether a hypothesis judges an alert (its expectation is an alert one).
pub fn is_alert(h: &HypothesisView) -> bool {
    let e = h.expectation.trim_start();
    e.starts_with("firing within") || e.starts_with("resolved within") || e == "not firing"
}

impl HypothesisView {
    /// The time to resolve of a `resolved within` alert hypothesis that resolved.
    pub fn resolve_ms(&self) -> Option<u64> {
        if !self.expectation.trim_start().starts_with("resolved within") {
            return None;
        }
        self.checks
            .iter()
            .filter(|c| c.phase == Phase::After)
            .filter_map(|c| c.verdict.as_ref()?.recovery_ms)
            .max()
    }

    /// When this alert hypothesis's samples saw the alert firing: each interval runs
    /// from a sample with a count above zero to the next sample without (or the last
    /// firing sample), in sample order.
    pub fn firing_intervals(&self) -> Vec<(Timestamp, Timestamp)> {
        if !is_alert(self) {
            return Vec::new();
        }
        let mut samples: Vec<(Timestamp, bool)> = self
            .checks
            .iter()
            .flat_map(|c| &c.samples)
            .map(|s| {
                let firing = s.values.iter().any(|v| v.value.is_some_and(|x| x > 0.0));
                (s.eval_time, firing)
            })
            .collect();
        samples.sort_by_key(|s| s.0);
        let mut out = Vec::new();
        let mut open: Option<(Timestamp, Timestamp)> = None;
        for (at, firing) in samples {
            open = match (open, firing) {
                (None, true) => Some((at, at)),
                (Some((from, _)), true) => Some((from, at)),
                (Some((from, _)), false) => {
                    out.push((from, at));
                    None
                }
                (None, false) => None,
            };
        }
        out.extend(open);
        out
    }
}

impl RunView {
    /// Every alert the run's hypotheses judged, step by step, then experiment-wide.
    pub fn alerts(&self) -> Vec<AlertTimes> {
        let mut out: Vec<AlertTimes> = Vec::new();
        for (step, h) in self.all_hypotheses().filter(|(_, h)| is_alert(h)) {
            let step = step.map(|s| s.id.clone());
            let index = match out
                .iter()
                .position(|a| a.step == step && a.alert == h.probe)
            {
                Some(i) => i,
                None => {
                    out.push(AlertTimes {
                        step,
                        alert: h.probe.clone(),
                        detect_ms: None,
                        resolve_ms: None,
                        hypotheses: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            let alert = &mut out[index];
            alert.detect_ms = alert.detect_ms.max(h.detect_ms());
            alert.resolve_ms = alert.resolve_ms.max(h.resolve_ms());
            alert.hypotheses.push(h.name.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::events::Record;
    use crate::report::{self, model};

    fn records(lines: &[String]) -> Vec<Record> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let json = format!(
                    r#"{{"seq":{},"at":"2027-01-15T08:00:{:02}Z",{l}}}"#,
                    i + 1,
                    i
                );
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
            })
            .collect()
    }

    const ALERT: &str = r#"alert CheckoutHighLatency{service=\"checkout\"}"#;

    fn sample(phase: &str, second: u32, value: u32) -> String {
        format!(
            r#""event":"probeSample","step":"1","hypothesis":"{}","phase":"{phase}","evalTime":"2027-01-15T08:01:{second:02}Z","query":"{ALERT}","values":[{{"labels":{{"alertname":"CheckoutHighLatency"}},"value":{value}.0}}],"outcome":"{}""#,
            if phase == "during" {
                "fires"
            } else {
                "resolves"
            },
            if (value > 0) == (phase == "during") {
                "pass"
            } else {
                "fail"
            }
        )
    }

    /// A latency step with the alert's `firing within` and `resolved within` hypotheses.
    fn run() -> Vec<Record> {
        let start = format!(
            r#""event":"runStarted","runId":"r","experiment":"e","source":"e.yaml","seed":1,"dryRun":"none","version":"0","steps":[{{"id":"1","name":"s","scenario":"s","hypotheses":[{{"name":"fires","probe":"{ALERT}","expectation":"firing within 7s","phases":["during"],"weight":1}},{{"name":"resolves","probe":"{ALERT}","expectation":"resolved within 20s","phases":["after"],"weight":1}}]}}]"#
        );
        let mut lines = vec![
            start,
            r#""event":"stepStarted","step":"1""#.to_owned(),
            r#""event":"faultInjected","step":"1","target":"shop/checkout-1","detail":"netem""#
                .to_owned(),
        ];
        lines.extend([(1, 0), (2, 0), (3, 1), (4, 1)].map(|(s, v)| sample("during", s, v)));
        lines.push(r#""event":"hypothesisVerdict","step":"1","hypothesis":"fires","phase":"during","verdict":"passed","expectation":"firing within 7s","message":"fired 3.0s after the injection","samples":4,"passed":2,"detectMs":3000"#.to_owned());
        lines.push(
            r#""event":"faultReverted","step":"1","target":"shop/checkout-1","detail":"netem deleted""#
                .to_owned(),
        );
        lines.extend([(6, 1), (7, 0), (8, 0)].map(|(s, v)| sample("after", s, v)));
        lines.push(r#""event":"hypothesisVerdict","step":"1","hypothesis":"resolves","phase":"after","verdict":"passed","expectation":"resolved within 20s","message":"resolved 3.2s after the revert","samples":3,"passed":2,"recoveryMs":3200"#.to_owned());
        lines.push(r#""event":"stepFinished","step":"1","status":"completed""#.to_owned());
        lines.push(r#""event":"runFinished","status":"completed","deviated":false,"exitCode":0,"outcome":"passed""#.to_owned());
        records(&lines)
    }

    /// Issue 16 item 3: every report says each alert's time to detect and to resolve,
    /// and the chart shows when it was firing.
    #[test]
    fn every_report_shows_the_alerts_time_to_detect_and_resolve() {
        let records = run();
        let view = model::analyze(&records, false);
        let alerts = view.alerts();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].step.as_deref(), Some("1"));
        assert_eq!(
            (alerts[0].detect_ms, alerts[0].resolve_ms),
            (Some(3000), Some(3200))
        );
        assert_eq!(alerts[0].hypotheses, ["fires", "resolves"]);

        let files = report::render(&records, false, &[]);
        let file = |name: &str| {
            files
                .iter()
                .find(|f| f.path.to_string_lossy() == name)
                .map(|f| f.contents.clone())
                .unwrap_or_else(|| panic!("{name} not rendered"))
        };
        let md = file(report::MARKDOWN_FILE);
        let verdicts = md.split("## Hypotheses").next().unwrap_or_default();
        assert!(
            verdicts.contains(
                r#"| timing | ⏱️ measured | time to detect 3.0s · time to resolve 3.2s |"#
            ),
            "{verdicts}"
        );
        assert!(md.contains("Time to resolve: 3.2s"), "{md}");

        let summary: serde_json::Value =
            serde_json::from_str(&file(report::JSON_FILE)).expect("json");
        let alert = &summary["alerts"][0];
        assert_eq!(alert["alert"], ALERT.replace("\\\"", "\""));
        assert_eq!(
            (alert["detectMs"].as_u64(), alert["resolveMs"].as_u64()),
            (Some(3000), Some(3200))
        );

        let junit = file(report::JUNIT_FILE);
        assert!(junit.contains(r#"name="time_to_resolve alert CheckoutHighLatency{service=&quot;checkout&quot;}" value="3.2s""#), "{junit}");
        assert!(junit.contains(r#"name="time_to_detect alert CheckoutHighLatency{service=&quot;checkout&quot;}" value="3.0s""#), "{junit}");

        let chart = files
            .iter()
            .find(|f| f.path.to_string_lossy().ends_with(".svg"))
            .expect("a chart");
        let bands: Vec<&str> = chart
            .contents
            .lines()
            .filter(|l| l.contains("alert-firing"))
            .collect();
        // Firing from the sample at :03 to the first quiet one at :07.
        assert_eq!(bands.len(), 1, "{}", chart.contents);
        assert!(bands[0].contains("firing</title>"), "{}", bands[0]);
    }

    #[test]
    fn a_run_without_alert_hypotheses_has_no_alerts() {
        let records = records(&[r#""event":"runStarted","runId":"r","experiment":"e","source":"e.yaml","seed":1,"dryRun":"none","version":"0","steps":[{"id":"1","name":"s","scenario":"s","hypotheses":[{"name":"h","probe":"up","expectation":"> 0","phases":["before"],"weight":1}]}]"#.to_owned()]);
        assert!(model::analyze(&records, false).alerts().is_empty());
    }
}
