//! Prometheus-style durations (`30s`, `2m`, `1h30m`, `500ms`, `1d`), the unit every
//! SRE already writes in PromQL range selectors. One grammar for specs, flags and the
//! sandbox's config.
//!
//! Written by hand on purpose: `humantime` accepts `1min`, spaces and fractions that
//! Prometheus refuses, and a spec must mean the same thing in a query and a timeout.
//! The grammar (integer, unit, units largest first, each once) is Prometheus'
//! `model.ParseDuration`, small enough that a dependency would cost more than it saves.

use std::time::Duration;

const UNITS: [(&str, u64); 7] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
    ("y", 31_536_000_000),
];

/// Parses a duration; the error says what was wrong with it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.starts_with('-') {
        return Err("durations cannot be negative".into());
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    let mut last_unit = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number is too large".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                format!("`{number}` has no unit (ms, s, m, h, d, w, y)")
            } else {
                format!("unknown unit `{unit}` (ms, s, m, h, d, w, y)")
            });
        };
        // Units must go from largest to smallest, once each, like Prometheus requires.
        if last_unit != usize::MAX && index >= last_unit {
            return Err("units must go from largest to smallest, e.g. `1h30m`".into());
        }
        last_unit = index;
        rest = &rest[unit_len..];
        total_ms = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| "duration is too large".to_string())?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way a user would write it (`1h30m`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS.iter().rev().skip(2) {
        if ms >= *size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "30", "-5s", "5 s", "1m1h", "3sec", "1.5s", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["1h30m", "500ms", "2m", "1d2h", "1m500ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
