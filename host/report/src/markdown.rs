//! The report as Markdown: the main table, the differential and the
//! per-domain breakdown, with a line saying how the numbers were made.

use crate::format;
use crate::table::Report;
use std::fmt::Write;

/// The report as a Markdown document.
pub fn to_markdown(report: &Report) -> String {
    let mut out = String::new();
    let baseline = escape(report.baseline());
    let _ = writeln!(out, "# lem report\n");
    let _ = writeln!(
        out,
        "Baseline: **{baseline}**. Each cell is the mean over scored items with its 95% \
         percentile-bootstrap interval ({} resamples, seed {:#x}), the number of scored \
         items and the failures, which are left out of the mean. GSM8K % is accuracy × 100.\n",
        report.resamples(),
        report.seed()
    );

    let metrics = report.metrics();
    let _ = writeln!(out, "## Results\n");
    header(&mut out, &["Model"], metrics.iter().map(|k| k.label()));
    for model in report.models() {
        let cells = metrics.iter().map(|key| {
            report
                .cell(model, key)
                .map(|c| format!("{} {}", format::estimate(key, c), format::counts(c)))
                .unwrap_or_default()
        });
        row(&mut out, &[model.as_str()], cells);
    }

    let _ = writeln!(out, "\n## Against the baseline ({baseline})\n");
    let _ = writeln!(
        out,
        "Difference of each model's mean from the baseline's (GSM8K in percentage points), \
         and as a percent of the baseline's mean (n/a where that is 0 or missing).\n"
    );
    header(&mut out, &["Model"], metrics.iter().map(|k| k.label()));
    for model in report.compared() {
        let cells = metrics.iter().map(|key| {
            report
                .delta(model, key)
                .map(|d| format!("{} ({})", format::delta(key, &d), format::percent(&d)))
                .unwrap_or_default()
        });
        row(&mut out, &[model], cells);
    }

    if !report.domains().is_empty() {
        let _ = writeln!(out, "\n## By domain\n");
        let dm = report.domain_metrics();
        header(&mut out, &["Model", "Domain"], dm.iter().map(|k| k.label()));
        for model in report.models() {
            for domain in report.domains() {
                if dm
                    .iter()
                    .all(|k| report.domain_cell(model, domain, k).is_none())
                {
                    continue;
                }
                let cells = dm.iter().map(|key| {
                    report
                        .domain_cell(model, domain, key)
                        .map(|c| format!("{} {}", format::estimate(key, c), format::counts(c)))
                        .unwrap_or_default()
                });
                row(&mut out, &[model.as_str(), domain.as_str()], cells);
            }
        }
    }
    out
}

fn header(out: &mut String, first: &[&str], rest: impl Iterator<Item = String>) {
    let names: Vec<String> = first
        .iter()
        .map(|s| escape(s))
        .chain(rest.map(|s| escape(&s)))
        .collect();
    let _ = writeln!(out, "| {} |", names.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(names.len()));
}

/// A row: `first` are names (escaped), `rest` are cells this module wrote.
fn row(out: &mut String, first: &[&str], rest: impl Iterator<Item = String>) {
    let cells: Vec<String> = first.iter().map(|s| escape(s)).chain(rest).collect();
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// Text that cannot break a table row or start markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn has_the_three_tables_in_paper_order() {
        let md = to_markdown(&fixture::report());
        assert!(md.contains("Baseline: **base**"), "{md}");
        let header = "| Model | GSM8K % (correct) | truthfulqa/truthfulness | \
                      truthfulqa/informativeness | toxigen/kindness | lem\\_only/x | seeds/safety |";
        assert_eq!(md.matches(header).count(), 2, "{md}");
        assert!(md.contains("| lem | 75.0 ["), "{md}");
        assert!(md.contains("9.000 [9.000, 9.000] (n=1, 1 failed)"), "{md}");
        assert!(md.contains("| base | 50.0 ["), "{md}");
        assert!(md.contains("| lem | +25.0 pts (+50.0%) | +2.000 (+28.6%) | +0.000 (+0.0%) | +0.500 (n/a) | — (n/a) | +0.250 (+33.3%) |"), "{md}");
        assert!(md.contains("| Model | Domain | seeds/safety |"), "{md}");
        assert!(
            md.contains("| lem | Identity \\<&\\> | — (n=0, 1 failed) |"),
            "{md}"
        );
        assert!(
            md.contains("| base | Privacy | 0.500 [0.500, 0.500] (n=1) |"),
            "{md}"
        );
    }

    #[test]
    fn escapes_table_breaking_text() {
        assert_eq!(escape("a|b\nc_d"), "a\\|b c\\_d");
    }
}
