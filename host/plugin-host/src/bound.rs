//! Bounds on what a plugin hands the host.
//!
//! One rule: everything a plugin returns is bounded and validated before the
//! host keeps, prints or forwards it. Free text (descriptions, error
//! messages) is cut with a marker that says how much was cut, because a
//! shortened message is still honest. Identifiers (names, versions, metric
//! names) are refused instead: a cut name would silently name something else.

use crate::runtime::PluginInfo;
use lem_core::Limits;
use std::collections::HashSet;

/// Cuts `text` to at most `max` bytes (on a character boundary), saying how
/// many bytes were cut. The result is a new, small allocation: truncating in
/// place would keep the plugin's whole buffer alive for as long as the text.
pub(crate) fn cut(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let at = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{} … [{} more bytes cut]", &text[..at], text.len() - at)
}

/// A short, escaped preview of a plugin string for an error message: the
/// string may be megabytes long or hold control characters.
pub(crate) fn preview(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    let chars = text.chars().count();
    if chars > MAX_CHARS {
        out.push_str(&format!("… ({} bytes)", text.len()));
    }
    out
}

/// Checks an identifier from `describe()`: non-empty, at most `max` bytes,
/// no control characters.
fn identifier(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("describe() returned an empty {what}"));
    }
    if value.len() > max {
        return Err(format!(
            "describe() returned a {what} of {} bytes (`{}`); the limit is {max}",
            value.len(),
            preview(value)
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "describe() returned a {what} with control characters (`{}`)",
            preview(value)
        ));
    }
    Ok(())
}

/// Validates and bounds what `describe()` returned. The description is cut;
/// a bad name, version or metric list is refused.
pub(crate) fn check_info(mut info: PluginInfo, limits: &Limits) -> Result<PluginInfo, String> {
    identifier("name", &info.name, limits.max_name_bytes)?;
    identifier("version", &info.version, limits.max_name_bytes)?;
    info.description = cut(info.description, limits.max_description_bytes);
    if info.metrics.len() > limits.max_metrics {
        return Err(format!(
            "describe() declares {} metrics; the limit is {} (`max_metrics`)",
            info.metrics.len(),
            limits.max_metrics
        ));
    }
    let mut seen = HashSet::with_capacity(info.metrics.len());
    for metric in &info.metrics {
        let name = &metric.name;
        identifier("metric name", name, limits.max_metric_name_bytes)?;
        if !seen.insert(name.as_str()) {
            return Err(format!(
                "describe() declares metric `{}` twice",
                preview(name)
            ));
        }
        if let Some([lo, hi]) = metric.range
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(format!(
                "describe() gives metric `{name}` the range {lo} to {hi}; a range is two finite \
                 numbers, the lowest first"
            ));
        }
    }
    Ok(info)
}

/// Checks a scorer's details: JSON, nested at most `max_depth` deep, with
/// finite numbers only (so every tool that reads a score file can read it).
pub(crate) fn check_details(text: &str, max_depth: usize) -> Result<(), String> {
    // Depth first, by a scan that cannot recurse: serde_json's own parser
    // would stop at 128 levels, but say less about why.
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > max_depth {
                    return Err(format!(
                        "details are nested deeper than {max_depth} levels (`max_details_depth`)"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // Parsing as a tree rejects bad syntax and numbers out of f64's range
    // (`1e999`), which other readers of the score file would choke on.
    serde_json::from_str::<serde_json::Value>(text)
        .map(|_| ())
        .map_err(|e| format!("details are not JSON with finite numbers: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_a_char_boundary_and_says_how_much_went() {
        assert_eq!(cut("short".into(), 10), "short");
        let cut_text = cut("ééééé".into(), 3);
        assert_eq!(cut_text, "é … [8 more bytes cut]");
        // The plugin's buffer is not kept alive by the short text.
        assert!(cut("x".repeat(1 << 20), 10).capacity() < 100);
    }

    #[test]
    fn preview_is_short_and_escaped() {
        let p = preview(&format!("\u{1b}[2J{}", "x".repeat(1 << 20)));
        assert!(p.starts_with("\\u{1b}[2J"), "{p}");
        assert!(p.len() < 100 && p.ends_with("(1048580 bytes)"), "{p}");
    }

    fn info(name: &str, metrics: &[&str]) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: "0.1.0".into(),
            description: "d".repeat(5000),
            metrics: metrics
                .iter()
                .map(|m| crate::runtime::MetricDescriptor::named(*m))
                .collect(),
            needs_judge: false,
        }
    }

    #[test]
    fn describe_is_bounded() {
        let limits = Limits::default();
        let ok = check_info(info("x", &["a", "b"]), &limits).unwrap();
        assert!(ok.description.len() < limits.max_description_bytes + 40);
        assert!(ok.description.ends_with("more bytes cut]"));
        for (bad, want) in [
            (info("", &[]), "empty name"),
            (info(&"n".repeat(1000), &[]), "name of 1000 bytes"),
            (info("a\u{1b}b", &[]), "control characters"),
            (info("x", &["a", "a"]), "`a` twice"),
            (info("x", &["a\nb"]), "control characters"),
        ] {
            let e = check_info(bad, &limits).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        for range in [
            [3.0, 1.0],
            [1.0, 1.0],
            [f64::NAN, 1.0],
            [0.0, f64::INFINITY],
        ] {
            let mut bad = info("x", &["a"]);
            bad.metrics[0].range = Some(range);
            let e = check_info(bad, &limits).unwrap_err();
            assert!(e.contains("metric `a` the range"), "{e}");
        }
        let mut ranged = info("x", &["a"]);
        ranged.metrics[0].range = Some([1.0, 10.0]);
        assert!(check_info(ranged, &limits).is_ok());
        let many: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(
            check_info(info("x", &many), &limits)
                .unwrap_err()
                .contains("300 metrics")
        );
    }

    /// Property: for arbitrary text (any code points, any length), `cut`
    /// and `preview` stay within their bounds, keep no control character
    /// (preview), and `check_details` answers without panicking.
    #[test]
    fn bounds_hold_for_arbitrary_text() {
        let mut state = 0x1e14_u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        for _ in 0..2_000 {
            let len = (next() % 300) as usize;
            let text: String = (0..len)
                .map(|_| match next() % 4 {
                    0 => char::from_u32((next() % 0x11_0000) as u32).unwrap_or('?'),
                    1 => char::from((next() % 0x80) as u8),
                    2 => ['[', ']', '{', '}', '"', '\\', ':', ','][(next() % 8) as usize],
                    _ => char::from(b'0' + (next() % 10) as u8),
                })
                .collect();
            let max = (next() % 64) as usize;
            let c = cut(text.clone(), max);
            assert!(c.len() <= max + 40 || c == text, "{c:?}");
            let p = preview(&text);
            assert!(p.chars().count() <= 64 * 6 + 24, "{p:?}");
            assert!(!p.chars().any(char::is_control), "{p:?}");
            let _ = check_details(&text, 4);
        }
    }

    #[test]
    fn details_depth_and_numbers_are_checked() {
        assert!(check_details(r#"{"a":[1,2,{"b":"[[[["}]}"#, 3).is_ok());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(
            check_details(&deep, 32)
                .unwrap_err()
                .contains("deeper than 32")
        );
        assert!(check_details(r#"{"x":1e999}"#, 32).is_err());
        assert!(check_details(r#"{"x":-1e999}"#, 32).is_err());
        assert!(check_details("{\"x\":", 32).is_err());
        assert!(check_details(r#""escaped \" [[[[ quote""#, 2).is_ok());
    }
}
