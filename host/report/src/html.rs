//! The report as one self-contained HTML file: inline CSS, inline SVG
//! charts, no scripts and no reference to anything outside the file, so it
//! can be mailed or archived as it is and opened anywhere.
//!
//! The tables are `<table id="main">` (model × metric), `<table
//! id="differential">` (against the baseline) and `<table id="domains">`
//! (model and domain × metric; one explanatory row when nothing has a
//! domain). Every chart is an `<svg class="chart">` with an `id` starting
//! with `chart-`: `chart-delta` against the baseline, then one bar chart
//! per metric with its 95% interval as whiskers.

use crate::chart;
use crate::format;
use crate::table::{Cell, MetricKey, Report};
use std::fmt::Write;

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
p.method { color: #444; max-width: 50rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; white-space: nowrap; }
th[scope=row], thead th:first-child { text-align: left; }
thead th { background: #f2f2f2; }
.baseline th[scope=row]::after { content: ' (baseline)'; color: #777; font-weight: normal; }
.ci, .n { color: #666; }
td.up { background: #eef7ee; } td.down { background: #fbeeee; }
figure { margin: 1.5rem 0; }
svg.chart { max-width: 100%; height: auto; }
.chart-error { color: #a00; }
";

/// The report as one HTML document.
pub fn to_html(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>lem report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&report.models().join(", "))
    );
    let _ = writeln!(out, "<h1>lem report</h1>");
    let _ = writeln!(
        out,
        "<p class=\"method\">Baseline: <strong>{}</strong>. Each cell is the mean over scored \
         items, its 95% percentile-bootstrap interval ({} resamples, seed {:#x}), the number of \
         scored items and the failures, which are left out of the mean. GSM8K % is accuracy \
         × 100.</p>",
        escape(report.baseline()),
        report.resamples(),
        report.seed()
    );

    main_table(&mut out, report);
    differential_table(&mut out, report);
    domains_table(&mut out, report);

    let _ = writeln!(out, "<h2>Charts</h2>\n<section id=\"charts\">");
    if let Some(svg) = chart::delta_chart(report) {
        figure(&mut out, "chart-delta", "Change against the baseline", svg);
    }
    for (i, key) in report.metrics().iter().enumerate() {
        let id = format!("chart-{}-{}", i + 1, slug(&key.id()));
        figure(
            &mut out,
            &id,
            &key.label(),
            chart::metric_chart(report, key),
        );
    }
    let _ = writeln!(out, "</section>\n</body>\n</html>");
    out
}

fn main_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<h2>Results</h2>\n<div class=\"scroll\">\n<table id=\"main\">"
    );
    head(out, &["Model"], report.metrics());
    let _ = writeln!(out, "<tbody>");
    for model in report.models() {
        let class = if model == report.baseline() {
            " class=\"baseline\""
        } else {
            ""
        };
        let _ = write!(out, "<tr{class}><th scope=\"row\">{}</th>", escape(model));
        for key in report.metrics() {
            cell(out, key, report.cell(model, key));
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</div>");
}

fn differential_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<h2>Against the baseline ({})</h2>\n<p>Difference of each model's mean from the \
         baseline's (GSM8K in percentage points), and as a percent of the baseline's mean \
         (n/a where that is 0 or missing).</p>\n<div class=\"scroll\">\n<table id=\"differential\">",
        escape(report.baseline())
    );
    head(out, &["Model"], report.metrics());
    let _ = writeln!(out, "<tbody>");
    let mut any = false;
    for model in report.compared() {
        any = true;
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", escape(model));
        for key in report.metrics() {
            match report.delta(model, key) {
                Some(d) => {
                    let class = match d.delta {
                        Some(x) if x > 0.0 => " class=\"up\"",
                        Some(x) if x < 0.0 => " class=\"down\"",
                        _ => "",
                    };
                    let _ = write!(
                        out,
                        "<td{class}>{} <span class=\"ci\">({})</span></td>",
                        escape(&format::delta(key, &d)),
                        escape(&format::percent(&d))
                    );
                }
                None => {
                    let _ = write!(out, "<td></td>");
                }
            }
        }
        let _ = writeln!(out, "</tr>");
    }
    if !any {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"{}\">Only the baseline was given; nothing to compare.</td></tr>",
            report.metrics().len() + 1
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</div>");
}

fn domains_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<h2>By domain</h2>\n<div class=\"scroll\">\n<table id=\"domains\">"
    );
    let keys = report.domain_metrics();
    head(out, &["Model", "Domain"], keys);
    let _ = writeln!(out, "<tbody>");
    let mut any = false;
    for model in report.models() {
        for domain in report.domains() {
            if keys
                .iter()
                .all(|k| report.domain_cell(model, domain, k).is_none())
            {
                continue;
            }
            any = true;
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><th scope=\"row\">{}</th>",
                escape(model),
                escape(domain)
            );
            for key in keys {
                cell(out, key, report.domain_cell(model, domain, key));
            }
            let _ = writeln!(out, "</tr>");
        }
    }
    if !any {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"{}\">No item has a domain.</td></tr>",
            keys.len() + 2
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</div>");
}

fn head(out: &mut String, first: &[&str], keys: &[MetricKey]) {
    let _ = write!(out, "<thead><tr>");
    for name in first {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(name));
    }
    for key in keys {
        let _ = write!(
            out,
            "<th scope=\"col\" title=\"{}\">{}</th>",
            escape(&key.id()),
            escape(&key.label())
        );
    }
    let _ = writeln!(out, "</tr></thead>");
}

fn cell(out: &mut String, key: &MetricKey, cell: Option<&Cell>) {
    let Some(c) = cell else {
        let _ = write!(out, "<td></td>");
        return;
    };
    let ci = c
        .ci95
        .map(|(lo, hi)| {
            format!(
                " <span class=\"ci\">[{}, {}]</span>",
                format::value(key, lo),
                format::value(key, hi)
            )
        })
        .unwrap_or_default();
    let mean = c
        .mean
        .map(|m| format::value(key, m))
        .unwrap_or_else(|| "—".into());
    let _ = write!(
        out,
        "<td><span class=\"mean\">{mean}</span>{ci} <span class=\"n\">{}</span></td>",
        escape(&format::counts(c))
    );
}

/// One chart in a figure, its SVG marked `class="chart"` with `id`; a
/// chart that could not be drawn leaves a note instead.
fn figure(out: &mut String, id: &str, title: &str, svg: Result<String, String>) {
    let _ = writeln!(out, "<figure>");
    match svg {
        Ok(svg) => match svg.strip_prefix("<svg ") {
            Some(rest) => {
                let _ = write!(
                    out,
                    "<svg class=\"chart\" id=\"{}\" role=\"img\" aria-label=\"{}\" {rest}",
                    escape(id),
                    escape(title)
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<p class=\"chart-error\">Chart {} not drawn: unexpected SVG.</p>",
                    escape(title)
                );
            }
        },
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"chart-error\">Chart {} not drawn: {}</p>",
                escape(title),
                escape(&e)
            );
        }
    }
    let _ = writeln!(out, "</figure>");
}

/// Letters and digits kept, runs of anything else as one `-`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Text safe in HTML content and in quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use crate::input::Observation;
    use crate::table::ReportOptions;
    use std::collections::BTreeMap;

    #[test]
    fn has_the_tables_and_charts() {
        let html = to_html(&fixture::report());
        for id in ["main", "differential", "domains"] {
            assert_eq!(
                html.matches(&format!("<table id=\"{id}\">")).count(),
                1,
                "{id}"
            );
        }
        // The delta chart and one per metric (6 metrics).
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 7);
        assert_eq!(html.matches("<svg").count(), 7);
        assert!(html.contains("id=\"chart-delta\""));
        assert!(html.contains("id=\"chart-1-gsm8k-correct\""));
        assert!(!html.contains("class=\"chart-error\""), "{html}");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn references_nothing_outside_the_file() {
        let html = to_html(&fixture::report());
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"));
        assert!(!lower.contains("src="));
        assert!(!lower.contains("href="));
        assert!(!lower.contains("@import"));
        assert!(!lower.contains("url("));
        let without_xmlns = lower.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_xmlns.contains("http://"));
        assert!(!without_xmlns.contains("https://"));
        assert!(
            !without_xmlns.contains("//"),
            "no protocol-relative reference either"
        );
    }

    #[test]
    fn escapes_every_text() {
        let evil = "<script>alert('x')</script>";
        let obs = vec![
            Observation {
                benchmark: "b&b".into(),
                model: "base".into(),
                item_id: "1".into(),
                domain: Some("\"quoted\"".into()),
                metrics: BTreeMap::from([("m<1>".into(), 1.0)]),
                failed: false,
                scorer: None,
            },
            Observation {
                benchmark: "b&b".into(),
                model: evil.into(),
                item_id: "1".into(),
                domain: Some("\"quoted\"".into()),
                metrics: BTreeMap::from([("m<1>".into(), 0.5)]),
                failed: false,
                scorer: None,
            },
        ];
        let report = crate::Report::build(&obs, &ReportOptions::default()).unwrap();
        let html = to_html(&report);
        assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("b&amp;b/m&lt;1&gt;"));
        assert!(html.contains("&quot;quoted&quot;"));
        assert!(!html.contains("<1>"));
    }

    #[test]
    fn a_report_without_domains_or_others_still_has_three_tables() {
        let obs = vec![Observation {
            benchmark: "b".into(),
            model: "only".into(),
            item_id: "1".into(),
            domain: None,
            metrics: BTreeMap::from([("m".into(), 1.0)]),
            failed: false,
            scorer: None,
        }];
        let report = crate::Report::build(&obs, &ReportOptions::default()).unwrap();
        let html = to_html(&report);
        for id in ["main", "differential", "domains"] {
            assert!(html.contains(&format!("<table id=\"{id}\">")), "{id}");
        }
        assert!(html.contains("No item has a domain."));
        assert!(html.contains("nothing to compare"));
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 1);
    }

    #[test]
    fn slugs_are_plain() {
        assert_eq!(slug("do_not_answer/Safety!"), "do-not-answer-safety");
    }
}
