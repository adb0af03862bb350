//! Charts as SVG text, drawn with plotters' SVG backend.
//!
//! Bars are horizontal, one per model (or per model and metric), so that
//! long model and metric names sit on the left and never collide. Every
//! model keeps one colour in every chart: the baseline grey, the others from
//! a fixed palette in input order. Text size is only estimated (there are no
//! fonts here); the browser lays the text out when it shows the file.

use crate::format;
use crate::table::{MetricKey, Report};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const WIDTH: u32 = 720;
const BAND: u32 = 34;
const GREY: RGBColor = RGBColor(140, 140, 140);
const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];
const LONGEST_LABEL: usize = 40;

/// The colour of `model` in every chart.
fn colour(report: &Report, model: &str) -> RGBColor {
    if model == report.baseline() {
        return GREY;
    }
    let i = report.compared().position(|m| m == model).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
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

/// Pixels for the label column: a rough 8 px a character.
fn label_width<'a>(labels: impl Iterator<Item = &'a str>) -> u32 {
    let longest = labels.map(|l| short(l).chars().count()).max().unwrap_or(0);
    (longest as u32 * 8 + 16).clamp(60, 300)
}

/// A value range that holds `values` and 0, padded so bars, whiskers and
/// their labels stay inside the frame.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let lo = if lo < 0.0 { lo - 0.06 * span } else { lo };
    // Room on the right for the value written after each bar.
    (lo, hi + 0.14 * span)
}

fn failed<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// One metric: a bar per model at its mean, with the 95% interval as a
/// whisker. Models without a mean get "no scores" in place of a bar.
pub(crate) fn metric_chart(report: &Report, key: &MetricKey) -> Result<String, String> {
    let scale = if key.is_percent() { 100.0 } else { 1.0 };
    // (model, mean, interval), scaled for display.
    type Row<'a> = (&'a str, Option<f64>, Option<(f64, f64)>);
    let rows: Vec<Row> = report
        .models()
        .iter()
        .map(|m| {
            let cell = report.cell(m, key);
            (
                m.as_str(),
                cell.and_then(|c| c.mean).map(|v| v * scale),
                cell.and_then(|c| c.ci95)
                    .map(|(lo, hi)| (lo * scale, hi * scale)),
            )
        })
        .collect();
    let (x0, x1) = range(rows.iter().flat_map(|(_, mean, ci)| {
        mean.iter()
            .copied()
            .chain(ci.iter().flat_map(|(lo, hi)| [*lo, *hi]))
    }));
    let n = rows.len();
    let height = 90 + BAND * n as u32;
    let left = label_width(rows.iter().map(|r| r.0));
    let axis = if key.is_percent() {
        format!("{} (mean, 95% CI)", key.label())
    } else {
        format!("{} mean, 95% CI", key.label())
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(short(&key.label()), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(left)
            .build_cartesian_2d(x0..x1, 0.0..n as f64)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .y_label_formatter(&|_| String::new())
            .x_max_light_lines(1)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .x_desc(axis)
            .draw()
            .map_err(failed)?;
        let label = TextStyle::from(("sans-serif", 16).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        let note =
            TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, (model, mean, ci)) in rows.iter().enumerate() {
            let top = (n - i) as f64;
            let mid = top - 0.5;
            let (lx, ly) = chart.backend_coord(&(x0, mid));
            root.draw(&Text::new(short(model), (lx - 8, ly), label.clone()))
                .map_err(failed)?;
            let Some(mean) = mean else {
                let (px, py) = chart.backend_coord(&(0.0f64.max(x0), mid));
                root.draw(&Text::new("no scores", (px + 6, py), note.clone()))
                    .map_err(failed)?;
                continue;
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, top - 0.2), (*mean, top - 0.8)],
                    colour(report, model).filled(),
                )))
                .map_err(failed)?;
            if let Some((lo, hi)) = ci {
                let whisker = BLACK.stroke_width(2);
                chart
                    .draw_series([
                        PathElement::new(vec![(*lo, mid), (*hi, mid)], whisker),
                        PathElement::new(vec![(*lo, mid - 0.15), (*lo, mid + 0.15)], whisker),
                        PathElement::new(vec![(*hi, mid - 0.15), (*hi, mid + 0.15)], whisker),
                    ])
                    .map_err(failed)?;
                let (px, py) = chart.backend_coord(&(*hi, mid));
                let text = format::value(key, *mean / scale);
                root.draw(&Text::new(text, (px + 6, py), note.clone()))
                    .map_err(failed)?;
            }
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Every compared model against the baseline: a bar per metric and model at
/// the percent change of the mean. `None` when there is nothing to compare.
pub(crate) fn delta_chart(report: &Report) -> Option<Result<String, String>> {
    let compared: Vec<&str> = report.compared().collect();
    if compared.is_empty() || report.metrics().is_empty() {
        return None;
    }
    Some(draw_delta_chart(report, &compared))
}

fn draw_delta_chart(report: &Report, compared: &[&str]) -> Result<String, String> {
    let metrics = report.metrics();
    let per = compared.len();
    let bands = metrics.len() * per;
    let percents: Vec<Vec<Option<f64>>> = metrics
        .iter()
        .map(|k| {
            compared
                .iter()
                .map(|m| report.delta(m, k).and_then(|d| d.percent))
                .collect()
        })
        .collect();
    let (x0, x1) = range(percents.iter().flatten().flatten().copied());
    let (x0, x1) = (x0.min(-x1 * 0.25), x1.max(-x0 * 0.25));
    let legend = 16 + 22 * per as u32;
    let height = 100 + BAND * bands as u32 + legend;
    let labels: Vec<String> = metrics.iter().map(|k| k.label()).collect();
    let left = label_width(labels.iter().map(String::as_str));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let (plot, key_area) = root.split_vertically(height - legend);
        let caption = format!("Change against {}", short(report.baseline()));
        let mut chart = ChartBuilder::on(&plot)
            .caption(caption, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(left)
            .build_cartesian_2d(x0..x1, 0.0..bands as f64)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .y_label_formatter(&|_| String::new())
            .x_max_light_lines(1)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .x_desc("% of the baseline's mean")
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (0.0, bands as f64)],
                BLACK.stroke_width(1),
            )))
            .map_err(failed)?;
        let label = TextStyle::from(("sans-serif", 16).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        let note =
            TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (g, (label_text, row)) in labels.iter().zip(&percents).enumerate() {
            let group_top = (bands - g * per) as f64;
            let (lx, ly) = chart.backend_coord(&(x0, group_top - per as f64 / 2.0));
            root.draw(&Text::new(short(label_text), (lx - 8, ly), label.clone()))
                .map_err(failed)?;
            if g > 0 {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x0, group_top), (x1, group_top)],
                        RGBColor(220, 220, 220).stroke_width(1),
                    )))
                    .map_err(failed)?;
            }
            for (j, percent) in row.iter().enumerate() {
                let top = group_top - j as f64;
                let (px, py) = chart.backend_coord(&(percent.unwrap_or(0.0).max(0.0), top - 0.5));
                match percent {
                    Some(p) => {
                        chart
                            .draw_series(std::iter::once(Rectangle::new(
                                [(0.0, top - 0.15), (*p, top - 0.85)],
                                colour(report, compared[j]).filled(),
                            )))
                            .map_err(failed)?;
                        root.draw(&Text::new(format!("{p:+.1}%"), (px + 6, py), note.clone()))
                            .map_err(failed)?;
                    }
                    None => {
                        root.draw(&Text::new("n/a", (px + 6, py), note.clone()))
                            .map_err(failed)?;
                    }
                }
            }
        }
        // The legend: one swatch per compared model, under the plot.
        for (j, model) in compared.iter().enumerate() {
            let y = 8 + 22 * j as i32;
            let x = left as i32 + 12;
            key_area
                .draw(&Rectangle::new(
                    [(x, y - 6), (x + 14, y + 6)],
                    colour(report, model).filled(),
                ))
                .map_err(failed)?;
            let text = TextStyle::from(("sans-serif", 16).into_font())
                .pos(Pos::new(HPos::Left, VPos::Center));
            key_area
                .draw(&Text::new(short(model), (x + 20, y), text))
                .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn metric_charts_are_svg_with_every_model() {
        let report = fixture::report();
        for key in report.metrics() {
            let svg = metric_chart(&report, key).unwrap();
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("\nlem\n") && svg.contains("\nbase\n"), "{svg}");
        }
        let svg = metric_chart(&report, &MetricKey::new("lem_only", "x")).unwrap();
        assert!(svg.contains("no scores"), "{svg}");
    }

    #[test]
    fn delta_chart_names_the_baseline_and_marks_missing_percents() {
        let report = fixture::report();
        let svg = delta_chart(&report).unwrap().unwrap();
        assert!(svg.contains("Change against base"), "{svg}");
        assert!(svg.contains("+50.0%"), "{svg}");
        assert!(svg.contains("n/a"), "{svg}");
    }

    #[test]
    fn long_labels_are_cut() {
        let s = short(&"x".repeat(100));
        assert_eq!(s.chars().count(), LONGEST_LABEL);
        assert!(s.ends_with('…'));
        let (lo, hi) = range([0.5, 0.25].into_iter());
        assert_eq!(lo, 0.0);
        assert!((hi - 0.57).abs() < 1e-12);
        let (lo, hi) = range([0.0].into_iter());
        assert!(lo == 0.0 && hi > 0.0);
    }
}
