//! The report as one self-contained HTML file: inline CSS, one inline SVG
//! chart, one small inline script and no reference to anything outside the
//! file, so it can be mailed or archived as it is and opened anywhere.
//!
//! In order: `<section id="summary">` with `<table id="main">` (one row per
//! model, the paper's layout); `<section id="paired">` with `<table
//! id="differential">` (one row per compared model and metric: paired
//! difference, test, Holm-adjusted verdict in colour, flips linking to their
//! items, detectable difference, failure bounds, equivalence);
//! `<section id="forest">` with the forest plot `<svg class="chart"
//! id="chart-forest">`; `<section id="domains">` with `<table
//! id="domains">`; and `<section id="items">`, the item browser: one
//! `<details class="item">` per item with each model's prompt as sent,
//! response, scores, judge answers and errors, filtered by benchmark,
//! metric, flips and failures. The script only applies those filters; it
//! also reads them from the query string (`?benchmark=B&metric=B/M&flips=1
//! &failures=1`, `&open=1` to expand the items shown), and `?show=SECTION`
//! shows that section alone, so a link or a screenshot can open the report
//! already filtered. Without scripts everything is shown.

use crate::chart;
use crate::format;
use crate::table::{Cell, MetricKey, Report, Unit, Verdict};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

pub(crate) const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 100rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
p.method { color: #444; max-width: 60rem; font-size: 0.9rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; white-space: nowrap; }
th[scope=row], thead th:first-child { text-align: left; }
thead th { background: #f2f2f2; }
.baseline th[scope=row]::after { content: ' (baseline)'; color: #777; font-weight: normal; }
.ci, .n, .bounds { color: #666; }
.bounds { display: block; font-size: 0.8rem; }
tr.v-better td.verdict { background: #dff0df; color: #1e6b34; font-weight: 600; }
tr.v-worse td.verdict { background: #f8dcdc; color: #a02020; font-weight: 600; }
tr.v-none td.verdict { background: #eeeeee; color: #555; }
td.verdict { text-align: center; }
td.change { color: #a05a00; }
td.flips { white-space: normal; min-width: 12rem; text-align: left; }
#differential thead th { text-align: left; }
figure { margin: 1.5rem 0; }
svg.chart { max-width: 100%; height: auto; }
.chart-error { color: #a00; }
#filters { display: flex; gap: 1rem; flex-wrap: wrap; align-items: center; margin: 0.5rem 0 1rem; }
details.item { border: 1px solid #ccc; border-radius: 4px; margin: 0.4rem 0; padding: 0.3rem 0.6rem; }
details.item > summary { cursor: pointer; }
.badge { display: inline-block; font-size: 0.75rem; padding: 0 0.4rem; border-radius: 3px; margin-left: 0.3rem; }
.badge.better { background: #dff0df; color: #1e6b34; } .badge.worse { background: #f8dcdc; color: #a02020; }
.badge.failed { background: #fde9c8; color: #7a4b00; }
.rows { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 0.8rem; margin-top: 0.5rem; }
.row { border-top: 3px solid #ddd; padding-top: 0.3rem; }
.row h4 { margin: 0.2rem 0; }
pre { white-space: pre-wrap; word-break: break-word; background: #f7f7f7; padding: 0.4rem; margin: 0.3rem 0; max-height: 18rem; overflow: auto; font-size: 0.85rem; }
table.scores td, table.scores th { font-size: 0.8rem; padding: 0.1rem 0.4rem; }
p.error { color: #a02020; margin: 0.3rem 0; }
";

const SCRIPT: &str = r#"
(function () {
  var q = new URLSearchParams(location.search);
  var b = document.getElementById('f-benchmark'), m = document.getElementById('f-metric');
  var fl = document.getElementById('f-flips'), fa = document.getElementById('f-failures');
  if (q.get('benchmark')) b.value = q.get('benchmark');
  if (q.get('metric')) m.value = q.get('metric');
  fl.checked = q.get('flips') === '1';
  fa.checked = q.get('failures') === '1';
  function has(list, x) { return list.split(' ').indexOf(x) >= 0; }
  function apply() {
    var shown = 0;
    document.querySelectorAll('#items details.item').forEach(function (e) {
      var d = e.dataset;
      var ok = (!b.value || d.benchmark === b.value)
        && (!m.value || has(d.metrics, m.value))
        && (!fl.checked || (m.value ? has(d.flips, m.value) : d.flips !== ''))
        && (!fa.checked || d.failed === '1');
      e.hidden = !ok;
      if (ok && q.get('open') === '1') e.open = true;
      if (ok) shown++;
    });
    document.getElementById('f-count').textContent = shown + ' shown';
  }
  [b, m, fl, fa].forEach(function (x) { x.addEventListener('change', apply); });
  apply();
  var show = q.get('show');
  if (show) document.querySelectorAll('body > section').forEach(function (s) { s.hidden = s.id !== show; });
})();
"#;

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
        "<p class=\"method\">Baseline: <strong>{}</strong>. {}</p>",
        escape(report.baseline()),
        escape(&crate::markdown::method(report))
    );

    let anchors = item_anchors(report);
    main_table(&mut out, report);
    paired_table(&mut out, report, &anchors);
    let _ = writeln!(out, "<section id=\"forest\">\n<h2>Paired differences</h2>");
    match chart::forest_plot(report) {
        Some(svg) => figure(&mut out, "chart-forest", "Paired differences", svg),
        None => {
            let _ = writeln!(out, "<p>Only the baseline was given; nothing to plot.</p>");
        }
    }
    let _ = writeln!(out, "</section>");
    domains_table(&mut out, report);
    unscored(&mut out, report);
    for c in report.judge_agreement() {
        out.push_str(&crate::calibration::to_html_section(c));
    }
    item_browser(&mut out, report, &anchors);
    let _ = writeln!(out, "<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}

/// `item-N` for each (benchmark, item id), N its position in the report.
fn item_anchors(report: &Report) -> HashMap<(String, String), String> {
    report
        .items()
        .iter()
        .enumerate()
        .map(|(i, it)| {
            (
                (it.benchmark.clone(), it.id.clone()),
                format!("item-{}", i + 1),
            )
        })
        .collect()
}

fn main_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<section id=\"summary\">\n<h2>Results</h2>\n<div class=\"scroll\">\n<table id=\"main\">"
    );
    head(out, report, &["Model"], report.metrics());
    let _ = writeln!(out, "<tbody>");
    for model in report.models() {
        let class = if model == report.baseline() {
            " class=\"baseline\""
        } else {
            ""
        };
        let _ = write!(out, "<tr{class}><th scope=\"row\">{}</th>", escape(model));
        for key in report.metrics() {
            cell(out, report.descriptor(key).unit, report.cell(model, key));
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</div>\n</section>");
}

fn paired_table(out: &mut String, report: &Report, anchors: &HashMap<(String, String), String>) {
    let _ = writeln!(
        out,
        "<section id=\"paired\">\n<h2>Against the baseline ({})</h2>\n<p>Items paired by id; \
         p-values Holm-adjusted across the {} comparisons of this table.</p>\n\
         <div class=\"scroll\">\n<table id=\"differential\">\n<thead><tr>\
         <th scope=\"col\">Model</th><th scope=\"col\">Metric</th><th scope=\"col\">n</th>\
         <th scope=\"col\">Difference [95% CI]</th><th scope=\"col\">Means</th>\
         <th scope=\"col\">p (test)</th><th scope=\"col\">Holm p</th><th scope=\"col\">Verdict</th>\
         <th scope=\"col\">Flips up / down</th><th scope=\"col\">Detectable</th>\
         <th scope=\"col\">If failed</th><th scope=\"col\">Equivalence</th></tr></thead>\n<tbody>",
        escape(report.baseline()),
        report.tests()
    );
    let mut any = false;
    for model in report.compared() {
        for key in report.metrics() {
            let Some(p) = report.paired(model, key) else {
                continue;
            };
            any = true;
            let unit = report.descriptor(key).unit;
            let class = match p.verdict {
                Verdict::Better => "v-better",
                Verdict::Worse => "v-worse",
                _ => "v-none",
            };
            let means = report
                .delta(model, key)
                .map(|d| format::delta_with_percent(unit, &d))
                .unwrap_or_default();
            let test = match (p.p, p.test) {
                (Some(x), Some(t)) => {
                    format!("{} <span class=\"n\">{}</span>", format::p(x), t.name())
                }
                _ => "—".into(),
            };
            let flips = |ids: &[String], dir: &str| -> String {
                if ids.is_empty() {
                    return "0".into();
                }
                let link = format!("?metric={}&amp;flips=1#items", escape(&query(&key.id())));
                let list: Vec<String> = ids
                    .iter()
                    .take(5)
                    .filter_map(|id| {
                        anchors
                            .get(&(key.benchmark.clone(), id.clone()))
                            .map(|a| format!("<a href=\"#{a}\">{}</a>", escape(id)))
                    })
                    .collect();
                let more = if ids.len() > 5 { ", …" } else { "" };
                format!(
                    "<a href=\"{link}\" title=\"show these items\">{} {dir}</a> <span class=\"n\">({}{more})</span>",
                    ids.len(),
                    list.join(", ")
                )
            };
            let change = p.bounds.is_some_and(|b| b.verdict_could_change);
            let _ = writeln!(
                out,
                "<tr class=\"{class}\"><th scope=\"row\">{}</th><th scope=\"row\">{}</th>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{test}</td><td>{}</td>\
                 <td class=\"verdict\">{}</td><td class=\"flips\">{} / {}</td><td>{}</td><td{}>{}</td><td>{}</td></tr>",
                escape(model),
                escape(&report.label(key)),
                p.n,
                escape(&format::paired_difference(unit, p)),
                escape(&means),
                p.p_holm.map(format::p).unwrap_or_else(|| "—".into()),
                p.verdict.text(),
                flips(&p.flips.up, "up"),
                flips(&p.flips.down, "down"),
                escape(&format::mdd(unit, p)),
                if change { " class=\"change\"" } else { "" },
                escape(&format::paired_bounds(unit, p)),
                escape(&format::equivalence(unit, p)),
            );
        }
    }
    if !any {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"12\">Only the baseline was given; nothing to compare.</td></tr>"
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</div>\n</section>");
}

fn domains_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<section id=\"domains\">\n<h2>By domain</h2>\n<div class=\"scroll\">\n<table id=\"domains\">"
    );
    let keys = report.domain_metrics();
    head(out, report, &["Model", "Domain"], keys);
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
                cell(
                    out,
                    report.descriptor(key).unit,
                    report.domain_cell(model, domain, key),
                );
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
    let _ = writeln!(out, "</tbody>\n</table>\n</div>\n</section>");
}

fn unscored(out: &mut String, report: &Report) {
    if report.unscored().is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<section id=\"unscored\">\n<h2>Scorers that scored nothing</h2>\n<ul>"
    );
    for u in report.unscored() {
        let _ = writeln!(
            out,
            "<li>{}: scorer {} failed on all {} items of {}</li>",
            escape(&u.benchmark),
            escape(u.scorer.as_deref().unwrap_or("(unnamed)")),
            u.failures,
            escape(&u.model)
        );
    }
    let _ = writeln!(out, "</ul>\n</section>");
}

/// A flip of one item: (metric id, model, `up` or `down`, `better` or
/// `worse`: the badge's colour follows the metric's direction, so a drop in
/// a lower-is-better metric is green).
type ItemFlip<'a> = (String, &'a str, &'static str, &'static str);

fn item_browser(out: &mut String, report: &Report, anchors: &HashMap<(String, String), String>) {
    // (benchmark, item) → its flips.
    let mut flips: HashMap<(&str, &str), Vec<ItemFlip>> = HashMap::new();
    for model in report.compared() {
        for key in report.metrics() {
            let Some(p) = report.paired(model, key) else {
                continue;
            };
            let higher = report.descriptor(key).higher_is_better;
            for (ids, dir) in [(&p.flips.up, "up"), (&p.flips.down, "down")] {
                let good = if (dir == "up") == higher {
                    "better"
                } else {
                    "worse"
                };
                for id in ids {
                    flips
                        .entry((key.benchmark.as_str(), id.as_str()))
                        .or_default()
                        .push((key.id(), model, dir, good));
                }
            }
        }
    }
    let benchmarks: BTreeSet<&str> = report
        .items()
        .iter()
        .map(|i| i.benchmark.as_str())
        .collect();
    let _ = writeln!(
        out,
        "<section id=\"items\">\n<h2>Items</h2>\n<form id=\"filters\">\
         <label>Benchmark <select id=\"f-benchmark\"><option value=\"\">all</option>"
    );
    for b in &benchmarks {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", escape(b));
    }
    let _ = write!(
        out,
        "</select></label>\n<label>Metric <select id=\"f-metric\"><option value=\"\">all</option>"
    );
    for key in report.metrics() {
        let _ = write!(
            out,
            "<option value=\"{}\">{}</option>",
            escape(&key.id()),
            escape(&report.label(key))
        );
    }
    let _ = writeln!(
        out,
        "</select></label>\n<label><input type=\"checkbox\" id=\"f-flips\"> flipped only</label>\n\
         <label><input type=\"checkbox\" id=\"f-failures\"> failures only</label>\n\
         <span id=\"f-count\" class=\"n\">{} items</span></form>",
        report.items().len()
    );
    for item in report.items() {
        let item_flips = flips
            .get(&(item.benchmark.as_str(), item.id.as_str()))
            .cloned()
            .unwrap_or_default();
        let flip_ids: BTreeSet<&str> = item_flips.iter().map(|(k, ..)| k.as_str()).collect();
        let metric_ids: BTreeSet<String> = item
            .rows
            .iter()
            .flat_map(|r| &r.scores)
            .flat_map(|s| s.metrics.keys())
            .map(|m| MetricKey::new(&item.benchmark, m).id())
            .collect();
        let failed = item.rows.iter().flat_map(|r| &r.scores).any(|s| s.failed);
        let anchor = anchors
            .get(&(item.benchmark.clone(), item.id.clone()))
            .cloned()
            .unwrap_or_default();
        let _ = write!(
            out,
            "<details class=\"item\" id=\"{anchor}\" data-benchmark=\"{}\" data-metrics=\"{}\" \
             data-flips=\"{}\" data-failed=\"{}\"><summary><strong>{}</strong> · {}{}",
            escape(&item.benchmark),
            escape(&metric_ids.into_iter().collect::<Vec<_>>().join(" ")),
            escape(&flip_ids.iter().copied().collect::<Vec<_>>().join(" ")),
            u8::from(failed),
            escape(&item.benchmark),
            escape(&item.id),
            item.domain
                .as_deref()
                .map(|d| format!(" <span class=\"n\">({})</span>", escape(d)))
                .unwrap_or_default()
        );
        for (metric, model, dir, good) in &item_flips {
            let _ = write!(
                out,
                "<span class=\"badge {good}\">{} {dir}: {}</span>",
                escape(model),
                escape(metric)
            );
        }
        if failed {
            let _ = write!(out, "<span class=\"badge failed\">failed</span>");
        }
        let _ = writeln!(out, "</summary>\n<div class=\"rows\">");
        for row in &item.rows {
            let _ = writeln!(out, "<div class=\"row\"><h4>{}</h4>", escape(&row.model));
            match &row.prompt {
                Some(p) => {
                    let _ = writeln!(
                        out,
                        "<details><summary>Prompt as sent</summary><pre class=\"prompt\">{}</pre></details>",
                        escape(p)
                    );
                }
                None => {
                    let _ = writeln!(out, "<p class=\"n\">Prompt not recorded.</p>");
                }
            }
            if let Some(r) = &row.response {
                let _ = writeln!(out, "<pre class=\"response\">{}</pre>", escape(r));
            }
            let _ = write!(out, "<table class=\"scores\"><tbody>");
            for score in &row.scores {
                for (metric, value) in &score.metrics {
                    let key = MetricKey::new(&item.benchmark, metric);
                    let _ = write!(
                        out,
                        "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                        escape(metric),
                        format::value(report.descriptor(&key).unit, *value)
                    );
                }
            }
            let _ = writeln!(out, "</tbody></table>");
            for score in &row.scores {
                let scorer = score.scorer.as_deref().unwrap_or("scorer");
                if let Some((kind, message)) = &score.detail.error {
                    let _ = writeln!(
                        out,
                        "<p class=\"error\">{}: <strong>{}</strong>: {}</p>",
                        escape(scorer),
                        escape(kind),
                        escape(message)
                    );
                } else if score.failed {
                    let _ = writeln!(out, "<p class=\"error\">{}: not scored</p>", escape(scorer));
                }
                if !score.detail.judge.is_empty() {
                    let _ = writeln!(
                        out,
                        "<details><summary>Judge ({}): {} answer(s)</summary><pre class=\"judge\">{}</pre></details>",
                        escape(scorer),
                        score.detail.judge.len(),
                        escape(&score.detail.judge.join("\n---\n"))
                    );
                }
            }
            let _ = writeln!(out, "</div>");
        }
        let _ = writeln!(out, "</div>\n</details>");
    }
    let _ = writeln!(out, "</section>");
}

fn head(out: &mut String, report: &Report, first: &[&str], keys: &[MetricKey]) {
    let _ = write!(out, "<thead><tr>");
    for name in first {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(name));
    }
    for key in keys {
        let _ = write!(
            out,
            "<th scope=\"col\" title=\"{}\">{}</th>",
            escape(&key.id()),
            escape(&report.label(key))
        );
    }
    let _ = writeln!(out, "</tr></thead>");
}

fn cell(out: &mut String, unit: Unit, cell: Option<&Cell>) {
    let Some(c) = cell else {
        let _ = write!(out, "<td></td>");
        return;
    };
    let ci = c
        .ci95
        .map(|ci| format!(" <span class=\"ci\">{}</span>", format::interval(unit, ci)))
        .unwrap_or_default();
    let mean = c
        .mean
        .map(|m| format::value(unit, m))
        .unwrap_or_else(|| "—".into());
    let bounds = format::cell_bounds(unit, c)
        .map(|b| format!("<span class=\"bounds\">{}</span>", escape(&b)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<td><span class=\"mean\">{mean}</span>{ci} <span class=\"n\">{}</span>{bounds}</td>",
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

/// `text` percent-encoded for a query string value (letters, digits and
/// `-._~/` kept).
fn query(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Text safe in HTML content and in quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
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
    use crate::input::{Detail, Observation};
    use crate::table::ReportOptions;
    use std::collections::BTreeMap;

    fn ob(model: &str, item: &str, metrics: &[(&str, f64)]) -> Observation {
        Observation {
            benchmark: "b".into(),
            model: model.into(),
            item_id: item.into(),
            domain: None,
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            failed: metrics.is_empty(),
            scorer: Some("s".into()),
            detail: Detail::default(),
        }
    }

    #[test]
    fn has_the_sections_tables_and_one_forest_plot() {
        let html = to_html(&fixture::report());
        for id in ["main", "differential", "domains"] {
            assert_eq!(
                html.matches(&format!("<table id=\"{id}\">")).count(),
                1,
                "{id}"
            );
        }
        // Summary first, then the paired table, the plot, domains, items.
        let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(at("<section id=\"summary\">") < at("<section id=\"paired\">"));
        assert!(at("<section id=\"paired\">") < at("<section id=\"forest\">"));
        assert!(at("<section id=\"forest\">") < at("<section id=\"domains\">"));
        assert!(at("<section id=\"domains\">") < at("<section id=\"items\">"));
        // One chart: the forest plot, no bar chart per metric.
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(html.contains("<svg class=\"chart\" id=\"chart-forest\""));
        assert!(!html.contains("class=\"chart-error\""), "{html}");
        // Verdict colours and the flip link to its item.
        assert_eq!(html.matches("<tr class=\"v-none\">").count(), 6);
        assert!(html.contains("<a href=\"?metric=gsm8k/correct&amp;flips=1#items\""));
        let q2 = report_anchor("gsm8k", "q2");
        assert!(
            html.contains(&format!("<a href=\"#{q2}\">q2</a>")),
            "{html}"
        );
        assert!(html.contains(&format!("<details class=\"item\" id=\"{q2}\"")));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
    }

    fn report_anchor(benchmark: &str, id: &str) -> String {
        item_anchors(&fixture::report())[&(benchmark.to_string(), id.to_string())].clone()
    }

    #[test]
    fn the_item_browser_shows_prompt_response_scores_judge_and_errors() {
        let mut base = ob("base", "1", &[("v", 2.0)]);
        base.detail = Detail {
            prompt: Some("KERNEL\nWhat is 2+2?".into()),
            response: Some("4 <b>".into()),
            error: None,
            judge: vec!["{\"v\": 2}".into()],
        };
        let mut lem = ob("lem", "1", &[]);
        lem.detail = Detail {
            prompt: Some("plain prompt".into()),
            response: Some("five".into()),
            error: Some(("judge-unparsable".into(), "no JSON object".into())),
            judge: vec!["I think 7".into()],
        };
        let input = vec![
            base,
            lem,
            ob("base", "2", &[("v", 9.0)]),
            ob("lem", "2", &[("v", 3.0)]),
        ];
        let html = to_html(&Report::build(&input, &ReportOptions::default()).unwrap());
        assert!(
            html.contains("<pre class=\"prompt\">KERNEL\nWhat is 2+2?</pre>"),
            "{html}"
        );
        assert!(html.contains("<pre class=\"response\">4 &lt;b&gt;</pre>"));
        assert!(html.contains("<pre class=\"judge\">I think 7</pre>"));
        assert!(html.contains("<strong>judge-unparsable</strong>: no JSON object"));
        assert!(html.contains("data-failed=\"1\""));
        // Item 2 went 9 → 3: a flip down of b/v, badged and filterable.
        assert!(
            html.contains("data-flips=\"b/v\" data-failed=\"0\""),
            "{html}"
        );
        assert!(html.contains("<span class=\"badge worse\">lem down: b/v</span>"));
        for control in ["f-benchmark", "f-metric", "f-flips", "f-failures"] {
            assert!(html.contains(&format!("id=\"{control}\"")), "{control}");
        }
    }

    #[test]
    fn a_drop_in_a_lower_is_better_metric_is_badged_better() {
        let input = vec![
            ob("base", "1", &[("v", 1.0)]),
            ob("lem", "1", &[("v", 0.0)]),
        ];
        let options = ReportOptions {
            descriptors: BTreeMap::from([(
                "b/v".to_string(),
                crate::MetricDescriptor {
                    range: Some((0.0, 1.0)),
                    higher_is_better: false,
                    unit: Unit::Percent,
                    label: None,
                    declared: true,
                },
            )]),
            ..ReportOptions::default()
        };
        let html = to_html(&Report::build(&input, &options).unwrap());
        assert!(
            html.contains("<span class=\"badge better\">lem down: b/v</span>"),
            "{html}"
        );
    }

    #[test]
    fn references_nothing_outside_the_file() {
        let html = to_html(&fixture::report());
        let lower = html.to_ascii_lowercase();
        // One inline script, no source.
        assert_eq!(lower.matches("<script").count(), 1);
        assert!(lower.contains("<script>"));
        assert!(!lower.contains("src="));
        // Links only within the file: a fragment, or this file with a query.
        for (i, _) in lower.match_indices("href=\"") {
            let target = &lower[i + 6..];
            assert!(
                target.starts_with('#') || target.starts_with('?'),
                "{}",
                &target[..target.len().min(40)]
            );
        }
        assert!(!lower.contains("@import"));
        assert!(!lower.contains("url("));
        assert!(!lower.contains("fetch(") && !lower.contains("xmlhttprequest"));
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
                detail: Default::default(),
            },
            Observation {
                benchmark: "b&b".into(),
                model: evil.into(),
                item_id: "1".into(),
                domain: Some("\"quoted\"".into()),
                metrics: BTreeMap::from([("m<1>".into(), 0.5)]),
                failed: false,
                scorer: None,
                detail: Default::default(),
            },
        ];
        let report = crate::Report::build(&obs, &ReportOptions::default()).unwrap();
        let html = to_html(&report);
        assert_eq!(
            html.to_ascii_lowercase().matches("<script").count(),
            1,
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("b&amp;b/m&lt;1&gt;"));
        assert!(html.contains("&quot;quoted&quot;"));
        assert!(!html.contains("<1>"));
    }

    #[test]
    fn a_report_without_domains_or_others_still_has_its_tables() {
        let obs = vec![ob("only", "1", &[("m", 1.0)])];
        let report = crate::Report::build(&obs, &ReportOptions::default()).unwrap();
        let html = to_html(&report);
        for id in ["main", "differential", "domains"] {
            assert!(html.contains(&format!("<table id=\"{id}\">")), "{id}");
        }
        assert!(html.contains("No item has a domain."));
        assert!(html.contains("nothing to compare"));
        assert!(html.contains("nothing to plot"));
        assert_eq!(html.matches("<svg").count(), 0);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query("do_not_answer/safety"), "do_not_answer/safety");
        assert_eq!(query("a b&c"), "a%20b%26c");
    }
}
