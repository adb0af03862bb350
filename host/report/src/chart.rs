//! The forest plot: every compared model's paired difference from the
//! baseline on every metric, with its 95% interval, as one SVG drawn with
//! plotters' SVG backend.
//!
//! Metrics have different units (a 0/1 accuracy, a 1–10 rubric score, a
//! signed heuristic score), so one shared axis would flatten most of them
//! and a percent axis is meaningless for signed metrics. Each metric
//! therefore gets its own symmetric scale in its own unit, written at its
//! group's ends, with zero on one vertical line down the whole chart: a
//! row is read as "which side of zero, and does the interval cross it".
//! Points are coloured by verdict; a thin orange bar behind a row shows the
//! range the mean difference could take if failed items were counted at
//! the ends of the metric's range. Text size is only estimated (there are
//! no fonts here); the browser lays the text out when it shows the file.

use crate::format;
use crate::table::{Paired, Report, Verdict};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const WIDTH: u32 = 960;
const ROW: i32 = 30;
const HEAD: i32 = 22;
const PLOT: i32 = 300;
const RIGHT: i32 = 250;
const LONGEST_LABEL: usize = 44;

const GREEN: RGBColor = RGBColor(30, 130, 60);
const RED: RGBColor = RGBColor(190, 40, 40);
const GREY: RGBColor = RGBColor(110, 110, 110);
const ORANGE: RGBColor = RGBColor(240, 170, 80);
const RULE: RGBColor = RGBColor(215, 215, 215);

/// The colour of a verdict.
fn colour(verdict: Verdict) -> RGBColor {
    match verdict {
        Verdict::Better => GREEN,
        Verdict::Worse => RED,
        _ => GREY,
    }
}

/// `text` cut to at most [`LONGEST_LABEL`] characters.
fn short(text: &str) -> String {
    if text.chars().count() <= LONGEST_LABEL {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(LONGEST_LABEL - 1).collect();
        s.push('…');
        s
    }
}

/// Half the width of a metric's scale: the largest distance from zero of
/// any of its rows' means, interval ends and failure bounds, padded; 1 when
/// all are 0.
fn half_range<'a>(rows: impl Iterator<Item = &'a Paired>) -> f64 {
    let far = rows
        .flat_map(|p| {
            let mut v: Vec<f64> = p.mean.into_iter().collect();
            if let Some((lo, hi)) = p.ci95 {
                v.extend([lo, hi]);
            }
            if let Some(b) = p.bounds {
                v.extend([b.worst, b.best]);
            }
            v
        })
        .fold(0.0f64, |m, x| m.max(x.abs()));
    if far > 0.0 { far * 1.1 } else { 1.0 }
}

fn failed<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The forest plot; `None` when nothing is compared.
pub(crate) fn forest_plot(report: &Report) -> Option<Result<String, String>> {
    let compared: Vec<&str> = report.compared().collect();
    if compared.is_empty() || report.metrics().is_empty() {
        return None;
    }
    Some(draw(report, &compared))
}

fn draw(report: &Report, compared: &[&str]) -> Result<String, String> {
    let metrics = report.metrics();
    let left = {
        let longest = metrics
            .iter()
            .map(|k| short(&report.label(k)).chars().count())
            .chain(compared.iter().map(|m| short(m).chars().count() + 2))
            .max()
            .unwrap_or(0);
        (longest as i32 * 8 + 20).clamp(120, 380)
    };
    let top = 44;
    let height = top + metrics.len() as i32 * (HEAD + ROW * compared.len() as i32) + 40;
    let width = (left + PLOT + RIGHT).max(WIDTH as i32);
    let zero = left + PLOT / 2;

    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let plain = |size: u32, h: HPos| {
            TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(h, VPos::Center))
        };
        root.draw(&Text::new(
            format!(
                "Paired difference from {} (95% CI), each metric in its own unit",
                short(report.baseline())
            ),
            (12, 18),
            plain(18, HPos::Left),
        ))
        .map_err(failed)?;

        let mut y = top;
        for key in metrics {
            let unit = report.descriptor(key).unit;
            let rows: Vec<(&str, Option<&Paired>)> = compared
                .iter()
                .map(|m| (*m, report.paired(m, key)))
                .collect();
            let r = half_range(rows.iter().filter_map(|(_, p)| *p));
            let x = |v: f64| zero + ((v / r) * f64::from(PLOT / 2)).round() as i32;
            // The metric's heading, its scale's ends, a rule above it.
            root.draw(&PathElement::new(vec![(8, y), (width - 8, y)], RULE))
                .map_err(failed)?;
            let mid = y + HEAD / 2;
            root.draw(&Text::new(
                short(&report.label(key)),
                (12, mid),
                plain(15, HPos::Left),
            ))
            .map_err(failed)?;
            for (v, h) in [(-r, HPos::Left), (r, HPos::Right)] {
                root.draw(&Text::new(
                    format::difference(unit, v),
                    (x(v), mid),
                    plain(12, h),
                ))
                .map_err(failed)?;
            }
            y += HEAD;
            for (model, paired) in rows {
                let mid = y + ROW / 2;
                root.draw(&Text::new(
                    short(model),
                    (left - 10, mid),
                    plain(14, HPos::Right),
                ))
                .map_err(failed)?;
                let Some(p) = paired.filter(|p| p.mean.is_some()) else {
                    root.draw(&Text::new(
                        "no items scored by both",
                        (zero + 8, mid),
                        plain(13, HPos::Left),
                    ))
                    .map_err(failed)?;
                    y += ROW;
                    continue;
                };
                let mean = p.mean.unwrap_or(0.0);
                let c = colour(p.verdict);
                if let Some(b) = p.bounds {
                    let (a, z) = (b.worst.min(b.best), b.worst.max(b.best));
                    root.draw(&Rectangle::new(
                        [(x(a), mid - 3), (x(z), mid + 3)],
                        ORANGE.mix(0.6).filled(),
                    ))
                    .map_err(failed)?;
                }
                if let Some((lo, hi)) = p.ci95 {
                    let line = c.stroke_width(2);
                    root.draw(&PathElement::new(vec![(x(lo), mid), (x(hi), mid)], line))
                        .map_err(failed)?;
                    for end in [lo, hi] {
                        root.draw(&PathElement::new(
                            vec![(x(end), mid - 5), (x(end), mid + 5)],
                            line,
                        ))
                        .map_err(failed)?;
                    }
                }
                root.draw(&Circle::new((x(mean), mid), 5, c.filled()))
                    .map_err(failed)?;
                root.draw(&Text::new(
                    format!(
                        "{}  {}",
                        format::paired_difference(unit, p),
                        p.verdict.text()
                    ),
                    (left + PLOT + 12, mid),
                    plain(13, HPos::Left),
                ))
                .map_err(failed)?;
                y += ROW;
            }
        }
        // Zero, down the whole chart.
        root.draw(&PathElement::new(
            vec![(zero, top), (zero, y)],
            BLACK.stroke_width(1),
        ))
        .map_err(failed)?;
        root.draw(&Text::new("0", (zero, y + 12), plain(13, HPos::Center)))
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn one_row_per_metric_and_model_with_verdict_text() {
        let report = fixture::report();
        let svg = forest_plot(&report).unwrap().unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Paired difference from base"), "{svg}");
        // Every metric's label, and the compared model once per metric.
        for key in report.metrics() {
            assert!(svg.contains(&report.label(key)), "{key}");
        }
        assert_eq!(
            svg.matches(">\nlem\n<").count() + svg.matches(">lem<").count(),
            report.metrics().len(),
            "{svg}"
        );
        assert!(svg.contains("no detectable difference"), "{svg}");
        // lem_only/x has no baseline scores.
        assert!(svg.contains("no items scored by both"), "{svg}");
        // Differences are in units: the percent metric in points, the
        // others in their own values; no number is a percent.
        assert!(svg.contains("+25.0 pts [+0.0, +75.0]"), "{svg}");
        assert!(svg.contains("+3.000 [+3.000, +3.000]"), "{svg}");
        assert!(!has_a_percent_number(&svg.replace("(95% CI)", "")), "{svg}");
    }

    /// A digit followed by `%`: a number written as a percent.
    pub(crate) fn has_a_percent_number(text: &str) -> bool {
        text.as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_digit() && w[1] == b'%')
    }

    #[test]
    fn long_labels_are_cut_and_scales_are_symmetric() {
        let s = short(&"x".repeat(100));
        assert_eq!(s.chars().count(), LONGEST_LABEL);
        assert!(s.ends_with('…'));
    }
}
