//! Numbers as the Markdown and HTML renderers write them.

use crate::table::{Cell, Delta, MetricKey};

/// A value of `key`: percent metrics as percent with one decimal, others
/// with three decimals.
pub(crate) fn value(key: &MetricKey, x: f64) -> String {
    if key.is_percent() {
        format!("{:.1}", x * 100.0)
    } else {
        format!("{:.3}", x)
    }
}

/// `mean [lo, hi]`, or `—` with no mean.
pub(crate) fn estimate(key: &MetricKey, cell: &Cell) -> String {
    match (cell.mean, cell.ci95) {
        (Some(m), Some((lo, hi))) => {
            format!("{} [{}, {}]", value(key, m), value(key, lo), value(key, hi))
        }
        (Some(m), None) => value(key, m),
        _ => "—".to_string(),
    }
}

/// `(n=4)` or `(n=4, 1 failed)`.
pub(crate) fn counts(cell: &Cell) -> String {
    if cell.failures == 0 {
        format!("(n={})", cell.n)
    } else {
        format!("(n={}, {} failed)", cell.n, cell.failures)
    }
}

/// `+0.250`, or `+25.0 pts` for percent metrics; `—` with no delta.
pub(crate) fn delta(key: &MetricKey, d: &Delta) -> String {
    match d.delta.map(tidy) {
        Some(x) if key.is_percent() => format!("{:+.1} pts", x * 100.0),
        Some(x) => format!("{:+.3}", x),
        None => "—".to_string(),
    }
}

/// `+50.0%`, or `n/a` when there is no percent (baseline mean 0 or missing).
pub(crate) fn percent(d: &Delta) -> String {
    match d.percent.map(tidy) {
        Some(p) => format!("{:+.1}%", p),
        None => "n/a".to_string(),
    }
}

/// -0.0 reads as a loss; show it as 0.
fn tidy(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_deltas_read_well() {
        let acc = MetricKey::new("gsm8k", "accuracy");
        let t = MetricKey::new("truthfulqa", "truthfulness");
        let cell = Cell {
            mean: Some(0.625),
            ci95: Some((0.25, 1.0)),
            n: 8,
            failures: 1,
        };
        assert_eq!(estimate(&acc, &cell), "62.5 [25.0, 100.0]");
        assert_eq!(estimate(&t, &cell), "0.625 [0.250, 1.000]");
        assert_eq!(counts(&cell), "(n=8, 1 failed)");
        let empty = Cell {
            mean: None,
            ci95: None,
            n: 0,
            failures: 0,
        };
        assert_eq!(
            (estimate(&t, &empty), counts(&empty)),
            ("—".into(), "(n=0)".into())
        );
        let d = Delta::between(Some(0.75), Some(0.5));
        assert_eq!(
            (delta(&acc, &d), percent(&d)),
            ("+25.0 pts".into(), "+50.0%".into())
        );
        let d = Delta::between(Some(1.0), Some(0.0));
        assert_eq!(
            (delta(&t, &d), percent(&d)),
            ("+1.000".into(), "n/a".into())
        );
        let d = Delta::between(Some(-0.0), Some(0.0));
        assert_eq!(delta(&t, &d), "+0.000");
    }
}
