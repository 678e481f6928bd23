//! Hand-written SVG charts: one hypothesis's values over time, fault windows shaded, the
//! threshold drawn. Plain SVG 1.1 with no scripts or external references, so GitHub and
//! any browser show it as an image.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;

use super::model::{HypothesisView, RunView, StepView};
use super::text::{self, xml};
use crate::events::SampleOutcome;
use crate::spec::Phase;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 40.0;
/// More series than this are summarized in a note; the journal has them all.
const MAX_SERIES: usize = 8;
const COLORS: [&str; MAX_SERIES] = [
    "#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#2ca02c",
];

/// The thresholds an expectation names: `< 0.01` → `[0.01]`, `between 0.1 and 0.5` →
/// `[0.1, 0.5]`. Anything unparsable draws no line.
pub fn thresholds(expectation: &str) -> Vec<f64> {
    expectation
        .split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '=' || c == '!')
        .filter_map(|t| t.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect()
}

/// (time in ms, value, outcome, phase) in time order.
type Series = Vec<(i64, f64, SampleOutcome, Phase)>;

/// The chart for one hypothesis, or `None` when it has no finite sample to draw.
pub fn chart(view: &RunView, step: Option<&StepView>, h: &HypothesisView) -> Option<String> {
    let series = collect_series(h);
    let points: Vec<(i64, f64)> = series
        .values()
        .flatten()
        .map(|(t, v, _, _)| (*t, *v))
        .collect();
    if points.is_empty() {
        return None;
    }
    let windows = fault_windows(view, step);
    let limits = thresholds(&h.expectation);
    let (t0, t1) = time_range(view, step, &points, &windows);
    let (y0, y1) = value_range(&points, &limits);
    let sx = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (WIDTH - LEFT - RIGHT);
    let sy = |v: f64| TOP + (y1 - v) / (y1 - y0) * (HEIGHT - TOP - BOTTOM);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let title = match step {
        Some(s) => format!("{} (step {}): {}", h.name, s.id, h.expectation),
        None => format!("{} (experiment-wide): {}", h.name, h.expectation),
    };
    let _ = writeln!(svg, "<title>{}</title>", xml(&text::clean_line(&title)));
    let _ = writeln!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"20\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        xml(&truncate_chars(&text::clean_line(&title), 90))
    );
    for (a, b) in &windows {
        let (xa, xb) = (sx(*a).max(LEFT), sx(*b).min(WIDTH - RIGHT));
        let _ = writeln!(
            svg,
            "<rect class=\"fault\" x=\"{}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"#d62728\" fill-opacity=\"0.12\"><title>fault active</title></rect>",
            f(xa),
            f((xb - xa).max(1.0)),
            f(HEIGHT - TOP - BOTTOM)
        );
    }
    alert_bands(&mut svg, &firing_intervals(view, step), &sx);
    let origin = if step.is_some() { "step" } else { "run" };
    axes(&mut svg, (t0, t1), (y0, y1), (&sx, &sy), origin);
    for limit in &limits {
        let y = f(sy(*limit));
        let _ = writeln!(
            svg,
            "<line class=\"threshold\" x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#d62728\" stroke-dasharray=\"6 4\"/>",
            WIDTH - RIGHT
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#d62728\">{}</text>",
            WIDTH - RIGHT - 2.0,
            f(sy(*limit) - 4.0),
            xml(&format!("threshold {}", text::number(*limit)))
        );
    }
    plot(&mut svg, &series, &sx, &sy);
    svg.push_str("</svg>\n");
    Some(svg)
}

/// When the alerts of a step (or the experiment-wide ones) were seen firing, as
/// `(alert, from ms, to ms)`, from every alert hypothesis's samples.
fn firing_intervals(view: &RunView, step: Option<&StepView>) -> Vec<(String, i64, i64)> {
    let hypotheses: Vec<&HypothesisView> = match step {
        Some(s) => s.hypotheses.iter().collect(),
        None => view.experiment_hypotheses.iter().collect(),
    };
    let mut out: Vec<(String, i64, i64)> = hypotheses
        .into_iter()
        .flat_map(|h| {
            h.firing_intervals()
                .into_iter()
                .map(|(a, b)| (h.probe.clone(), a.as_millisecond(), b.as_millisecond()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A band along the top of the plot for each interval an alert was firing, so a
/// reader sees the alert against the values and the fault window.
fn alert_bands(svg: &mut String, intervals: &[(String, i64, i64)], sx: &dyn Fn(i64) -> f64) {
    for (alert, a, b) in intervals {
        let (xa, xb) = (sx(*a).max(LEFT), sx(*b).min(WIDTH - RIGHT));
        if xb < xa {
            continue;
        }
        let _ = writeln!(
            svg,
            "<rect class=\"alert-firing\" x=\"{}\" y=\"{TOP}\" width=\"{}\" height=\"6\" fill=\"#ff7f0e\" fill-opacity=\"0.8\"><title>{}</title></rect>",
            f(xa),
            f((xb - xa).max(2.0)),
            xml(&text::clean_line(&format!("{alert} firing")))
        );
    }
}

fn collect_series(h: &HypothesisView) -> BTreeMap<String, Series> {
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    for sample in h.checks.iter().flat_map(|c| &c.samples) {
        let t = sample.eval_time.as_millisecond();
        for v in &sample.values {
            let Some(value) = v.value.filter(|x| x.is_finite()) else {
                continue;
            };
            let key: Vec<String> = v
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            series
                .entry(format!("{{{}}}", key.join(",")))
                .or_default()
                .push((t, value, sample.outcome, sample.phase));
        }
    }
    for points in series.values_mut() {
        points.sort_by_key(|p| p.0);
    }
    series
}

fn fault_windows(view: &RunView, step: Option<&StepView>) -> Vec<(i64, i64)> {
    let steps: Vec<&StepView> = match step {
        Some(s) => vec![s],
        None => view.steps.iter().collect(),
    };
    steps
        .iter()
        .filter_map(|s| s.fault_window(view.ended_at))
        .map(|(a, b)| (a.as_millisecond(), b.as_millisecond()))
        .collect()
}

fn time_range(
    view: &RunView,
    step: Option<&StepView>,
    points: &[(i64, f64)],
    windows: &[(i64, i64)],
) -> (i64, i64) {
    let ms = |t: Option<Timestamp>| t.map(|t| t.as_millisecond());
    let (start, end) = match step {
        Some(s) => (ms(s.started_at), ms(s.ended_at)),
        None => (ms(view.started_at), ms(view.ended_at)),
    };
    let candidates = points
        .iter()
        .map(|p| p.0)
        .chain(windows.iter().flat_map(|w| [w.0, w.1]))
        .chain(start)
        .chain(end);
    let (lo, hi) = candidates.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 1_000, lo + 1_000)
    }
}

fn value_range(points: &[(i64, f64)], limits: &[f64]) -> (f64, f64) {
    let (lo, hi) = points
        .iter()
        .map(|p| p.1)
        .chain(limits.iter().copied())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    let low = if lo >= 0.0 && lo - span * 0.1 < 0.0 {
        0.0
    } else {
        lo - span * 0.1
    };
    (low, hi + span * 0.1)
}

type Scale<'a, T> = &'a dyn Fn(T) -> f64;

fn axes(
    svg: &mut String,
    (t0, t1): (i64, i64),
    (y0, y1): (f64, f64),
    (sx, sy): (Scale<'_, i64>, Scale<'_, f64>),
    origin: &str,
) {
    let bottom = HEIGHT - BOTTOM;
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\" stroke=\"#333333\"/>"
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#333333\"/>",
        WIDTH - RIGHT
    );
    for i in 0..=4 {
        let v = y0 + (y1 - y0) * f64::from(i) / 4.0;
        let y = f(sy(v));
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#eeeeee\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            f(sy(v) + 4.0),
            xml(&short_number(v))
        );
    }
    for i in 0..=4 {
        let t = t0 + (t1 - t0) * i / 4;
        // The outermost labels are anchored inwards so they are not clipped.
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let label = match u64::try_from(t - t0).unwrap_or(0) {
            0 => "0s".to_owned(),
            ms => text::duration(ms),
        };
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\">+{}</text>",
            f(sx(t)),
            bottom + 16.0,
            xml(&label)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555555\">time since the {origin} started · shaded: fault active · dashed: threshold · red dots: failing samples</text>",
        WIDTH - RIGHT,
        HEIGHT - 6.0
    );
}

fn plot(
    svg: &mut String,
    series: &BTreeMap<String, Series>,
    sx: &dyn Fn(i64) -> f64,
    sy: &dyn Fn(f64) -> f64,
) {
    for (i, (labels, points)) in series.iter().take(MAX_SERIES).enumerate() {
        let color = COLORS[i % COLORS.len()];
        // One line per phase: before, during and after are not joined across the gaps
        // between them.
        for run in points.chunk_by(|a, b| a.3 == b.3) {
            let path: Vec<String> = run
                .iter()
                .map(|(t, v, _, _)| format!("{},{}", f(sx(*t)), f(sy(*v))))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline class=\"series\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
                path.join(" "),
                xml(labels)
            );
        }
        for (t, v, outcome, _) in points {
            let fill = if *outcome == SampleOutcome::Pass {
                color
            } else {
                "#d62728"
            };
            let _ = writeln!(
                svg,
                "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{fill}\"/>",
                f(sx(*t)),
                f(sy(*v))
            );
        }
    }
    if series.len() > MAX_SERIES {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} more series not drawn (truncated)</text>",
            WIDTH - RIGHT,
            TOP - 4.0,
            series.len() - MAX_SERIES
        );
    }
}

/// One owner's recovery time across runs, oldest first (`points` is label and ms, the
/// last being this run), with its recovery-time objective as a dashed line: the same
/// frame, axes and colours as the hypothesis charts.
pub fn trend(owner: &str, points: &[(String, u64)], rto_ms: Option<u64>) -> String {
    let secs = |ms: u64| ms as f64 / 1000.0;
    let top = points
        .iter()
        .map(|p| secs(p.1))
        .chain(rto_ms.map(secs))
        .fold(0.0_f64, f64::max)
        .max(0.001)
        * 1.1;
    let last = points.len().saturating_sub(1).max(1) as f64;
    let sx = |i: usize| LEFT + 12.0 + i as f64 / last * (WIDTH - LEFT - RIGHT - 24.0);
    let sy = |v: f64| TOP + (top - v) / top * (HEIGHT - TOP - BOTTOM);
    let title = format!("{owner}: recovery time over the last {} runs", points.len());
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(svg, "<title>{}</title>", xml(&text::clean_line(&title)));
    let _ = writeln!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"20\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        xml(&truncate_chars(&text::clean_line(&title), 90))
    );
    let bottom = HEIGHT - BOTTOM;
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\" stroke=\"#333333\"/>\n<line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#333333\"/>",
        WIDTH - RIGHT
    );
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#eeeeee\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}s</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            f(sy(v) + 4.0),
            xml(&short_number((v * 100.0).round() / 100.0)),
            y = f(sy(v)),
        );
    }
    if let Some(rto) = rto_ms {
        let y = f(sy(secs(rto)));
        let _ = writeln!(
            svg,
            "<line class=\"threshold\" x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#d62728\" stroke-dasharray=\"6 4\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#d62728\">{}</text>",
            WIDTH - RIGHT,
            WIDTH - RIGHT - 2.0,
            f(sy(secs(rto)) - 4.0),
            xml(&format!("RTO {}", text::duration(rto)))
        );
    }
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{},{}", f(sx(i)), f(sy(secs(p.1)))))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
        COLORS[0],
        line.join(" ")
    );
    for (i, (label, ms)) in points.iter().enumerate() {
        let (x, y) = (f(sx(i)), f(sy(secs(*ms))));
        let _ = writeln!(
            svg,
            "<circle class=\"run\" cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{}\"><title>{}: {}</title></circle>",
            COLORS[0],
            xml(&text::clean_line(label)),
            xml(&text::duration(*ms))
        );
        // The first and the last run are labelled; the others are in their tooltips.
        if i == 0 || i + 1 == points.len() {
            let anchor = if i == 0 { "start" } else { "end" };
            let _ = writeln!(
                svg,
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                f(bottom + 16.0),
                xml(&truncate_chars(&text::clean_line(label), 40))
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Coordinates to one decimal: small files, stable output.
fn f(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

fn short_number(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.2e}")
    } else {
        let r = (v * 1e4).round() / 1e4;
        format!("{r}")
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_come_from_the_expectation() {
        assert_eq!(thresholds("< 0.01"), vec![0.01]);
        assert_eq!(thresholds(">= 3"), vec![3.0]);
        assert_eq!(thresholds("between 0.1 and 0.5"), vec![0.1, 0.5]);
        assert!(thresholds("is ready").is_empty());
    }
}
