//! Numbers as the Markdown and HTML renderers write them.

use crate::table::{Cell, Delta, Paired, Unit};

/// A value: percent metrics as percent with one decimal, others with three
/// decimals.
pub(crate) fn value(unit: Unit, x: f64) -> String {
    match unit {
        Unit::Percent => format!("{:.1}", tidy(x * 100.0)),
        Unit::Number => format!("{:.3}", tidy(x)),
    }
}

/// A difference with its sign: `+25.0 pts` for percent metrics, `+0.250`
/// for others.
pub(crate) fn difference(unit: Unit, x: f64) -> String {
    match unit {
        Unit::Percent => format!("{:+.1} pts", tidy(x * 100.0)),
        Unit::Number => format!("{:+.3}", tidy(x)),
    }
}

/// `[lo, hi]` in the metric's unit.
pub(crate) fn interval(unit: Unit, (lo, hi): (f64, f64)) -> String {
    format!("[{}, {}]", value(unit, lo), value(unit, hi))
}

/// `mean [lo, hi]`, or `—` with no mean.
pub(crate) fn estimate(unit: Unit, cell: &Cell) -> String {
    match (cell.mean, cell.ci95) {
        (Some(m), Some(ci)) => format!("{} {}", value(unit, m), interval(unit, ci)),
        (Some(m), None) => value(unit, m),
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

/// `if failed: 0.400–0.700`: the mean with failures at the range's ends.
pub(crate) fn cell_bounds(unit: Unit, cell: &Cell) -> Option<String> {
    cell.bounds
        .map(|(lo, hi)| format!("if failed: {}–{}", value(unit, lo), value(unit, hi)))
}

/// The mean difference, `+25.0 pts` or `+0.250`; `—` with no delta.
pub(crate) fn delta(unit: Unit, d: &Delta) -> String {
    match d.delta {
        Some(x) => difference(unit, x),
        None => "—".to_string(),
    }
}

/// `+50.0%`, or `None` where a percent means nothing (a signed metric, a
/// baseline mean of 0 or below, or none).
pub(crate) fn percent(d: &Delta) -> Option<String> {
    d.percent.map(|p| format!("{:+.1}%", tidy(p)))
}

/// The mean difference and its percent, where there is one:
/// `+25.0 pts (+50.0%)`, `+5.000`.
pub(crate) fn delta_with_percent(unit: Unit, d: &Delta) -> String {
    match percent(d) {
        Some(p) => format!("{} ({p})", delta(unit, d)),
        None => delta(unit, d),
    }
}

/// A p-value: three significant places, `<0.001` below that.
pub(crate) fn p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// `+25.0 pts [+5.0, +45.0]`: the paired mean difference and its interval.
pub(crate) fn paired_difference(unit: Unit, paired: &Paired) -> String {
    match (paired.mean, paired.ci95) {
        (Some(m), Some((lo, hi))) => format!(
            "{} [{}, {}]",
            difference(unit, m),
            signed(unit, lo),
            signed(unit, hi)
        ),
        (Some(m), None) => difference(unit, m),
        _ => "—".to_string(),
    }
}

/// A signed number without a unit suffix.
fn signed(unit: Unit, x: f64) -> String {
    match unit {
        Unit::Percent => format!("{:+.1}", tidy(x * 100.0)),
        Unit::Number => format!("{:+.3}", tidy(x)),
    }
}

/// `worst … best` of the paired difference with failures at the ends, and
/// whether the verdict could change there.
pub(crate) fn paired_bounds(unit: Unit, paired: &Paired) -> String {
    match paired.bounds {
        Some(b) => format!(
            "{} to {}{}",
            difference(unit, b.worst),
            difference(unit, b.best),
            if b.verdict_could_change {
                " (verdict could change)"
            } else {
                ""
            }
        ),
        None => String::new(),
    }
}

/// The equivalence verdict: `within ±2.0 pts (p=0.010)` or
/// `not shown within ±2.0 pts (p=0.300)`; empty without a margin.
pub(crate) fn equivalence(unit: Unit, paired: &Paired) -> String {
    match paired.equivalence {
        Some(e) => {
            let margin = match unit {
                Unit::Percent => format!("±{:.1} pts", e.margin * 100.0),
                Unit::Number => format!("±{:.3}", e.margin),
            };
            let word = if e.equivalent {
                "within"
            } else {
                "not shown within"
            };
            format!("{word} {margin} (p={})", p(e.p))
        }
        None => String::new(),
    }
}

/// The smallest detectable difference, as an unsigned difference.
pub(crate) fn mdd(unit: Unit, paired: &Paired) -> String {
    match paired.mdd {
        Some(x) => match unit {
            Unit::Percent => format!("{:.1} pts", x * 100.0),
            Unit::Number => format!("{x:.3}"),
        },
        None => "—".to_string(),
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
        let cell = Cell {
            mean: Some(0.625),
            ci95: Some((0.25, 1.0)),
            n: 8,
            failures: 1,
            bounds: Some((0.5, 0.75)),
        };
        assert_eq!(estimate(Unit::Percent, &cell), "62.5 [25.0, 100.0]");
        assert_eq!(estimate(Unit::Number, &cell), "0.625 [0.250, 1.000]");
        assert_eq!(counts(&cell), "(n=8, 1 failed)");
        assert_eq!(
            cell_bounds(Unit::Number, &cell).as_deref(),
            Some("if failed: 0.500–0.750")
        );
        let empty = Cell {
            mean: None,
            ci95: None,
            n: 0,
            failures: 0,
            bounds: None,
        };
        assert_eq!(
            (estimate(Unit::Number, &empty), counts(&empty)),
            ("—".into(), "(n=0)".into())
        );
        let d = Delta::between(Some(0.75), Some(0.5), false);
        assert_eq!(delta_with_percent(Unit::Percent, &d), "+25.0 pts (+50.0%)");
        let d = Delta::between(Some(1.0), Some(0.0), false);
        assert_eq!(delta_with_percent(Unit::Number, &d), "+1.000");
        let d = Delta::between(Some(-0.0), Some(0.0), false);
        assert_eq!(delta(Unit::Number, &d), "+0.000");
        assert_eq!((p(0.0312), p(0.0004)), ("0.031".into(), "<0.001".into()));
    }

    #[test]
    fn a_signed_metric_shows_its_difference_and_no_percent() {
        // lek_score from −2 to +3: +5, never "−250%".
        let d = Delta::between(Some(3.0), Some(-2.0), true);
        assert_eq!(d.percent, None);
        assert_eq!(delta_with_percent(Unit::Number, &d), "+5.000");
        // Even a positive baseline gets no percent when the metric can be negative.
        let d = Delta::between(Some(3.0), Some(2.0), true);
        assert_eq!(delta_with_percent(Unit::Number, &d), "+1.000");
        // A ratio scale with a positive baseline does.
        let d = Delta::between(Some(3.0), Some(2.0), false);
        assert_eq!(delta_with_percent(Unit::Number, &d), "+1.000 (+50.0%)");
    }
}
